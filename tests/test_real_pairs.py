"""The real-pair benchmark: its metrics, the folder loader, the scoring and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from bokeh import metrics
from bokeh.data.pairs import DataLayoutError
from bokeh.data.real_pairs import interior_point, list_real_pairs
from bokeh.metrics import gaussian_blur
from bokeh.evaluate.real import evaluate_real, score_real_pairs
from bokeh.images import write_image
from PIL import Image
from test_render import gradient_photo
from user_cli import cli, one_line

SHARED_PAIRS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real_pairs"


def textured(seed: int = 0, size: tuple[int, int] = (64, 96)) -> torch.Tensor:
    """``(1, 3, H, W)`` in [0.1, 0.9]: smooth colour gradients plus fine random texture."""
    generator = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size[1]).expand(1, 3, *size) * torch.tensor([0.3, 0.2, 0.1]).view(1, 3, 1, 1)
    return (0.1 + ramp + 0.5 * torch.rand(1, 3, *size, generator=generator)).clamp(0.1, 0.9)


def half_mask(size: tuple[int, int] = (64, 96)) -> torch.Tensor:
    mask = torch.zeros(1, 1, *size, dtype=torch.bool)
    mask[..., :, : size[1] // 2] = True
    return mask


# ----------------------------------------------------------------------------- metrics
def test_the_split_over_every_pixel_is_plain_psnr_and_ssim():
    output, target = textured(1), textured(2)
    everything = torch.ones(1, 1, 64, 96, dtype=torch.bool)
    assert torch.allclose(metrics.psnr_masked(output, target, everything), metrics.psnr(output, target))
    assert torch.allclose(metrics.ssim_masked(output, target, everything), metrics.ssim(output, target, kind="uniform"))
    assert torch.allclose(metrics.ssim_masked(output, target, everything, kind="gaussian"), metrics.ssim(output, target))
    # a subject mask covering everything: "in focus" is the whole picture
    scores = metrics.real_pair_scores(output, textured(3), target, everything)
    assert torch.allclose(scores["psnr_in_focus"], scores["psnr"]) and torch.allclose(scores["ssim_in_focus"], scores["ssim"])
    assert torch.isnan(scores["psnr_defocus"]).all()


def test_scores_are_unchanged_by_a_global_tone_change_of_the_output():
    image, target = textured(0), textured(0) * 0.9 + 0.05  # the target: re-exposed
    output = gaussian_blur(1.5)(image)
    gain, offset = torch.tensor([0.8, 1.1, 0.7]).view(1, 3, 1, 1), torch.tensor([0.05, -0.02, 0.1]).view(1, 3, 1, 1)
    toned = output * gain + offset
    assert 0 <= toned.min() and toned.max() <= 1  # no clipping: the change is exactly affine
    plain = metrics.real_pair_scores(output, image, target, half_mask())
    changed = metrics.real_pair_scores(toned, image, target, half_mask())
    assert not torch.allclose(metrics.psnr(toned, target), metrics.psnr(output, target), atol=0.1)  # without the match it differs
    for key, value in plain.items():
        assert torch.allclose(changed[key], value, atol=1e-4, rtol=1e-4), key


def test_detail_kept_by_the_input_is_one_and_by_a_strong_blur_small():
    image = textured(4)
    assert torch.allclose(metrics.detail_ratio(image, image), torch.ones(1, 1, 64, 96))
    assert metrics.detail_ratio(gaussian_blur(4.0)(image), image).median() < 0.05
    scores = metrics.real_pair_scores(image, image, image * 0.9 + 0.05, half_mask())
    assert scores["detail_in_focus"].item() == pytest.approx(1.0) and scores["detail_defocus"].item() == pytest.approx(1.0)


def test_without_a_mask_the_split_follows_the_detail_the_target_keeps():
    image = textured(6)
    target = image.clone()
    target[..., :, 48:] = gaussian_blur(6.0)(image)[..., :, 48:]  # right half defocused
    sets = metrics.real_split(image, target)
    assert sets["in_focus"][..., :, :24].all() and not sets["in_focus"][..., :, 72:].any()
    assert sets["defocus"][..., :, 72:].all() and not sets["defocus"][..., :, :24].any()
    flat = torch.full_like(image, 0.5)
    assert not metrics.real_split(flat, flat)["in_focus"].any()  # flat areas are in neither set


def test_the_interior_point_lies_deep_inside_the_mask():
    mask = np.zeros((300, 500), bool)
    mask[100:260, 50:150] = True  # a tall rectangle, centre (100, 180)
    mask[20:40, 400:480] = True  # a thin strip elsewhere
    x, y = interior_point(mask)
    assert mask[int(y * 300), int(x * 500)]
    assert abs(x * 500 - 100) < 6 and 140 < y * 300 < 220  # on the rectangle's axis, far from its edges
    assert interior_point(mask) == (x, y)  # deterministic
    assert interior_point(np.zeros((10, 10), bool)) is None


# ----------------------------------------------------------------------------- loader
def write_photo(path: Path, seed: int, size=(48, 64)) -> None:
    """Random texture; seed 1 is seed 0's photo darker and with its right half smoothed (a target)."""
    rng = np.random.default_rng(0 if seed == 1 else seed)
    photo = rng.integers(0, 256, (*size, 3)).astype(np.float32)
    if seed == 1:
        photo = 0.8 * photo
        photo[:, size[1] // 2:] = photo[:, size[1] // 2:].mean((0, 1))
    write_image(path, photo.round().astype(np.uint8))


def write_ebb_set(root: Path, names=("1", "2"), masks=True) -> Path:
    for name in names:
        write_photo(root / "original" / f"{name}.png", 0)
        write_photo(root / "bokeh" / f"{name}.png", 1)
        if masks:
            mask = np.zeros((48, 64, 3), np.uint8)
            mask[10:40, 20:50] = 255
            write_image(root / "focal" / f"{name}.png", mask)
    return root


def write_multi_set(root: Path) -> Path:
    write_photo(root / "original" / "0001.png", 0)
    for folder in ("f8", "f2.8", "f1.8"):
        write_photo(root / folder / "0001.png", 1)
    return root


def test_the_loader_reads_both_layouts_and_a_folder_of_sets(tmp_path):
    ebb = list_real_pairs(write_ebb_set(tmp_path / "sets" / "ebb"))
    assert [(p.name, p.aperture, p.mask is not None) for p in ebb] == [("1 f/1.8", 1.8, True), ("2 f/1.8", 1.8, True)]
    assert list_real_pairs(tmp_path / "sets" / "ebb", bokeh_aperture=2.0)[0].aperture == 2.0
    multi = list_real_pairs(write_multi_set(tmp_path / "sets" / "vabd"))
    assert [(p.name, p.aperture, p.mask) for p in multi] == [("0001 f/8", 8.0, None), ("0001 f/2.8", 2.8, None),
                                                             ("0001 f/1.8", 1.8, None)]
    both = list_real_pairs(tmp_path / "sets")
    assert [p.name for p in both] == ["ebb/1 f/1.8", "ebb/2 f/1.8", "vabd/0001 f/8", "vabd/0001 f/2.8", "vabd/0001 f/1.8"]
    assert [p.name for p in list_real_pairs(tmp_path / "sets", apertures=(2.8,))] == ["vabd/0001 f/2.8"]


@pytest.mark.parametrize("damage, message", [
    (lambda root: None, "is not a folder of real pairs"),
    (lambda root: write_photo(root / "set" / "original" / "1.png", 0), "no target folder"),
    (lambda root: (write_ebb_set(root / "set"), write_photo(root / "set" / "bokeh" / "3.png", 0)), "has no input"),
    (lambda root: (write_ebb_set(root / "set"), write_photo(root / "set" / "original" / "3.png", 0)), "has no target"),
    (lambda root: (write_ebb_set(root / "set"), write_photo(root / "set" / "bokeh" / "2.png", 0, (40, 64))), "must have one size"),
    (lambda root: (write_ebb_set(root / "set"), write_photo(root / "set" / "bokeh" / "2.jpg", 0)), "two files named 2"),
    (lambda root: (write_ebb_set(root / "set"), (root / "set" / "f0").mkdir()), "not an f-number"),
])
def test_a_bad_folder_is_refused_in_one_sentence(tmp_path, damage, message):
    (tmp_path / "empty").mkdir()
    damage(tmp_path)
    with pytest.raises(DataLayoutError, match=message) as error:
        list_real_pairs(tmp_path)
    assert "\n" not in str(error.value)


# ----------------------------------------------------------------------------- scoring, CLI
def test_scoring_passes_the_controls_only_when_asked(tmp_path):
    pairs = list_real_pairs(write_ebb_set(tmp_path / "ebb", names=("1",)))
    calls = []

    def render(image, focus, aperture):
        calls.append((focus, aperture))
        return image

    plain = evaluate_real(pairs, render)
    tapped = evaluate_real(pairs, render, tap=True, aperture=True)
    assert calls[0] == (None, None) and calls[1][1] == 1.8
    x, y = calls[1][0]
    assert 20 <= x * 64 < 50 and 10 <= y * 48 < 40  # inside the written mask
    assert plain["pairs"][0]["model"] == plain["pairs"][0]["identity"]  # the identity renderer scores as identity
    assert plain["pairs"][0]["model"]["detail_in_focus"] == pytest.approx(1.0)
    assert set(tapped["means"]) == {"f/1.8"} and tapped["means"]["f/1.8"]["model"]["pairs"] == 1


def test_score_real_pairs_scores_a_generator_at_a_reduced_size(tmp_path):
    from bokeh.models.glassnet import GlassNet

    generator = GlassNet(4, 4, 1, global_residual=True).train()
    scores = score_real_pairs(generator, write_multi_set(tmp_path / "vabd"), short_side=24, apertures=None, baselines=True)
    assert generator.training  # its mode is given back
    assert scores["pairs"] == 3 and all(math.isfinite(scores[k]) for k in ("psnr", "ssim", "identity/psnr"))
    assert scores["identity/detail_in_focus"] == pytest.approx(1.0)


def test_cli_scores_a_folder_and_writes_its_report(tmp_path, capsys):
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    write_ebb_set(tmp_path / "real" / "ebb", names=("1",))
    write_multi_set(tmp_path / "real" / "vabd")
    results = evaluate.main([f"ckpt={checkpoint}", f"real={tmp_path / 'real'}", f"out={tmp_path / 'metrics.json'}"])
    table = capsys.readouterr().out
    assert "f/1.8 targets, 2 pair(s)" in table and "f/8 targets, 1 pair(s)" in table and "best global blur" in table
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert [row["name"] for row in written["pairs"]] == [row["name"] for row in results["pairs"]]
    assert len(written["pairs"]) == 4 and {"model", "identity", "gaussian blur"} <= set(written["pairs"][0])


def test_cli_taps_and_sets_the_aperture_for_a_model_with_controls_and_refuses_them_otherwise(tmp_path, capsys):
    from bokeh.evaluate import __main__ as evaluate
    from test_render import write_tiny_checkpoint

    controlled = write_tiny_checkpoint(tmp_path / "controls.ckpt", focus_input=True, aperture_input=True)
    write_ebb_set(tmp_path / "real" / "ebb", names=("1",))
    write_multi_set(tmp_path / "real" / "vabd")
    tapped = evaluate.main([f"ckpt={controlled}", f"real={tmp_path / 'real'}"])  # auto: both on
    assert "tap=on, aperture=on" in capsys.readouterr().err
    auto = evaluate.main([f"ckpt={controlled}", f"real={tmp_path / 'real'}", "tap=false", "aperture=false"])
    assert "tap=off, aperture=off" in capsys.readouterr().err
    # the masked pair is rendered differently when tapped; the f/8 target of the mask-less set when told its f-number
    model = {(r["name"], r["aperture"]): r["model"]["psnr"] for r in tapped["pairs"]}
    plain = {(r["name"], r["aperture"]): r["model"]["psnr"] for r in auto["pairs"]}
    assert set(model) == set(plain) and any(abs(model[k] - plain[k]) > 1e-3 for k in model)
    plain_model = write_tiny_checkpoint(tmp_path / "plain.ckpt")
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([f"ckpt={plain_model}", f"real={tmp_path / 'real'}", "tap=true"])
    assert exit_.value.code == 2 and "takes no tap-to-focus point" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        evaluate.main([f"ckpt={plain_model}", f"real={tmp_path / 'real'}", "tap=maybe"])
    assert exit_.value.code == 2 and "tap=maybe:" in capsys.readouterr().err


def test_cli_refuses_bad_arguments_before_any_work(tmp_path, capsys):
    from bokeh.evaluate import __main__ as evaluate

    write_ebb_set(tmp_path / "real")
    for args, message in ((["ckpt=reference", f"real={tmp_path / 'real'}", "data=ebb"], "unknown argument"),
                          (["ckpt=reference", f"real={tmp_path / 'nowhere'}"], "does not exist"),
                          (["ckpt=reference", f"real={tmp_path / 'real'}", "bokeh_aperture=0"], "f-number"),
                          (["ckpt=reference", f"real={tmp_path / 'real'}", "apertures=2.8"], "no pair with a target at f/2.8"),
                          (["ckpt=reference", f"real={tmp_path / 'real'}", "apertures=x"], "separated by commas"),
                          ([f"ckpt={tmp_path / 'missing.ckpt'}", f"real={tmp_path / 'real'}"], "no such file")):
        with pytest.raises(SystemExit) as exit_:
            evaluate.main(args)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


# ----------------------------------------------------------------------------- the project's real pairs
@pytest.mark.skipif(not SHARED_PAIRS.is_dir(), reason=f"the project's real pairs are absent ({SHARED_PAIRS})")
def test_on_the_real_pairs_identity_keeps_its_detail_and_the_best_blur_beats_it():
    pairs = list_real_pairs(SHARED_PAIRS, apertures=(1.8,))[:2]
    means = evaluate_real(pairs, None, short_side=256)["means"]["f/1.8"]
    assert means["identity"]["detail_in_focus"] == pytest.approx(1.0)
    assert means["gaussian blur"]["psnr"] > means["identity"]["psnr"]
    assert means["target"]["detail_in_focus"] > means["target"]["detail_defocus"]


def test_the_validation_callback_logs_real_scores_and_skips_a_missing_folder_with_one_warning(tmp_path):
    from types import SimpleNamespace

    from bokeh.callbacks import RealPairScores
    from bokeh.models.glassnet import GlassNet

    logged = {}
    module = SimpleNamespace(generator=GlassNet(4, 4, 1, global_residual=True),
                             log=lambda key, value, **kwargs: logged.__setitem__(key, value))
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True)
    RealPairScores(str(write_ebb_set(tmp_path / "ebb")), short_side=32).on_validation_epoch_end(trainer, module)
    assert set(logged) == {f"real/{k}" for k in RealPairScores.KEYS} and math.isfinite(logged["real/psnr"])
    logged.clear()
    missing = RealPairScores(str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="real-pair scores are off") as caught:
        missing.on_validation_epoch_end(trainer, module)
        missing.on_validation_epoch_end(trainer, module)
    assert len(caught) == 1 and not logged


def test_targets_of_one_f_number_in_two_folders_are_refused_not_scored_twice(tmp_path):
    # issue 32: bokeh/ (f/1.8) and f1.8/ gave each pair twice under one name
    root = write_ebb_set(tmp_path / "set", names=("1",), masks=False)
    write_photo(root / "f1.8" / "1.png", 1)
    with pytest.raises(DataLayoutError, match=r"targets at f/1.8 in both bokeh/ and f1.8/: keep one folder"):
        list_real_pairs(root)
    assert [p.name for p in list_real_pairs(root, bokeh_aperture=2.0)] == ["1 f/2", "1 f/1.8"], "told what bokeh/ holds, both are scored"


# ----------------------------------------------------------------------------- values the model never learned; masks; one sentence (issue 25)
def real_set(root: Path, targets: tuple[str, ...] = ("bokeh",), side: int = 48, mask: Image.Image | None = None) -> Path:
    for folder in ("original", *targets):
        (root / folder).mkdir(parents=True)
        Image.fromarray(gradient_photo(side, side + 16)).save(root / folder / "a.png")
    if mask is not None:
        (root / "focal").mkdir()
        mask.save(root / "focal" / "a.png")
    return root


@pytest.mark.parametrize("entry, targets, extra", [
    ("bokeh.evaluate", ("f100",), ()), ("bokeh.evaluate", ("f0.4",), ()), ("bokeh.evaluate", ("bokeh",), ("bokeh_aperture=100",)),
    ("bokeh.demo", ("f100",), ()), ("bokeh.demo", ("f0.4",), ()),  # the demo takes no bokeh_aperture=
], ids=["evaluate-f100", "evaluate-f0.4", "evaluate-bokeh_aperture=100", "demo-f100", "demo-f0.4"])
def test_real_pair_f_numbers_out_of_range_are_refused_before_any_work(entry, targets, extra, tmp_path):
    folder = real_set(tmp_path / "real", targets)
    args = ["ckpt=reference", f"real={folder}", *extra] if entry == "bokeh.evaluate" else [f"real={folder}", f"out={tmp_path / 'demo'}"]
    err = one_line(cli(entry, *args, cwd=tmp_path, timeout=120))
    assert "f-number" in err or "wider than the model" in err
    assert "rendered as bokeh.render renders" not in err + "" and not (tmp_path / "demo").exists()


def test_an_rgba_cut_out_subject_mask_is_read_by_its_alpha(tmp_path):
    cut_out = np.zeros((48, 64, 4), np.uint8)
    cut_out[..., :3] = 40  # a dark subject: its brightness alone would say "background"
    cut_out[12:36, 16:48, 3] = 255
    folder = real_set(tmp_path / "real", mask=Image.fromarray(cut_out, "RGBA"))
    result = cli("bokeh.evaluate", "ckpt=reference", f"real={folder}", "tap=true", f"out={tmp_path / 'm.json'}", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    from bokeh.images import read_mask

    assert read_mask(folder / "focal" / "a.png").sum() == 24 * 32


def test_real_pairs_too_small_to_score_are_refused_in_one_sentence(tmp_path):
    folder = real_set(tmp_path / "real", side=24)
    err = one_line(cli("bokeh.evaluate", "ckpt=reference", f"real={folder}", cwd=tmp_path))
    assert "too small to score" in err


def test_a_uniform_pair_is_skipped_with_one_line_and_the_means_stay_finite(tmp_path, capsys):
    """issue 32, F12: a uniform white pair scored an infinite PSNR and made the mean infinite (null in JSON)."""
    import math

    import numpy as np
    from PIL import Image

    from bokeh.data.real_pairs import list_real_pairs
    from bokeh.evaluate.real import evaluate_real

    textured = (np.arange(64 * 96 * 3) % 251).astype(np.uint8).reshape(64, 96, 3)
    for folder in ("original", "bokeh"):
        (tmp_path / folder).mkdir()
        Image.fromarray(np.full((64, 96, 3), 255, np.uint8)).save(tmp_path / folder / "white.png")
        Image.fromarray(textured if folder == "original" else textured // 2).save(tmp_path / folder / "g.png")
    results = evaluate_real(list_real_pairs(tmp_path), lambda image, focus, aperture: image)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{tmp_path / 'bokeh' / 'white.png'}: skipped: its scores are not finite (model: psnr=inf" in err[0], err
    assert [row["name"] for row in results["pairs"]] == ["g f/1.8"] and list(results["skipped"]) == ["white f/1.8"]
    assert all(math.isfinite(value) for method in results["means"]["f/1.8"].values() for key, value in method.items()
               if key in ("psnr", "ssim", "pairs"))
