"""The portrait benchmark (``bokeh.evaluate portraits=``): matte IoU, detail kept on the person and on
the textured background, the folder checks and the CLI. Tiny folders are written here; the test on
the project's portraits reads ../shared and skips without it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bokeh import metrics
from bokeh.data.portraits import list_portraits
from bokeh.metrics import gaussian_blur
from bokeh.evaluate.portraits import evaluate_portraits
from bokeh.images import from_tensor, to_tensor, write_image

SHARED_PORTRAITS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "portraits"
SIZE = (72, 96)


def person_mask(size: tuple[int, int] = SIZE) -> np.ndarray:
    """``(H, W)`` bool: an upright ellipse in the middle, a third of the frame."""
    yy, xx = np.mgrid[: size[0], : size[1]]
    return ((yy - size[0] / 2) / (size[0] * 0.35)) ** 2 + ((xx - size[1] / 2) / (size[1] * 0.22)) ** 2 <= 1.0


def textured_photo(seed: int = 0, size: tuple[int, int] = SIZE, flat_left: bool = False) -> np.ndarray:
    """``(H, W, 3)`` uint8: fine random texture everywhere (or a flat gray left quarter, beside the mask)."""
    rng = np.random.default_rng(seed)
    photo = rng.integers(40, 216, (*size, 3), dtype=np.uint8)
    if flat_left:
        photo[:, : size[1] // 4] = 128
    return photo


def write_portraits(root: Path, names=("a", "b"), size: tuple[int, int] = SIZE, flat_left: bool = False) -> Path:
    for k, name in enumerate(names):
        write_image(root / "images" / f"{name}.png", textured_photo(k, size, flat_left))
        write_image(root / "masks" / f"{name}.png", np.where(person_mask(size), 255, 0).astype(np.uint8))
    return root


def stub(output=lambda image: image, matte=lambda mask: torch.from_numpy(mask).float(), size=SIZE):
    """A render that returns ``output(photo)`` and ``matte(the photos' mask)``."""
    mask = person_mask(size)

    def render(image, focus, aperture):
        made = matte(mask)
        return output(image), made

    return render


def blurred(image: np.ndarray, sigma: float = 4.0) -> np.ndarray:
    return from_tensor(gaussian_blur(sigma)(to_tensor(image)[None])[0])


# ----------------------------------------------------------------------------- the numbers
def test_a_matte_equal_to_the_mask_scores_one_and_its_complement_zero(tmp_path):
    portraits = list_portraits(write_portraits(tmp_path / "p"))
    same = evaluate_portraits(portraits, stub())["summary"]
    inverse = evaluate_portraits(portraits, stub(matte=lambda mask: torch.from_numpy(~mask).float()))["summary"]
    for run in ("auto", "tapped"):
        assert same[run]["matte_iou"]["mean"] == pytest.approx(1.0) and same[run]["matte_iou"]["photos"] == 2
        assert inverse[run]["matte_iou"]["mean"] == pytest.approx(0.0, abs=1e-6)
    # a matte at a working size below the photo's is scored against the mask reduced to it
    half = evaluate_portraits(portraits, stub(matte=lambda mask: torch.nn.functional.interpolate(
        torch.from_numpy(mask).float()[None, None], scale_factor=0.5, mode="area")[0, 0]), tapped=False)["summary"]
    assert half["auto"]["matte_iou"]["mean"] > 0.95 and "tapped" not in half


def test_detail_kept_is_one_for_the_photo_and_small_for_a_strong_blur(tmp_path):
    portraits = list_portraits(write_portraits(tmp_path / "p"))
    identity = evaluate_portraits(portraits, stub(), tapped=False)["summary"]["auto"]
    soft = evaluate_portraits(portraits, stub(output=blurred), tapped=False)["summary"]["auto"]
    assert identity["detail_subject"]["mean"] == pytest.approx(1.0) and identity["detail_background"]["mean"] == pytest.approx(1.0)
    assert soft["detail_subject"]["median"] < 0.2 and soft["detail_background"]["median"] < 0.2
    # a portrait mode: the photo on the person, the blur on the rest (on a larger photo: the 33 px
    # energy window of the person's pixels near the outline reaches into the blurred background)
    size = (144, 192)
    mask = person_mask(size)[..., None]
    larger = list_portraits(write_portraits(tmp_path / "larger", names=("a",), size=size))
    portrait_mode = evaluate_portraits(larger, stub(output=lambda image: np.where(mask, image, blurred(image)), size=size), tapped=False)
    scores = portrait_mode["summary"]["auto"]
    assert scores["detail_subject"]["mean"] > 0.9 and scores["detail_background"]["mean"] < 0.05


def test_the_sets_leave_a_band_at_the_outline_and_the_background_only_its_textured_part():
    image = metrics.to_unit_range(to_tensor(textured_photo(0, flat_left=True)))[None]
    mask = torch.from_numpy(person_mask())[None, None]
    sets = metrics.portrait_sets(image, mask)
    band = metrics.band_pixels(SIZE)
    assert band == round(0.02 * 72) == 1
    subject, background = sets["subject"][0, 0], sets["background"][0, 0]
    assert subject.any() and background.any()
    assert not (subject & ~mask[0, 0]).any(), "the person set lies inside the mask"
    assert not (background & metrics.grow_mask(mask, band)[0, 0]).any(), "the background set lies beyond the grown mask"
    flat = metrics.flat_areas(image)[0, 0]
    assert flat[:, :8].all() and not (background & flat).any(), "flat areas are not textured background"
    assert background[:, 40:].any() and not background[:, :8].any()


def test_grow_and_shrink_are_square_and_the_border_is_not_outside():
    mask = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    mask[..., 5:15, 0:10] = True  # touches the left border
    grown, shrunk = metrics.grow_mask(mask, 2), metrics.shrink_mask(mask, 2)
    assert grown[0, 0].sum() == 14 * 12 and grown[0, 0, 3:17, 0:12].all()
    assert shrunk[0, 0].sum() == 6 * 8 and shrunk[0, 0, 7:13, 0:8].all(), "the frame's edge is no outline"


# ----------------------------------------------------------------------------- the CLI
def test_cli_scores_a_blend_model_auto_and_tapped_and_writes_metrics(tmp_path, capsys):
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "blend.ckpt", blend=True, focus_input=True, aperture_input=True)
    folder = write_portraits(tmp_path / "portraits")
    results = evaluate.main([f"ckpt={checkpoint}", f"portraits={folder}", f"out={tmp_path / 'metrics.json'}"])
    out, err = capsys.readouterr()
    assert "2 portrait(s)" in err and "at f/1.8, auto and tapped" in err and "no matte" not in err
    assert "matte IoU" in out and "textured background" in out and out.count("\nauto ") == 1 and "\ntapped " in out
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["matte"] and written["aperture"] == 1.8 and [r["name"] for r in written["photos"]] == ["a", "b"]
    for run in ("auto", "tapped"):
        summary = written["summary"][run]
        assert 0.0 <= summary["matte_iou"]["mean"] <= 1.0 and summary["matte_iou"]["photos"] == 2
        assert math.isfinite(summary["detail_subject"]["median"]) and summary == results["summary"][run]
    x, y = written["photos"][0]["focus"]
    assert person_mask()[int(y * SIZE[0]), int(x * SIZE[1])], "tapped inside the person"


def test_cli_says_a_model_has_no_matte_and_leaves_iou_out(tmp_path, capsys):
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "plain.ckpt")
    results = evaluate.main([f"ckpt={checkpoint}", f"portraits={write_portraits(tmp_path / 'p', names=('a',))}", "subject=off"])
    out, err = capsys.readouterr()
    assert "has no matte output: matte IoU is left out" in err and "auto only" in err
    assert "none, this model has no matte" in out and list(results["summary"]) == ["auto"]
    assert results["summary"]["auto"]["matte_iou"]["photos"] == 0 and math.isfinite(results["summary"]["auto"]["detail_subject"]["mean"])
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([f"ckpt={checkpoint}", f"portraits={tmp_path / 'p'}", "tap=true"])
    assert exit_.value.code == 2 and "takes no tap-to-focus point" in capsys.readouterr().err


def _refused(args: list[str], capsys) -> str:
    from bokeh.evaluate import __main__ as evaluate

    with pytest.raises(SystemExit) as exit_:
        evaluate.main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_bad_folder_or_argument_is_one_sentence_and_exit_2(tmp_path, capsys):
    assert "is not a portrait folder: expected images/" in _refused(["ckpt=reference", f"portraits={tmp_path / 'nowhere'}"], capsys)
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    assert "no photo in images/ has a mask" in _refused(["ckpt=reference", f"portraits={tmp_path / 'empty'}"], capsys)
    folder = write_portraits(tmp_path / "p", names=("a",))
    assert "aperture=0 " in _refused(["ckpt=reference", f"portraits={folder}", "aperture=0"], capsys)
    assert "tap=maybe:" in _refused(["ckpt=reference", f"portraits={folder}", "tap=maybe"], capsys)
    assert "no such file" in _refused([f"ckpt={tmp_path / 'missing.ckpt'}", f"portraits={folder}"], capsys)


def test_a_mask_of_another_size_is_named_before_any_render(tmp_path, capsys):
    folder = write_portraits(tmp_path / "p", names=("a", "b"))
    write_image(folder / "masks" / "b.png", np.zeros((SIZE[0] // 2, SIZE[1] // 2), np.uint8))
    err = _refused(["ckpt=reference", f"portraits={folder}"], capsys)
    assert f"{folder / 'masks' / 'b.png'}: mask of 36 x 48 does not match its photo" in err


# ----------------------------------------------------------------------------- the project's portraits
@pytest.mark.skipif(not SHARED_PORTRAITS.is_dir(), reason=f"the project's portraits are absent ({SHARED_PORTRAITS})")
def test_on_real_portraits_a_portrait_mode_from_the_true_mask_keeps_the_person_and_blurs_the_rest():
    from bokeh.data.portraits import read_portrait

    portraits = list_portraits(SHARED_PORTRAITS)[-4:]  # two of them have a textured background

    def through_the_mask(portrait):
        _, mask = read_portrait(portrait)
        return lambda image, focus, aperture: (np.where(mask[..., None], image, blurred(image, 8.0)), torch.from_numpy(mask).float())

    rows = [evaluate_portraits([p], through_the_mask(p), tapped=False)["summary"]["auto"] for p in portraits]
    assert all(r["matte_iou"]["mean"] == pytest.approx(1.0) for r in rows)
    assert all(r["detail_subject"]["mean"] > 0.99 for r in rows)
    textured = [r["detail_background"]["mean"] for r in rows if r["detail_background"]["photos"]]
    assert len(textured) >= 2 and max(textured) < 0.3, "an already soft background is no textured background"


def test_a_photo_with_an_all_black_mask_is_skipped_with_a_line_and_metrics_json_is_strict_json(tmp_path, capsys):
    # issue 32: an all-black person mask gave a NaN row and a bare NaN in metrics.json (not JSON)
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "plain.ckpt")
    folder = write_portraits(tmp_path / "portraits", names=("a", "empty"))
    write_image(folder / "masks" / "empty.png", np.zeros(SIZE, np.uint8))
    results = evaluate.main([f"ckpt={checkpoint}", f"portraits={folder}", f"out={tmp_path / 'metrics.json'}"])
    err = capsys.readouterr().err
    assert "empty: skipped: its mask is all black (no subject to score)" in err and "1 portrait(s)" in err
    text = (tmp_path / "metrics.json").read_text()
    written = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    assert [row["name"] for row in written["photos"]] == ["a"] == [row["name"] for row in results["photos"]]
    write_image(folder / "masks" / "a.png", np.zeros(SIZE, np.uint8))  # nothing left to score: one sentence, exit 2
    assert "every mask is all black or all white" in _refused([f"ckpt={checkpoint}", f"portraits={folder}"], capsys)


def test_portraits_take_every_image_type_and_refuse_two_photos_of_one_name(tmp_path):
    """issue 32, F9/F11: a .tif portrait was silently left out; x.jpg and x.png were scored twice under one name."""
    from PIL import Image

    from bokeh.data.pairs import DataLayoutError

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    photo = np.zeros((16, 16, 3), np.uint8)
    for name in ("a.tif", "b.webp", "c.jpg"):
        Image.fromarray(photo).save(tmp_path / "images" / name)
    for name in ("a.png", "b.png", "c.tif"):
        Image.fromarray(photo[..., 0]).save(tmp_path / "masks" / name)
    assert [(p.name, p.image.name, p.mask.name) for p in list_portraits(tmp_path)] == [
        ("a", "a.tif", "a.png"), ("b", "b.webp", "b.png"), ("c", "c.jpg", "c.tif")]
    Image.fromarray(photo).save(tmp_path / "images" / "a.png")
    with pytest.raises(DataLayoutError, match=r"images holds two files named a \(a.png and a.tif\)"):
        list_portraits(tmp_path)


def test_a_uniform_portrait_is_skipped_with_one_line(tmp_path, capsys):
    """issue 32, F13: a uniform white photo gave a NaN row (no detail in the person to measure) that was averaged over."""
    from PIL import Image

    from bokeh.evaluate.portraits import evaluate_portraits

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 30:60] = 255
    textured = (np.arange(64 * 96 * 3) % 251).astype(np.uint8).reshape(64, 96, 3)
    Image.fromarray(np.full((64, 96, 3), 255, np.uint8)).save(tmp_path / "images" / "white.png")
    Image.fromarray(textured).save(tmp_path / "images" / "t.png")
    for name in ("white", "t"):
        Image.fromarray(mask).save(tmp_path / "masks" / f"{name}.png")
    results = evaluate_portraits(list_portraits(tmp_path), lambda image, focus, aperture: (image, None), tapped=False)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'images' / 'white.png'}: skipped: its scores are not finite (auto: detail_subject=nan" in err[0], err
    assert [row["name"] for row in results["photos"]] == ["t"] and list(results["skipped"]) == ["white"]
