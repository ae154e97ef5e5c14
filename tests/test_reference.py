"""The reference model shipped in the package (``src/bokeh/pretrained/reference.*``), as users reach it.

These use the real shipped weights: a clone without them is broken, so nothing here skips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bokeh import pretrained

REPO = Path(__file__).resolve().parents[1]
EXPORT_SIZE = (64, 96)


def test_the_reference_weights_load_in_a_fresh_process_with_weights_only():
    """torch's default loader (weights_only=True) reads the file in a new interpreter; fp16 tensors only,
    25 MB at most, and the same bytes the description names."""
    description = pretrained.meta("reference")
    weights = pretrained.FOLDER / description["file"]
    assert weights.stat().st_size <= 25 * 2**20
    code = (
        "import json, sys, torch\n"
        f"state = torch.load({str(weights)!r})\n"  # torch's default: weights_only=True
        "print(json.dumps({k: [str(v.dtype), list(v.shape)] for k, v in state.items()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    tensors = json.loads(result.stdout.splitlines()[-1])
    assert {dtype for dtype, _ in tensors.values()} == {"torch.float16"}
    generator = pretrained.load("reference")
    assert {k: list(v.shape) for k, v in generator.state_dict().items()} == {k: shape for k, (_, shape) in tensors.items()}


def test_the_description_holds_how_it_was_trained_and_what_it_scored():
    description = pretrained.meta("reference")
    assert description["training"]["command"].startswith("python -m bokeh.train")
    assert description["training"]["global_step"] > 0
    for split in ("demo", "reference"):
        scores = description["scores"][split]
        assert {"model", "identity", "oracle blur"} <= set(scores)
        assert {"psnr", "psnr_in_focus", "psnr_defocus"} <= set(scores["model"])


def test_the_reference_model_keeps_a_sharp_subject_and_blurs_the_far_background():
    """On a synthetic scene it never saw: pixels the target keeps sharp change little, strongly defocused
    ones move towards the target (better than the unchanged input)."""
    from bokeh.data.synthetic import make_pair
    from bokeh.metrics import psnr_split

    generator = pretrained.load("reference")
    model_split, input_split = [], []
    for index in range(3):
        pair = make_pair(10_000 + index, seed=7, size=(256, 384))
        image, target = (torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 255 for a in (pair.sharp, pair.bokeh))
        radius = torch.from_numpy(pair.blur_radius)[None, None]
        with torch.no_grad():
            output = (generator(image * 2 - 1)[0] + 1) / 2
        model_split.append({k: float(v) for k, v in psnr_split(output, target, radius).items()})
        input_split.append({k: float(v) for k, v in psnr_split(image, target, radius).items()})
    model_defocus = np.nanmean([m["defocus"] for m in model_split])
    input_defocus = np.nanmean([i["defocus"] for i in input_split])
    assert model_defocus > input_defocus + 1.0, (model_defocus, input_defocus)
    assert np.nanmean([m["in_focus"] for m in model_split]) > 28.0, model_split


def test_render_ckpt_reference_runs_at_the_scale_it_was_trained_at(tmp_path):
    from PIL import Image

    from bokeh.images import read_rgb
    from bokeh.render import load_backend, render_to_uint8
    from bokeh.render.__main__ import main

    backend = load_backend("reference")
    assert backend.short_side == pretrained.meta("reference")["input"]["short_side"] == 256
    photo = (np.random.default_rng(0).random((300, 420, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    assert main([f"input={tmp_path / 'photo.png'}", "ckpt=reference", f"out={tmp_path / 'out'}"]) == 0
    rendered = read_rgb(tmp_path / "out" / "photo.png")
    assert rendered.shape == photo.shape
    np.testing.assert_array_equal(rendered, render_to_uint8(photo, backend))


@pytest.mark.export
@pytest.mark.slow
def test_the_reference_model_gives_the_same_output_through_torch_onnx_runtime_and_tflite(tmp_path):
    """``make tflite CKPT=reference`` at a small size: the export's own parity checks pass, and the three
    runtimes agree on a real photo (PSNR >= 40 dB between rendered images)."""
    from skimage.data import astronaut
    from skimage.metrics import peak_signal_noise_ratio
    from skimage.transform import resize

    from bokeh.render import load_backend, render_to_uint8

    out = tmp_path / "export"
    result = subprocess.run(
        [sys.executable, "-m", "bokeh.export", "ckpt=reference", f"out={out}", f"size={EXPORT_SIZE[0]}x{EXPORT_SIZE[1]}",
         "export.float16=false", "verify.latency_repeats=1", "verify.tf_analyzer=false", "verify.gpu_accelerator=off"],
        capture_output=True, text=True, timeout=1200, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    checks = json.loads((out / "report.json").read_text())["checks"]
    for name in ("onnxruntime_vs_torch", "tflite_float32_vs_torch"):
        assert checks[name]["passed"], checks[name]
    photo = (resize(astronaut(), EXPORT_SIZE, anti_aliasing=True) * 255).round().astype(np.uint8)
    rendered = {name: render_to_uint8(photo, load_backend(path))
                for name, path in (("torch", "reference"), ("onnx", out / "bokeh.onnx"), ("tflite", out / "bokeh_float32.tflite"))}
    for other in ("onnx", "tflite"):
        assert peak_signal_noise_ratio(rendered["torch"], rendered[other], data_range=255) >= 40, other


def test_init_from_reference_starts_a_run_from_the_shipped_weights(tmp_path):
    """``init_from=reference``: the first step starts from the shipped generator (checked on the saved
    hyper-parameters and weights after a one-step run)."""
    from bokeh.checkpoint import load_generator

    settings = pretrained.meta("reference")["model"]
    model = [f"model.{key}={str(value).lower() if isinstance(value, bool) else value}" for key, value in settings.items()
             if key in ("width1", "width2", "blocks", "global_residual", "full_res_skip", "focus_input", "aperture_input", "blend")]
    result = subprocess.run(
        [sys.executable, "-m", "bokeh.train", *model, "init_from=reference", "data.n=6", "data.val_count=1",
         "data.batch_size=1", "data.size=[64,96]", "data.crop_size=[64,96]", "optim.lr_g=0.0", "trainer.max_steps=1",
         "trainer.enable_progress_bar=false", "hydra.run.dir=run", "critic.ndf=4",
         "trainer.precision=bf16-mixed"],  # bf16 on every machine: precision=auto picks it only where native
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    last = sorted((tmp_path / "run").rglob("*.ckpt"))
    assert last, result.stdout[-2000:]
    trained, shipped = load_generator(last[-1]), pretrained.load("reference")
    for (name, a), (_, b) in zip(trained.state_dict().items(), shipped.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)  # lr 0: one step leaves the shipped weights as they were


def _unseen_scenes(count: int = 8):
    """Synthetic scenes the reference never saw (set 7), with their tap point and regions."""
    from bokeh.data.focus import interior_point
    from bokeh.data.synthetic import make_pair

    for index in range(count):
        pair = make_pair(20_000 + index, seed=7, size=(256, 384))
        radius = pair.blur_radius
        sharp, far = radius < 1.0, radius >= 4.0
        if sharp.mean() < 0.02 or far.mean() < 0.05:
            continue
        image = torch.from_numpy(np.ascontiguousarray(pair.sharp)).permute(2, 0, 1)[None].float() / 127.5 - 1
        yield image, torch.from_numpy(sharp)[None, None], torch.from_numpy(far)[None, None], interior_point(sharp), interior_point(far)


def _detail(generator, image, mask, focus=None, aperture=None) -> float:
    """Median detail kept (bokeh.metrics.detail_ratio) over ``mask`` for one render."""
    from bokeh.metrics import detail_ratio

    controls = {"focus": torch.tensor([focus]) if focus else None, "aperture": torch.tensor([[aperture]]) if aperture else None}
    with torch.no_grad():
        output = generator(image, **controls)[0].clamp(-1, 1)
    ratio = detail_ratio((output + 1) / 2, (image + 1) / 2)
    return float(ratio[mask].median())


def test_the_reference_takes_a_tap_and_an_aperture():
    generator = pretrained.load("reference")
    assert generator.contract.names == ("image", "focus", "aperture")
    assert pretrained.meta("reference")["controls"]["inputs"] == ["image", "focus", "aperture"]


def test_a_wider_aperture_blurs_more_away_from_the_point():
    """Tapped on the in-focus region of unseen scenes, the far region keeps less detail at f/1.8 than
    at f/4, and less at f/4 than at f/11 (averaged over the scenes)."""
    generator = pretrained.load("reference")
    kept = {1.8: [], 4.0: [], 11.0: []}
    for image, _sharp, far, point, _far_point in _unseen_scenes():
        for f_number in kept:
            kept[f_number].append(_detail(generator, image, far, point, f_number))
    means = {f: float(np.mean(v)) for f, v in kept.items()}
    assert len(kept[1.8]) >= 2 and means[1.8] < means[4.0] < means[11.0], means


def test_moving_the_point_moves_the_sharp_region():
    """Tapping the far region instead of the subject keeps more of the far region's detail and less of
    the subject's (averaged over unseen scenes, at f/1.8)."""
    generator = pretrained.load("reference")
    subject_tap, far_tap = [], []
    for image, sharp, far, point, far_point in _unseen_scenes():
        subject_tap.append((_detail(generator, image, sharp, point), _detail(generator, image, far, point)))
        far_tap.append((_detail(generator, image, sharp, far_point), _detail(generator, image, far, far_point)))
    (subject_sharp, subject_far), (far_sharp, far_far) = np.mean(subject_tap, 0), np.mean(far_tap, 0)
    assert subject_sharp > far_sharp and far_far > subject_far, (subject_tap, far_tap)
