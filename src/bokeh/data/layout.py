"""The EBB! folder layout, named once: ``<root>/original/<name>.jpg`` + ``<root>/bokeh/<name>.jpg``."""

INPUT_DIR = "original"  # narrow aperture (f/16 in EBB!)
TARGET_DIR = "bokeh"  # wide aperture (f/1.8 in EBB!)
COC_DIR = "coc"  # optional: per-pixel blur radius maps <name>.png (synthetic sets; bokeh.data.coc)
LAYOUT = (
    "expected <root>/original/<name>.jpg and <root>/bokeh/<name>.jpg with matching names "
    "(the EBB! layout; the challenge zip's <root>/Training/original and <root>/Training/bokeh also work)"
)
FOCAL_DIR = "focal"  # optional: masks <name>.png of the in-focus subject (white = in focus; photo pairs, real pairs)
# optional: {"<name>": f-number, ...}, the f-number each target was rendered or shot at (absent: the
# reference f-number, EBB!'s f/1.8)
F_NUMBERS = "f_numbers.json"
# optional: subject mattes <name>.png of each input (the segmenter's, 0-255 = [0, 1]; bokeh.data.subject)
SUBJECT_DIR = "subject"
