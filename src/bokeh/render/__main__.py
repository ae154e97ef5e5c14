"""``python -m bokeh.render input=<file|folder> ckpt=<.ckpt|.onnx|.tflite> out=<folder> [options]``

Options (``key=value``; ``--side-by-side`` is accepted for ``side_by_side=true``):

* ``side_by_side=false``: write ``input | output`` side by side instead of the output alone.
* ``short_side=auto``: torch models run with the photo's short side at most this many pixels and
  the result is upsampled to the photo's size (in-focus detail restored); ``auto`` is the scale a
  shipped model was trained at (256 for ``reference``), else 1024; ``short_side=full`` runs at full resolution
  (memory and time grow with the pixel count: see docs/render.md "Large photos"). Exported models (``.onnx``,
  ``.tflite``) always run at their static export size, whatever this says.
* ``quality=95``: JPEG quality of the outputs.
* ``threads=0``: CPU threads (0: every core).
* ``value_range=auto``: exported models only: ``signed`` / ``pixel`` (auto: what the file says, stored
  at export, else its ``report.json``; a file that says neither is refused).
* ``precision=auto``: torch checkpoints only: ``bf16`` where the CPU computes bf16 natively (AMX or
  AVX512-BF16), ``fp32`` elsewhere; ``fp32`` / ``bf16`` force one (bf16 is slow where emulated).
  The choice made is printed.
* ``accelerator=cpu``: ``gpu`` runs a ``.tflite`` model on LiteRT's GPU accelerator alone (needs a
  Vulkan adapter; without one, or for a model with ops the GPU does not run, it stops with the reason).
* ``overwrite=false``: an existing file under an output's name (``out/<input name>``, and
  ``out/<stem>.matte.png`` with ``matte=true``) is not replaced: the run is refused before any
  work, naming it; ``overwrite=true`` replaces it.
* ``subject=auto``: what stays sharp. ``auto``: a subject matte (MediaPipe's selfie segmenter, which
  ships in the ``mediapipe`` package) and the model's own matte decide together, composited at the
  photo's size: any subject it marks stays sharp (a person, often an animal, a statue, a flower);
  ``person``: only a matte the subject gate trusts as a person's (confident, and small or rising
  from the frame's bottom edge), else the model alone; ``off``: the model alone (the paper's
  prior-free BGGAN, as before the subject matte).
* ``matte=false``: ``true`` also writes the matte each render used beside its output,
  ``out/<stem>.matte.png``: 8-bit gray at the photo's size and orientation, 255 where the output is
  the photo's own pixel (in focus), 0 where it is the rendered blur. With ``subject=off``, models
  with a matte only (``ckpt=reference``, or a model trained with ``model.blend=true``, and its
  exports); refused for others before any work.
* ``focus=X,Y``: the point to focus on ("tap to focus"), as fractions of each photo's width and
  height (``focus=0.5,0.4``: the middle, a little above the centre), or in pixels from the photo's
  top-left corner (``focus=640px,480px``); default: the model decides (auto). With ``subject=auto``
  the subject under the tap stays sharp (where the tap is outside every subject, the model's tapped
  matte decides). Models trained with a focus input only (``ckpt=`` with ``model.focus_input=true``,
  or an export of one).
* ``focus=path/to/matte.png``: your own matte for one photo (``input=`` a file): a gray image (or
  the alpha channel of one with transparency) of the photo's shape, white = keep sharp, black = the
  rendered blur; any model.
* ``aperture=F``: the f-number to render (``aperture=2.8``, ``f/2.8`` too): larger = less blur;
  default f/1.8, the lens of the training targets. Models trained with an aperture input only.
  A bad value (a point outside a photo, f/0, a negative or NaN f-number, ``focus=abc``) or a control
  the model does not take is refused in one sentence, exit 2, before any work.
* ``max_pixels=178956970``: images whose header claims more pixels are skipped as possible
  decompression bombs (Pillow's limit); raise it for a trusted huge file, ``none`` for no limit.

Files of a folder that are not rendered are named at the end with the reason: images that could
not be read or rendered (skipped), other files (not images; subfolders are not searched).

Exit status: 0 when every photo was rendered, 1 when some were skipped (each reported with the
reason; the others are rendered) or an output could not be written, 2 for bad settings (refused
before anything runs), 130 when interrupted (Ctrl-C; 143 for SIGTERM, 129 for SIGHUP; the outputs
written so far are complete, and no temporary file is left).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console

USAGE = ("usage: python -m bokeh.render input=<file or folder> ckpt=<.ckpt | .onnx | .tflite> out=<folder> "
         "[side_by_side=false] [short_side=auto|N|full] [quality=95] [threads=0] [value_range=auto|signed|pixel] "
         "[max_pixels=N|none] [accelerator=cpu|gpu] [precision=auto|fp32|bf16] [overwrite=false] "
         "[focus=X,Y|Xpx,Ypx|matte.png] [aperture=F] [matte=false] [subject=auto|person|off]")
FLAGS = {"--side-by-side": ("side_by_side", "true"), "--side_by_side": ("side_by_side", "true")}


def _max_pixels(text: str):
    """``max_pixels=``: a pixel count (``_`` and ``,`` allowed between digits), ``none``, or ``default``."""
    from bokeh.options import integer

    return integer(1, words={"none": None, "default": "default"})(text.replace(",", ""))


_max_pixels.describe = "a number of pixels (width x height), none (no limit) or default (Pillow's)"


def focus_or_matte(text: str):
    """``focus=``: a point (:func:`bokeh.models.controls.parse_focus`: fractions or ``640px,480px``), or
    a file name (no comma, and an image suffix or an existing file): its ``Path``, a user's matte."""
    from bokeh.images import is_known_image_type
    from bokeh.models.controls import parse_focus

    if "," not in str(text) and (is_known_image_type(Path(text)) or Path(text).is_file()):
        return Path(text)
    if "," not in str(text) and Path(text).expanduser().is_dir():
        raise ValueError("is a folder: give a point (focus=0.5,0.4) or a matte image file (white = sharp)")
    return parse_focus(text)


focus_or_matte.describe = "x,y fractions (0.5,0.4), pixels (640px,480px) or a matte image (white = sharp)"


def options():
    """The options of ``bokeh.render``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.inference import PRECISIONS
    from bokeh.models.controls import parse_aperture
    from bokeh.options import REQUIRED, Option, boolean, choice, integer, path
    from bokeh.render.fit import SUBJECT_HELP, SUBJECT_MODES

    return (
        Option("input", path, REQUIRED, "a photo, or a folder of photos (subfolders are not searched)"),
        Option("ckpt", path, REQUIRED, "the model: a .ckpt, .onnx or .tflite file, or a shipped name (reference)"),
        Option("out", path, REQUIRED, "the folder to write into"),
        Option("side_by_side", boolean, False, "write input | output side by side"),
        Option("short_side", integer(8, words={"auto": "auto", "full": None, "none": None, "0": None}), "auto",
               "torch models: the short side the photo is run at (auto: the model's training scale)"),
        Option("quality", integer(1, 100), 95, "JPEG quality"),
        Option("threads", integer(0, 1024), 0, "CPU threads (0: every core)"),
        Option("value_range", choice("auto", "signed", "pixel"), "auto", "exported models only"),
        Option("max_pixels", _max_pixels, "default", "larger images are skipped as possible decompression bombs"),
        Option("accelerator", choice("cpu", "gpu"), "cpu", "gpu: a .tflite model on LiteRT's GPU accelerator"),
        Option("precision", choice(*PRECISIONS), "auto", "torch checkpoints only"),
        Option("overwrite", boolean, False, "replace existing outputs"),
        Option("focus", focus_or_matte, None, "the point to focus on (models with a focus input), or a matte image for one photo"),
        Option("aperture", parse_aperture, None, "the f-number to render (models with an aperture input)"),
        Option("matte", boolean, False, "also write the matte each render used"),
        Option("subject", choice(*SUBJECT_MODES), "auto", SUBJECT_HELP),
    )


class UsageError(ValueError):
    """A command-line argument that is missing or wrong."""


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments (``--key=value`` too, and the flag ``--side-by-side``) into typed
    settings, every value checked (:mod:`bokeh.options`).

    Raises:
        UsageError: an unknown or missing argument, or a bad value (one sentence naming it).
        bokeh.options.HelpRequested: ``--help``.
    """
    from bokeh.options import OptionError, parse

    try:
        settings, _ = parse(argv, options(), USAGE, flags=FLAGS, dashes=True)
    except OptionError as error:
        raise UsageError(str(error)) from None
    return settings


def check_focus_pixels(focus, inputs: list[Path]) -> None:
    """A :class:`~bokeh.render.fit.PixelPoint` must lie inside every photo (header sizes, EXIF
    orientation applied): ``ControlError`` naming the first photo it misses. Files whose header
    cannot be read are left to the render, which reports and skips them."""
    from bokeh.images import ImageError, read_size
    from bokeh.models.controls import ControlError, PixelPoint

    if not isinstance(focus, PixelPoint):
        return
    for path in inputs:
        try:
            size = read_size(path)
        except (ImageError, OSError):
            continue
        try:
            focus.fractions(size)
        except ControlError as error:
            raise ControlError(f"{path}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 all rendered, 1 some skipped, 2 bad settings, 130 Ctrl-C)."""
    from bokeh.cli import EXIT_OK, interruptible

    from bokeh.options import help_text, wants_help

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(__doc__ + "\n" + help_text(USAGE, options()))
        return EXIT_OK
    try:  # Ctrl-C: one line saying what was finished (bokeh.cli.interruptible), exit status 130
        with interruptible("bokeh.render", lambda: "nothing was rendered"):
            prepared = _prepare(argv)
        if isinstance(prepared, int):
            return prepared
        return _render(*prepared)
    except SystemExit as exit_:
        return int(exit_.code)


def _render(settings: dict, inputs: list[Path], ignored: list[tuple[Path, str]], out: Path, backend) -> int:
    """Render ``inputs``, print the summary (what was not rendered, and why); the exit status."""
    from bokeh.cli import EXIT_OK, EXIT_SKIPPED, interruptible
    from bokeh.models.controls import REFERENCE_F_NUMBER
    from bokeh.render.files import Summary, render_files

    console = Console(stderr=True)
    if backend.static_size is None:  # torch: its name says the precision it computes in
        console.print(f"{backend.name}: each photo at its size (short side capped by short_side=), padded to a "
                      f"multiple of 8", highlight=False)
    else:
        h, w = backend.static_size
        console.print(f"{backend.name}: static input {h} x {w}; each photo is fitted to it "
                      f"(turned if its orientation differs) and the result resized back", highlight=False)
    if settings["user_matte"] is not None:
        console.print("focus: your matte decides what stays sharp", highlight=False)
    elif settings["subject"] != "off":
        console.print(f"subject={settings['subject']}: a subject matte (MediaPipe's selfie segmenter"
                      + ("" if settings["subject"] == "auto" else ", where the subject gate trusts it as a person's")
                      + ") and the model's own decide what stays sharp", highlight=False)
    if backend.contract.controls:
        focus, aperture = settings["focus"], settings["aperture"]
        where = "auto (the model decides)" if focus is None else (
            f"{focus.x:g}px, {focus.y:g}px" if hasattr(focus, "fractions") else f"{focus[0]:g}, {focus[1]:g} of the width, height")
        console.print(f"controls: focus {where}; aperture f/{aperture if aperture is not None else REFERENCE_F_NUMBER:g}",
                      highlight=False)
    start, summary = time.perf_counter(), Summary()

    def finished() -> str:
        return f"rendered {len(summary.rendered)} of {len(inputs)} image(s) into {out}; each written file is complete"

    created = not out.exists()  # a run that writes nothing (every photo skipped) leaves no empty out/ behind
    try:
        with interruptible("bokeh.render", finished):
            render_files(inputs, out, backend, settings["short_side"], settings["side_by_side"],
                         settings["quality"], console, summary, settings["focus"], settings["aperture"], settings["matte"],
                         settings["subject"], settings["user_matte"])
    except OSError as error:  # writing an output failed: every later file would too
        print(f"bokeh.render: stopped: could not write into out={out} ({error.strerror or error}); {finished()}", file=sys.stderr)
        return EXIT_SKIPPED
    finally:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
    seconds = time.perf_counter() - start
    console.print(f"rendered {len(summary.rendered)} of {len(inputs)} image(s) into {out} in {seconds:.1f} s", highlight=False)
    if ignored:
        console.print(f"not rendered, not images ({len(ignored)}):")
        for path, reason in ignored:
            console.print(f"  {path.name}: {reason}", highlight=False, markup=False)
    if summary.skipped:
        console.print(f"[yellow]skipped {len(summary.skipped)}:[/yellow]")
        for path, _reason in summary.skipped:  # each reason was printed when the file was skipped
            console.print(f"  {path}", highlight=False, markup=False)
        return EXIT_SKIPPED
    return EXIT_OK


def _prepare(argv: list[str]):
    """Settings, inputs, ignored files, out folder and backend; or an exit status after printing why."""
    from bokeh.checkpoint import CheckpointError
    from bokeh.cli import EXIT_SETTINGS
    from bokeh.images import ImageError, set_max_pixels
    from bokeh.models.controls import ControlError, InputContract
    from bokeh.render.backends import load_backend
    from bokeh.images import read_size
    from bokeh.render.files import RenderError, check_matte, check_paths, ignored_files, list_inputs, read_matte
    from bokeh.render.fit import subject_segmenter
    from bokeh.runtimes import NotFullyAccelerated, RuntimeUnavailable

    try:
        settings = parse_args(argv)
        if settings["max_pixels"] != "default":
            set_max_pixels(settings["max_pixels"])
        inputs = list_inputs(settings["input"])
        if settings["input"].is_file() and settings["input"].stat().st_size == 0:  # one photo, and it is empty: a bad input=
            raise ImageError(settings["input"], "empty file (0 bytes)", "copy the photo again (the copy or download did not finish)")
        out = check_paths(settings["input"], inputs, settings["out"], settings["overwrite"], settings["matte"])
        backend = load_backend(settings["ckpt"], settings["threads"], settings["value_range"], settings["accelerator"],
                               precision=settings["precision"])
        settings["user_matte"] = None
        if isinstance(settings["focus"], Path):  # focus=matte.png: the user's own matte, for one photo
            if len(inputs) != 1 or settings["input"].is_dir():
                raise RenderError(f"focus={settings['focus']}: a matte belongs to one photo; pass input= a single photo")
            settings["user_matte"] = read_matte(settings["focus"], read_size(inputs[0]))
            settings["focus"] = None
        if settings["matte"]:
            check_matte(backend, f"ckpt={settings['ckpt']}", "auto" if settings["user_matte"] is not None else settings["subject"])
        given = [name for name in ("focus", "aperture") if settings[name] is not None]
        getattr(backend, "contract", InputContract()).check_taken(*given)
        check_focus_pixels(settings["focus"], inputs)
        if settings["subject"] != "off" and settings["user_matte"] is None:
            subject_segmenter(backend)  # missing: one sentence now (SegmenterMissing), before any work
    except UsageError as error:  # one sentence; --help shows the usage
        print(f"bokeh.render: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    except (ControlError, RenderError, CheckpointError, FileNotFoundError, ValueError, RuntimeUnavailable, NotFullyAccelerated,
            ImageError) as error:
        print(f"bokeh.render: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    return settings, inputs, ignored_files(settings["input"]), out, backend


if __name__ == "__main__":
    sys.exit(main())
