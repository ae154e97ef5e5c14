"""Photo pairs: the subject stays as it is, the background gets the thin-lens blur of its depth, the
subject's colours stay out of the background, and the folder (EBB! layout + focal/, coc/,
f_numbers.json) reads back. Most tests use a small photo made here; the BSDS500 ones read
../shared and skip without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import io, ndimage

from bokeh.data.coc import read_coc
from bokeh.data.layout import COC_DIR, F_NUMBERS, FOCAL_DIR, INPUT_DIR, TARGET_DIR
from bokeh.data.optics import ThinLens
from bokeh.data.photo_pairs import (
    PhotoPairConfig,
    PhotoSkipped,
    ensure_photo_pairs,
    fill_hidden,
    find_photos,
    frame_size,
    make_photo_pair,
    pair_config,
    read_photo,
    upright,
    write_photo_pairs,
)
from bokeh.images import read_rgb, write_image
from PIL import Image
from test_render import gradient_photo
from user_cli import cli

REPO = Path(__file__).resolve().parents[2]
BSDS = REPO / ".." / "shared" / "data" / "photos" / "bsds500"
needs_bsds = pytest.mark.skipif(not BSDS.is_dir(), reason=f"the BSDS500 photos are not at {BSDS} (../shared is absent)")

SIZE = (128, 192)
# no noise, every target wide open, the lights unboosted: exact comparisons
EXACT = {"short_side": 128, "noise": 0.0, "f_number": (1.8, 1.8), "lights": (1.0, 1.0), "near": 0.0}


def toy_photo(seed: int = 0, background: float | None = None, point: tuple[int, int] | None = None):
    """A textured subject (an ellipse in the middle) before a textured (or flat) background, and
    two annotators' segmentations of it (1: background, 2: subject)."""
    rng = np.random.default_rng(seed)
    height, width = SIZE
    yy, xx = np.mgrid[:height, :width]
    subject = ((yy - 70) / 40.0) ** 2 + ((xx - 96) / 30.0) ** 2 <= 1.0
    image = rng.uniform(0.3, 0.6, (height, width, 3)) if background is None else np.full((height, width, 3), background)
    image[subject] = rng.uniform(0.0, 1.0, (subject.sum(), 3)) * [1.0, 0.2, 0.2]  # reddish texture
    if point is not None:
        image[point] = 1.0
    labels = np.where(subject, 2, 1).astype(np.uint16)
    return np.round(image * 255).astype(np.uint8), [labels, labels.copy()], subject


def working(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float64) / 255.0) ** 4


def test_frame_size_is_the_short_side_and_multiples_of_eight():
    assert frame_size(321, 481, 256) == ((256, 384), (256, 384))
    assert frame_size(481, 321, 256) == ((384, 256), (384, 256))
    resized, cropped = frame_size(300, 500, 256)
    assert resized == (256, 427) and cropped == (256, 424)


def test_the_subject_is_unchanged_and_the_background_is_blurred():
    image, segmentations, subject = toy_photo()
    pair = make_photo_pair(image, segmentations, 0, seed=3, config=pair_config(EXACT))
    assert pair.sharp.shape == pair.bokeh.shape == SIZE + (3,)
    assert np.array_equal(pair.subject, subject), "the annotated subject is the in-focus mask"
    interior = ndimage.binary_erosion(subject, iterations=3)
    difference = np.abs(pair.sharp.astype(int) - pair.bokeh.astype(int))[interior]
    assert difference.max() <= 1, "the subject is identical in the input and the target"
    assert np.all(pair.blur_radius[subject] == 0) and np.all(pair.depth[subject] == pair.focus_m)
    # the ground is in focus where the subject stands on it; elsewhere the background is blurred
    outside = ~ndimage.binary_dilation(subject, iterations=8) & (pair.blur_radius > 2.0)
    assert outside.sum() > 0.3 * outside.size

    def detail(img):
        gray = img.astype(float).mean(2)
        return (np.diff(gray, axis=1)[outside[:, 1:] & outside[:, :-1]] ** 2).mean()

    assert detail(pair.bokeh) < 0.5 * detail(pair.sharp), "the background loses its detail in the target"


def test_a_bright_point_makes_a_disc_of_the_thin_lens_radius_for_its_depth(tmp_path):
    point = (20, 30)
    image, segmentations, _ = toy_photo(background=0.1, point=point)
    config = {**EXACT, "blurred_background": 0.0}  # a flat background would be skipped as already blurred
    for seed in range(3):
        pair = make_photo_pair(image, segmentations, 0, seed=seed, config=pair_config(config))
        lens = ThinLens(50.0, pair.f_number, pair.focus_m, 22.3)
        expected = min(abs(lens.coc_radius(float(pair.depth[point]), SIZE[1])), 0.03 * SIZE[1])
        assert expected > 2.0, "a blur big enough to measure"
        assert abs(pair.blur_radius[point] - expected) <= 0.12 * expected, "the rendered bin is the lens's radius"
        target = working(pair.bokeh).mean(2)
        window = target[: point[0] + 16, : point[1] + 16]  # the disc, away from the subject
        level, floor = np.percentile(window, 99.5), working(np.full(1, 26, np.uint8))[0]
        area = (window > floor + 0.5 * (level - floor)).sum()
        measured = np.sqrt(area / np.pi)
        assert abs(measured - expected) <= 1.0, f"disc radius {measured:.2f} px, thin lens {expected:.2f} px"


def test_no_halo_of_the_subjects_colour_in_the_blurred_background():
    image, segmentations, subject = toy_photo(seed=1)
    image[~subject] = image[~subject] * [0.2, 1.0, 1.0]  # a background without red; the subject is red
    pair = make_photo_pair(image, segmentations, 0, seed=0, config=pair_config(EXACT))
    ring = ndimage.binary_dilation(subject, iterations=12) & ~ndimage.binary_dilation(subject, iterations=1)
    assert (pair.blur_radius[ring] > 3.0).mean() > 0.5, "most of the background next to the subject is blurred"
    red = pair.bokeh[..., 0].astype(float)
    assert red[ring].max() <= image[~subject][:, 0].max() + 2, "no red from the subject spreads into the background"


def test_fill_hidden_takes_colours_from_the_known_pixels_only():
    image = np.zeros((40, 60, 3), np.float32)
    known = np.ones((40, 60), bool)
    known[10:30, 20:40] = False
    image[known] = [0.0, 0.0, 1.0]
    image[~known] = [1.0, 0.0, 0.0]
    filled = fill_hidden(image, known)
    assert np.allclose(filled, [0.0, 0.0, 1.0], atol=1e-5)
    assert np.array_equal(fill_hidden(image, np.zeros_like(known)), np.zeros_like(image))


def test_the_same_seed_and_index_give_the_same_pair_and_others_differ():
    image, segmentations, _ = toy_photo()
    config = pair_config({"short_side": 128})
    one, two = (make_photo_pair(image, segmentations, 4, seed=1, config=config) for _ in range(2))
    other = make_photo_pair(image, segmentations, 5, seed=1, config=config)
    assert np.array_equal(one.bokeh, two.bokeh) and one.f_number == two.f_number
    assert not np.array_equal(one.bokeh, other.bokeh)


def test_photos_without_a_subject_or_with_a_blurred_background_are_skipped():
    image, segmentations, _ = toy_photo()
    stripes = [np.repeat(np.arange(1, 5), 32)[:, None].repeat(SIZE[1], 1).astype(np.uint16)]  # bands across the frame
    with pytest.raises(PhotoSkipped) as skipped:
        make_photo_pair(image, stripes, 0, config=pair_config({"short_side": 128}))
    assert skipped.value.reason == "no subject"
    soft = image.copy()
    soft[segmentations[0] == 1] = ndimage.uniform_filter(image.astype(float), (9, 9, 1))[segmentations[0] == 1].astype(np.uint8)
    with pytest.raises(PhotoSkipped) as skipped:
        make_photo_pair(soft, segmentations, 0, config=pair_config({"short_side": 128, "blurred_background": 0.3}))
    assert skipped.value.reason == "blurred background"


def test_a_photo_stored_turned_a_quarter_is_turned_back_to_its_segmentations():
    image, segmentations, _ = toy_photo()
    portrait = [np.ascontiguousarray(np.rot90(s, 1)) for s in segmentations]  # upright labels of a portrait photo
    stored = np.rot90(np.rot90(image, 1), -1)  # ... whose file holds it turned clockwise
    assert np.array_equal(upright(np.ascontiguousarray(np.rot90(image, 1)), portrait), np.rot90(image, 1))
    assert np.array_equal(upright(np.ascontiguousarray(stored), portrait), np.rot90(image, 1))
    assert upright(image, segmentations) is image
    with pytest.raises(ValueError, match="segmentations are 10 x 10 but the photo is 128 x 192"):
        upright(image, [np.zeros((10, 10), np.uint16)])


def make_source(root: Path) -> Path:
    """A BSDS500-like folder: two photos with subjects, one without."""
    for split, name, seed, good in (("train", "1", 0, True), ("train", "2", 1, True), ("val", "3", 2, False)):
        image, segmentations, _ = toy_photo(seed)
        if not good:
            segmentations = [np.repeat(np.arange(1, 5), 32)[:, None].repeat(SIZE[1], 1).astype(np.uint16)]
        write_image(root / "images" / split / f"{name}.jpg", image, 95)
        truth = np.empty((1, len(segmentations)), dtype=object)
        for k, labels in enumerate(segmentations):
            truth[0, k] = {"Segmentation": labels, "Boundaries": np.zeros(labels.shape, bool)}
        (root / "groundTruth" / split).mkdir(parents=True, exist_ok=True)
        io.savemat(root / "groundTruth" / split / f"{name}.mat", {"groundTruth": truth})
    return root


def test_the_writer_lays_out_pairs_masks_coc_and_f_numbers_that_read_back(tmp_path):
    src = make_source(tmp_path / "src")
    config = {"short_side": 128}
    out = write_photo_pairs(tmp_path / "set", src, seed=2, config=config)
    names = ["bsds-train-1", "bsds-train-2"]
    for folder, suffix in ((INPUT_DIR, ".jpg"), (TARGET_DIR, ".jpg"), (COC_DIR, ".png"), (FOCAL_DIR, ".png")):
        assert sorted(p.name for p in (out / folder).iterdir()) == [n + suffix for n in names]
    f_numbers = json.loads((out / F_NUMBERS).read_text())
    meta = json.loads((out / "meta.json").read_text())
    assert sorted(f_numbers) == names and meta["pairs"] == 2 and meta["skipped"] == {"bsds-val-3": "no subject"}
    sources = find_photos(src)
    for index, source in enumerate(sources[:2]):
        pair = make_photo_pair(read_rgb(source.image), [s for s in _segmentations(source.segmentations)], index, 2, pair_config(config))
        assert f_numbers[source.name] == pytest.approx(pair.f_number) and 1.8 <= pair.f_number <= 11.0
        from PIL import Image

        with Image.open(out / FOCAL_DIR / f"{source.name}.png") as mask:
            assert mask.mode == "L" and set(np.unique(np.asarray(mask))) <= {0, 255}
            assert np.array_equal(np.asarray(mask) == 255, pair.subject)
        assert np.allclose(read_coc(out / COC_DIR / f"{source.name}.png"), pair.blur_radius, atol=0.006)
        assert np.abs(read_rgb(out / TARGET_DIR / f"{source.name}.jpg").astype(int) - pair.bokeh).mean() < 2.0
    with pytest.raises(FileExistsError, match="overwrite=true"):
        write_photo_pairs(tmp_path / "set", src, seed=2, config=config)
    cached = ensure_photo_pairs(tmp_path / "cache", src=src, seed=2, config=config)
    stamp = (cached / "meta.json").stat().st_mtime_ns
    assert ensure_photo_pairs(tmp_path / "cache", src=src, seed=2, config=config) == cached
    assert (cached / "meta.json").stat().st_mtime_ns == stamp, "a finished set is reused, not rewritten"
    with pytest.raises(FileExistsError, match="does not hold this photo-pair set"):
        ensure_photo_pairs(tmp_path / "cache", src=src, seed=3, config=config)


def _segmentations(path):
    from bokeh.data.photo_pairs import read_segmentations

    return read_segmentations(path)


def test_a_bad_src_folder_is_one_clear_sentence(tmp_path):
    with pytest.raises(ValueError, match="is not a folder; expected a BSDS500 folder"):
        find_photos(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no photo; expected a BSDS500 folder"):
        find_photos(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run([sys.executable, "-m", "bokeh.data.photo_pairs", f"src={tmp_path / 'missing'}", "out=set"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not a folder" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "set").exists(), "nothing is made before the arguments are checked"


@needs_bsds
def test_bsds500_photos_give_pairs_with_a_sharp_subject():
    photos = find_photos(BSDS)
    assert len(photos) == 500 and photos[0].name.startswith("bsds-test-")
    made = 0
    for index, source in enumerate(photos[1:6], start=1):
        try:
            pair = make_photo_pair(read_rgb(source.image), _segmentations(source.segmentations), index, 0, PhotoPairConfig())
        except PhotoSkipped:
            continue
        made += 1
        assert sorted(pair.sharp.shape[:2]) == [256, 384]
        interior = ndimage.binary_erosion(pair.subject, iterations=3)
        assert np.abs(pair.sharp.astype(int) - pair.bokeh.astype(int))[interior].mean() < 6.0, "subject unchanged up to noise"
        assert pair.blur_radius.max() <= 0.03 * pair.sharp.shape[1] + 1e-3
    assert made >= 3
    turned = next(p for p in photos if p.name == "bsds-train-60079")  # stored a quarter turned
    image, segmentations = read_photo(turned)
    assert image.shape[:2] == segmentations[0].shape == (481, 321)


def make_masked_source(root: Path, masks: Path | None = None) -> tuple[Path, np.ndarray]:
    """A portrait-like folder: images/ with photos 1 and 2 (a subject mask each), 3 (an empty mask)
    and 4 (no mask); the masks in ``masks`` (default ``root/masks``). Returns the folder and photo 1's subject."""
    masks = masks or root / "masks"
    for name, seed in (("1", 0), ("2", 1), ("3", 2), ("4", 3)):
        image, _, subject = toy_photo(seed)
        write_image(root / "images" / f"{name}.jpg", image, 95)
        if name != "4":
            write_image(masks / f"{name}.png", np.where(subject & (name != "3"), 255, 0).astype(np.uint8))
    return root, toy_photo(0)[2]


@pytest.mark.parametrize("separate", [False, True], ids=["masks/ inside", "masks= elsewhere"])
def test_photos_with_a_subject_mask_give_pairs_through_the_cli(tmp_path, separate):
    masks = tmp_path / "sod" if separate else None
    src, subject = make_masked_source(tmp_path / "portraits", masks)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    args = [sys.executable, "-m", "bokeh.data.photo_pairs", f"src={src}", "out=set", "short_side=128"]
    done = subprocess.run(args + ([f"masks={masks}"] if separate else []), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "wrote 2 pairs from 3 photos" in done.stdout and "1 no subject" in done.stdout, done.stdout
    out = tmp_path / "set"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["skipped"] == {"portraits-3": "no subject"}, "the empty mask is skipped with its reason; photo 4, without a mask, is left out"
    assert sorted(json.loads((out / F_NUMBERS).read_text())) == ["portraits-1", "portraits-2"]
    from PIL import Image

    name = "portraits-1"
    original, bokeh = (read_rgb(out / folder / f"{name}.jpg").astype(int) for folder in (INPUT_DIR, TARGET_DIR))
    with Image.open(out / FOCAL_DIR / f"{name}.png") as focal:
        assert np.array_equal(np.asarray(focal) == 255, subject), "focal/ is the given mask"
    radius = read_coc(out / COC_DIR / f"{name}.png")
    assert radius[subject].max() == 0.0 and radius[~subject].mean() > 1.0, "the subject at the focus distance, the rest behind it"
    interior = ndimage.binary_erosion(subject, iterations=3)
    assert np.abs(original - bokeh)[interior].mean() < 4.0, "the subject's pixels unchanged (JPEG and noise)"
    assert np.abs(original - bokeh)[~ndimage.binary_dilation(subject, iterations=8)].mean() > 4 * np.abs(original - bokeh)[interior].mean()


# ----------------------------------------------------------------------------- overwrite=true replaces the whole older set (issue 25)
def bsds_source(root: Path) -> Path:
    """The BSDS500-like folder of these tests (two photos with subjects, one without)."""
    return make_source(root)


def photo_pairs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return cli("bokeh.data.photo_pairs", *args, cwd=cwd, timeout=300)


def names_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.iterdir())


def test_photo_pairs_overwrite_removes_the_older_sets_pairs(tmp_path):
    src, out = bsds_source(tmp_path / "src"), tmp_path / "set"
    for sub in ("original", "bokeh", "coc", "focal"):  # an older set: other pairs, other names
        (out / sub).mkdir(parents=True)
        Image.fromarray(gradient_photo(32, 48)).save(out / sub / ("bsds-old-9" + (".png" if sub in ("coc", "focal") else ".jpg")))
    (out / "meta.json").write_text(json.dumps({"generator": "bokeh.data.photo_pairs", "pairs": 1}))
    result = photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(json.loads((out / "f_numbers.json").read_text()))
    for sub in ("original", "bokeh", "coc", "focal"):
        assert names_in(out / sub) == written, sub
