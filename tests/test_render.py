"""bokeh.render: any photo comes back at its own size and orientation, inputs are never touched,
outputs are never partial, and torch, ONNX Runtime and LiteRT render the same image.

The torch vs ONNX vs TFLite test converts one tiny checkpoint (Glass-Net 4/4, 1 block) at 64 x 96
once per session (about 20-30 s on 2 cores). ``tests/test_notebooks.py`` imports
:func:`write_tiny_checkpoint` from here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bokeh.model_files import CheckpointError
import torch
from PIL import Image
from torch import nn

from bokeh.checkpoint import load_generator
from bokeh.images import read_rgb, to_tensor
from bokeh.render import (
    ExportedBackend, TorchBackend, load_backend, plan_for, render_files, render_image, render_to_uint8,
)
from bokeh.render.__main__ import main
from bokeh.render.files import check_paths, list_inputs, RenderError
import bokeh.files
from bokeh.render.fit import plan_dynamic, plan_static, render_photo
import io
import struct
from PIL import ImageCms
from colour_profiles import ADOBE_RGB, SRGB_PRIMARIES, expected_srgb, icc_profile, patches
from user_cli import cli, one_line

REPO = Path(__file__).resolve().parents[1]
TINY = {"width1": 4, "width2": 4, "blocks": 1}
EXPORT_SIZE = (64, 96)  # (H, W) of the tiny export: landscape, so portrait photos get turned
ORIENTATION = 0x0112


# ----------------------------------------------------------------------------- helpers, fixtures
def write_tiny_checkpoint(path: Path, seed: int = 0, **generator) -> Path:
    """A real Lightning checkpoint of a tiny BokehGAN (``Trainer.save_checkpoint``), loadable with
    ``BokehGAN.load_from_checkpoint`` and ``bokeh.checkpoint.load_generator``; ``generator``: more
    Glass-Net settings (e.g. ``focus_input=True``).

    The generator's convs are He-initialized: Glass-Net's own N(0, 0.02) init gives outputs of
    order 1e-4 at these widths, which any two runtimes would trivially agree on.
    """
    import pytorch_lightning as pl

    from bokeh.lit import BokehGAN

    torch.manual_seed(seed)
    module = BokehGAN(generator={**TINY, **generator})
    for layer in module.generator.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=path.parent)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


def export_tiny(checkpoint: Path, out: Path, size: tuple[int, int] = EXPORT_SIZE) -> dict[str, Path]:
    """ONNX and float32 TFLite of ``checkpoint`` via the export pipeline (its own checks must pass)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bokeh.export import pipeline

    overrides = [f"ckpt={checkpoint}", f"out={out}", f"size={size[0]}x{size[1]}", "export.float16=false",
                 "verify.latency_repeats=1", "verify.tf_analyzer=false", "verify.gpu_accelerator=off"]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "conf" / "export"), version_base="1.3"):
            report = pipeline.run(compose("tflite", overrides=overrides))
    finally:
        GlobalHydra.instance().clear()
    assert not report.failed, report.to_json()["checks"]
    return {"ckpt": checkpoint, "onnx": out / "bokeh.onnx", "tflite": out / "bokeh_float32.tflite"}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


@pytest.fixture(scope="session")
def tiny_models(tiny_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """The tiny checkpoint and its ONNX / float32 TFLite exports (one conversion per session)."""
    return export_tiny(tiny_checkpoint, tmp_path_factory.mktemp("export"))


def gradient_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, asymmetric test photo (a bright corner top-left) plus a little noise.

    Shape: returns ``(height, width, 3)`` uint8. Smooth, so resizing and JPEG barely change it, and
    asymmetric, so a photo turned the wrong way cannot pass for the right one.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 255 * (1 - y / height) * (1 - x / width)
    green = 255 * x / width
    blue = 255 * y / height
    image = np.stack([red, green, blue], axis=2) + np.random.default_rng(seed).normal(0, 2, (height, width, 3))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def write_photo_cases(folder: Path) -> dict[str, np.ndarray]:
    """The odd inputs of issue 7 as files; returns each file name -> the upright RGB it shows."""
    folder.mkdir(parents=True, exist_ok=True)
    landscape, portrait = gradient_photo(677, 1001), gradient_photo(1001, 677, seed=1)
    Image.fromarray(landscape).save(folder / "landscape.jpg", quality=95, subsampling=0)
    Image.fromarray(portrait).save(folder / "portrait.png")
    gray = np.round(landscape.astype(np.float32).mean(axis=2)).astype(np.uint8)
    Image.fromarray(gray, mode="L").save(folder / "gray.png")
    rgba = np.concatenate([portrait, np.full((1001, 677, 1), 255, np.uint8)], axis=2)
    Image.fromarray(rgba, mode="RGBA").save(folder / "rgba.png")
    # EXIF orientation 6 ("turn 90 degrees clockwise to view"): stored landscape, shown portrait
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    Image.fromarray(landscape).save(folder / "exif_rotated.jpg", quality=95, subsampling=0, exif=exif)
    return {
        "landscape.jpg": landscape,
        "portrait.png": portrait,
        "gray.png": np.repeat(gray[..., None], 3, axis=2),
        "rgba.png": portrait,
        "exif_rotated.jpg": np.rot90(landscape, -1),  # turned clockwise: (1001, 677) portrait
    }


class Recording:
    """A stand-in model: returns its input (identity) and records the shapes it was given."""

    def __init__(self, static_size=None) -> None:
        self.static_size = static_size
        self.name = "identity"
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(image.shape))
        return image.clone()


# ----------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("size", [(677, 1001), (1001, 677), (8, 8), (1, 1), (3024, 4032), (4032, 3024)])
def test_dynamic_plan_pads_to_multiples_of_8_and_caps_the_short_side(size):
    plan = plan_dynamic(size, 1024)
    assert not plan.rotate and plan.size == size
    # multiples of 8 just above the photo, and at least 16 (an 8 x 8 or 1 x 1 photo: 16 x 16)
    assert all(c % 8 == 0 and c >= 16 and (0 <= c - w < 8 or c == 16) for c, w in zip(plan.canvas, plan.work))
    if min(size) <= 1024:
        assert plan.work == size  # never scaled up
    else:
        assert min(plan.work) == 1024
        assert abs(plan.work[1] / plan.work[0] - size[1] / size[0]) < 1 / 1024 + 1 / min(plan.work)  # aspect kept
    assert plan_dynamic(size, None).work == size  # full resolution


@pytest.mark.parametrize("size", [(677, 1001), (1001, 677), (64, 96), (96, 64), (3024, 4032), (4032, 3024), (50, 50)])
def test_static_plan_fits_inside_the_model_and_turns_portraits(size):
    plan = plan_static(size, EXPORT_SIZE)
    assert plan.canvas == EXPORT_SIZE
    assert plan.rotate == (size[0] > size[1])  # landscape model: portrait photos are turned
    h, w = plan.turned
    assert plan.work[0] <= 64 and plan.work[1] <= 96 and (plan.work[0] == 64 or plan.work[1] == 96)  # fills one side
    assert abs(plan.work[1] / plan.work[0] - w / h) <= 1.0 / min(plan.work)  # aspect kept (to a pixel)
    assert plan_static(size, (96, 64)).rotate == (size[0] < size[1])  # portrait model: landscapes are turned


@pytest.mark.parametrize("static_size", [None, EXPORT_SIZE, (96, 64)])
@pytest.mark.parametrize("size", [(677, 1001), (1001, 677), (37, 53)])
def test_render_geometry_is_undone_exactly(size, static_size):
    # identity model: whatever the plan, the output must be the photo again (resampled only if resized)
    photo = gradient_photo(*size)
    model = Recording(static_size)
    plan = plan_for(size, static_size, short_side=None)
    out = render_photo(photo, model, short_side=None, subject="off").image[None]
    assert model.shapes == [(1, 3, *plan.canvas)]
    assert tuple(out.shape) == (1, 3, *size)
    error = (out[0] - to_tensor(photo)).abs()
    if static_size is None:
        assert float(error.max()) < 1e-6  # pad + unpad only
    elif plan.work[0] * plan.work[1] > size[0] * size[1]:  # scaled up and back: the picture stays in place
        assert float(error.mean()) < 0.05, float(error.mean())
    else:  # scaled down: an identity model changed nothing, so the photo's own detail comes back
        assert float(error.max()) < 1e-5, float(error.max())
        plain = render_photo(photo, Recording(static_size), short_side=None, subject="off", detail=False).image[None]
        # without the detail step, down-and-up resampling blurs the noise; the picture stays in place
        assert float((plain[0] - to_tensor(photo)).abs().mean()) < 0.05


def test_detail_comes_back_where_the_model_kept_focus_and_not_where_it_blurred():
    """A 'model' that keeps the left half and blurs the right half, at a working size 4x below the photo."""
    import kornia

    def half_blur(x):
        blurred = kornia.filters.gaussian_blur2d(x, (9, 9), (3.0, 3.0), border_type="replicate")
        return torch.cat([x[..., : x.shape[-1] // 2], blurred[..., x.shape[-1] // 2 :]], -1)

    half_blur.static_size = None
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 40, (256, 384, 3)), 0, 255).astype(np.uint8)  # fine detail everywhere
    truth = to_tensor(photo)
    restored = render_image(photo, half_blur, short_side=64)
    plain = render_image(photo, half_blur, short_side=64, detail=False)
    left, right = (slice(None), slice(None), slice(8, 150)), (slice(None), slice(None), slice(234, 376))
    # in focus: the full-resolution detail is back (the plain upsampling lost it)
    assert (restored - truth)[left].abs().mean() < 0.2 * (plain - truth)[left].abs().mean()
    # blurred: no detail is put back, so the output stays as smooth as the plain upsampling
    assert (restored - plain)[right].abs().mean() < 0.02


def test_large_photo_runs_at_1024_on_the_short_side_by_default():
    model = Recording()
    photo = np.zeros((4032, 3024, 3), np.uint8)  # a 12 MP portrait phone photo
    out = render_image(photo, model)
    assert model.shapes == [(1, 3, 1368, 1024)]  # 4032 * 1024 / 3024 = 1365.3 -> 1365, padded to 1368
    assert tuple(out.shape) == (3, 4032, 3024)


# ----------------------------------------------------------------------------- backends
def test_pixel_range_models_are_scaled_to_and_from_signed():
    seen = []

    def pixel_identity(x):
        seen.append((float(x.min()), float(x.max())))
        return x

    backend = ExportedBackend(pixel_identity, EXPORT_SIZE, "pixel")
    image = torch.linspace(-1, 1, 3 * 64 * 96).reshape(1, 3, 64, 96)
    torch.testing.assert_close(backend(image), image, atol=1e-5, rtol=0)
    assert seen == [(0.0, 255.0)]


def test_load_backend_rejects_unknown_and_missing_files(tmp_path):
    with pytest.raises(ValueError, match=r"\.pt.*\.ckpt.*\.onnx.*\.tflite"):
        load_backend(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        load_backend(tmp_path / "missing.onnx")


# ----------------------------------------------------------------------------- files
def test_odd_photos_come_back_at_their_size_orientation_and_format(tmp_path):
    expected = write_photo_cases(tmp_path / "in")
    summary = render_files(list_inputs(tmp_path / "in"), tmp_path / "out", Recording(), short_side=None)
    assert not summary.skipped
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    for name, upright in expected.items():
        output = tmp_path / "out" / name
        with Image.open(output) as image:
            assert image.format == ("JPEG" if name.endswith(".jpg") else "PNG")
            assert image.getexif().get(ORIENTATION, 1) == 1  # pixels stored upright, no tag to re-apply
            assert image.size == (upright.shape[1], upright.shape[0])
        rendered = read_rgb(output).astype(int)
        # identity model: the photo itself (JPEG re-encoding aside); turned or shifted it would be off by ~50
        assert np.abs(rendered - upright).mean() < 3, name
        if name.endswith(".png"):
            assert np.array_equal(rendered, read_rgb(tmp_path / "in" / name))


@pytest.mark.parametrize("static_size", [EXPORT_SIZE, None])
def test_odd_photos_through_a_fixed_size_or_downscaling_model(tmp_path, static_size):
    expected = write_photo_cases(tmp_path / "in")
    model = Recording(static_size)
    render_files(list_inputs(tmp_path / "in"), tmp_path / "out", model, short_side=100)
    canvases = {shape[2:] for shape in model.shapes}
    # fixed size: always the model's; else short side 100 (148 x 100 for 1001 x 677), padded to multiples of 8
    assert canvases == ({EXPORT_SIZE} if static_size else {(104, 152), (152, 104)})
    for name, upright in expected.items():
        rendered = read_rgb(tmp_path / "out" / name).astype(float)
        assert rendered.shape == upright.shape
        assert np.abs(rendered - upright).mean() < 6, name  # only resampling blur: not turned, not shifted


def test_unreadable_files_are_reported_and_skipped(tmp_path, capsys):
    expected = write_photo_cases(tmp_path / "in")
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    good = (tmp_path / "in" / "landscape.jpg").read_bytes()
    (tmp_path / "in" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    transparent = np.zeros((20, 30, 4), np.uint8)
    Image.fromarray(transparent, mode="RGBA").save(tmp_path / "in" / "transparent.png")
    summary = render_files(list_inputs(tmp_path / "in"), tmp_path / "out", Recording())
    assert sorted(p.name for p, _ in summary.skipped) == ["broken.jpg", "transparent.png", "truncated.jpg"]
    reasons = dict((p.name, r) for p, r in summary.skipped)
    assert "truncated" in reasons["truncated.jpg"] and "transparent" in reasons["transparent.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(expected)
    assert "skipped" in capsys.readouterr().err


def test_output_folder_never_holds_a_partial_file(tmp_path, monkeypatch):
    write_photo_cases(tmp_path / "in")
    out = tmp_path / "out"
    real_save = Image.Image.save
    calls = []

    def crashing_save(self, fp, *args, **kwargs):
        calls.append(sorted(p.name for p in out.iterdir() if not p.name.startswith(".")))
        if len(calls) == 3:  # the third image: half the bytes reach the disk, then the disk is "full"
            fp.write(b"\x89PNG partial")
            raise OSError(28, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", crashing_save)
    inputs = list_inputs(tmp_path / "in")
    with pytest.raises(OSError, match="No space"):
        render_files(inputs, out, Recording())
    assert calls[1] == [inputs[0].name] and calls[2] == [inputs[0].name, inputs[1].name]  # final names only once complete
    assert sorted(p.name for p in out.iterdir()) == [inputs[0].name, inputs[1].name]  # no temp file, no partial third
    for path in out.iterdir():
        read_rgb(path)  # both complete, readable images


def test_inputs_are_never_overwritten(tmp_path):
    write_photo_cases(tmp_path / "in")
    before = {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()}
    for source, out in [
        (tmp_path / "in", tmp_path / "in"),
        (tmp_path / "in", tmp_path / "in" / ".." / "in"),
        (tmp_path / "in" / "portrait.png", tmp_path / "in"),
    ]:
        with pytest.raises(RenderError, match="overwrite|replace"):
            check_paths(source, list_inputs(source), out)
    with pytest.raises(RenderError, match="is a file"):
        check_paths(tmp_path / "in", list_inputs(tmp_path / "in"), tmp_path / "in" / "portrait.png")
    assert main([f"input={tmp_path / 'in'}", "ckpt=unused.ckpt", f"out={tmp_path / 'in'}"]) == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "in").iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["ckpt=a.ckpt", "out=o"], "missing input="),
    (["input=x", "ckpt=a.ckpt", "out=o", "short_side=7"], "short_side"),
    (["input=x", "ckpt=a.ckpt", "out=o", "sideways=true"], "unknown argument"),
    (["input=x", "ckpt=a.ckpt", "out=o", "side_by_side=maybe"], "side_by_side"),
    (["input=x", "ckpt=a.ckpt", "out=o", "precision=fp16"], "precision=fp16: one of auto, fp32, bf16"),
])
def test_cli_says_what_is_wrong(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_cli_renders_a_folder_with_a_checkpoint(tiny_checkpoint, tmp_path):
    # as a user runs it: a subprocess from another working directory, with a broken file in the folder
    expected = write_photo_cases(tmp_path / "in")
    (tmp_path / "in" / "broken.png").write_bytes(b"nothing")
    (tmp_path / "in" / "notes.txt").write_text("not an image: ignored")
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "bokeh.render", f"input={tmp_path / 'in'}", f"ckpt={tiny_checkpoint}", "out=rendered",
         "--side-by-side", "short_side=256"],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr  # one file skipped
    assert "broken.png" in result.stderr and "rendered 5 of 6" in result.stderr
    assert sorted(p.name for p in (work / "rendered").iterdir()) == sorted(expected)
    generator_only = TorchBackend(load_generator(tiny_checkpoint))
    for name, upright in expected.items():
        side_by_side = read_rgb(work / "rendered" / name).astype(int)
        height, width = upright.shape[:2]
        assert side_by_side.shape == (height, 2 * width, 3)
        assert np.abs(side_by_side[:, :width] - upright).mean() < 3  # left half: the input (JPEG aside)
        bokeh = render_image(read_rgb(tmp_path / "in" / name), generator_only, short_side=256)
        right = (bokeh.permute(1, 2, 0).numpy() + 1) * 127.5  # right half: the model's output
        assert np.abs(side_by_side[:, width:] - right).mean() < 3, name
        assert np.abs(side_by_side[:, width:] - upright).mean() > 5  # and the model did change the photo


# ----------------------------------------------------------------------------- runtimes agree
@pytest.mark.export
@pytest.mark.slow
def test_torch_onnx_and_tflite_render_the_same_image(tiny_models, tmp_path):
    models = tiny_models
    generator = load_generator(models["ckpt"])
    backends = {
        "torch": TorchBackend(generator),  # the checkpoint as `python -m bokeh.render ckpt=x.ckpt` runs it
        "torch at the export size": TorchBackend(generator, static_size=EXPORT_SIZE),
        "onnx": load_backend(models["onnx"]),
        "tflite": load_backend(models["tflite"]),
    }
    assert backends["onnx"].static_size == backends["tflite"].static_size == EXPORT_SIZE
    photos = {
        "export size": gradient_photo(*EXPORT_SIZE),  # every backend runs the same pixels
        "portrait, odd": gradient_photo(101, 67, seed=2),  # fitted and turned by the fixed-size ones
    }
    for label, photo in photos.items():
        outputs = {name: render_image(photo, backend).numpy() for name, backend in backends.items()}
        reference = outputs["torch at the export size"]
        assert reference.std() > 0.05  # a real picture, not a constant the runtimes would trivially share
        for name in ("onnx", "tflite"):  # fp32 export tolerance, [-1, 1] units, before rounding to uint8
            assert np.abs(outputs[name] - reference).max() < 1e-4, (label, name)
        if label == "export size":
            assert np.abs(outputs["torch"] - reference).max() < 1e-4
    # and the files: the same uint8 image from each model file through the CLI
    source = tmp_path / "photo.png"
    Image.fromarray(photos["portrait, odd"]).save(source)
    rendered = {}
    for kind in ("onnx", "tflite"):
        assert main([f"input={source}", f"ckpt={models[kind]}", f"out={tmp_path / kind}"]) == 0
        rendered[kind] = read_rgb(tmp_path / kind / "photo.png").astype(int)
    assert rendered["onnx"].shape == photos["portrait, odd"].shape
    assert np.abs(rendered["onnx"] - rendered["tflite"]).max() <= 1


@pytest.mark.export
def test_the_three_backends_and_the_gpu_accelerator_agree_on_a_real_photo(tiny_models, vulkan_adapter, tmp_path):
    """scikit-image's astronaut at the export size through torch (.ckpt), ONNX Runtime, LiteRT on the CPU and
    LiteRT's GPU accelerator (fp16 arithmetic): every pair of rendered images within PSNR >= 40 dB."""
    from skimage.metrics import peak_signal_noise_ratio

    from bokeh.export.verify import photo

    image = np.round(photo(*EXPORT_SIZE) * 255).astype(np.uint8)  # (64, 96, 3): every backend runs these pixels
    backends = {
        "torch": load_backend(tiny_models["ckpt"]),
        "onnx": load_backend(tiny_models["onnx"]),
        "tflite": load_backend(tiny_models["tflite"]),
        "gpu": load_backend(tiny_models["tflite"], accelerator="gpu"),
    }
    assert vulkan_adapter.name in backends["gpu"].name
    rendered = {name: render_to_uint8(image, backend) for name, backend in backends.items()}
    assert np.abs(rendered["torch"].astype(int) - image).mean() > 5, "the model changes the photo"
    names = list(rendered)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            psnr = peak_signal_noise_ratio(rendered[first], rendered[second], data_range=255)
            assert psnr >= 40, (first, second, psnr)
    # and through the command line
    source = tmp_path / "astronaut.png"
    Image.fromarray(image).save(source)
    assert main([f"input={source}", f"ckpt={tiny_models['tflite']}", f"out={tmp_path / 'gpu'}", "accelerator=gpu"]) == 0
    on_gpu = read_rgb(tmp_path / "gpu" / "astronaut.png")
    assert peak_signal_noise_ratio(rendered["tflite"], on_gpu, data_range=255) >= 40


def test_accelerator_gpu_says_what_is_missing(tiny_checkpoint, tmp_path):
    """accelerator=gpu: a model other than .tflite, or no Vulkan adapter, stops before rendering (exit 2),
    naming what is wrong; accelerator=cpu stays the default."""
    Image.fromarray(gradient_photo(20, 30)).save(tmp_path / "photo.png")
    result = subprocess.run(
        [sys.executable, "-m", "bokeh.render", f"input={tmp_path / 'photo.png'}", f"ckpt={tiny_checkpoint}",
         f"out={tmp_path / 'out'}", "accelerator=gpu"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "accelerator=gpu runs .tflite" in result.stderr
    from bokeh.runtimes.tiny_tflite import add_model

    model = add_model(tmp_path / "add.tflite", 24, 32)
    no_vulkan = {"VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"}
    result = subprocess.run(
        [sys.executable, "-m", "bokeh.render", f"input={tmp_path / 'photo.png'}", f"ckpt={model}",
         f"out={tmp_path / 'out'}", "accelerator=gpu"], capture_output=True, text=True, timeout=300,
        env={**os.environ, **no_vulkan})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no Vulkan adapter" in result.stderr and "mesa-vulkan-drivers" in result.stderr
    assert not (tmp_path / "out").exists()
    assert main([f"input={tmp_path / 'photo.png'}", f"ckpt={model}", f"out={tmp_path / 'out'}", "accelerator=tpu"]) == 2


@pytest.mark.parametrize("native", [True, False])
def test_cli_precision_auto_follows_the_cpu_and_says_what_ran(tiny_checkpoint, tmp_path, capsys, monkeypatch, native):
    from bokeh import cpu

    monkeypatch.setattr(cpu, "native_bf16", lambda flags=None: native)
    Image.fromarray(gradient_photo(48, 64)).save(tmp_path / "photo.png")
    outputs = {}
    for precision in ("auto", "fp32"):
        assert main([f"input={tmp_path / 'photo.png'}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / precision}",
                     f"precision={precision}"]) == 0
        err = capsys.readouterr().err
        expected = "bf16" if native and precision == "auto" else "fp32"
        assert f"torch {expected}" in err, err
        outputs[precision] = read_rgb(tmp_path / precision / "photo.png").astype(int)
    difference = np.abs(outputs["auto"] - outputs["fp32"])
    assert (difference.max() > 0) == native  # it really ran bf16 when chosen (fp32 is repeatable)
    if native:  # and bf16 stays close (8-bit PSNR 47.8 dB for this tiny random model)
        assert 10 * np.log10(255**2 / (difference**2).mean()) > 40


def test_cli_refuses_a_precision_for_exported_models(tmp_path, capsys):
    Image.fromarray(gradient_photo(20, 30)).save(tmp_path / "photo.png")
    (tmp_path / "model.onnx").write_bytes(b"not read: the setting is refused first")
    assert main([f"input={tmp_path / 'photo.png'}", f"ckpt={tmp_path / 'model.onnx'}", f"out={tmp_path / 'out'}",
                 "precision=bf16"]) == 2
    assert "applies to torch checkpoints (.ckpt) only" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_broken_checkpoint_before_rendering(tmp_path, capsys):
    Image.fromarray(gradient_photo(20, 30)).save(tmp_path / "photo.png")
    (tmp_path / "model.ckpt").write_bytes(b"not a checkpoint")
    assert main([f"input={tmp_path / 'photo.png'}", f"ckpt={tmp_path / 'model.ckpt'}", f"out={tmp_path / 'out'}"]) == 2
    assert "could not be read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- issue 15: bad inputs
def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A 60-byte PNG whose header claims ``width x height`` pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def pillow_limit(monkeypatch):
    """Restore Pillow's process-wide pixel limit after a test that changes it (max_pixels=)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


def test_a_decompression_bomb_is_skipped_with_its_size_and_the_rest_rendered(tiny_checkpoint, tmp_path, capsys, pillow_limit):
    folder = tmp_path / "in"
    folder.mkdir()
    bomb_png(folder / "a_bomb.png")  # first in name order: the files after it must still be rendered
    for name in ("b.jpg", "c.png"):
        Image.fromarray(gradient_photo(24, 40)).save(folder / name)
    assert main([f"input={folder}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out'}"]) == 1
    err = capsys.readouterr().err
    assert "a_bomb.png" in err and "20000 x 20000" in err and "max_pixels=400000000" in err
    assert "Traceback" not in err and "rendered 2 of 3" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b.jpg", "c.png"]
    # raising the limit lets the file through to the decoder (this one has no pixel data: truncated)
    assert main([f"input={folder / 'a_bomb.png'}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out2'}", "max_pixels=400000000"]) == 1
    err = capsys.readouterr().err
    assert "truncated" in err and "against decompression bombs" not in err


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (5, 300), (9, 17), (15, 16), (16, 8)])
def test_tiny_photos_render_at_their_size_from_a_checkpoint(tiny_checkpoint, tmp_path, size):
    """An 8 x 8 photo used to crash the folder (instance norm over a 1 x 1 bottleneck)."""
    folder = tmp_path / "in"
    folder.mkdir()
    photo = gradient_photo(*size)
    Image.fromarray(photo).save(folder / "small.png")
    Image.fromarray(gradient_photo(24, 40)).save(folder / "z_normal.png")
    assert main([f"input={folder}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out'}"]) == 0
    rendered = read_rgb(tmp_path / "out" / "small.png")
    assert rendered.shape == photo.shape
    model = Recording()
    render_image(photo, model)
    assert min(model.shapes[0][2:]) >= 16  # padded up to a size the network takes, then cut back


def test_glassnet_names_the_smallest_input_it_takes():
    from bokeh.models.glassnet import GlassNet

    generator = GlassNet(width1=4, width2=4, blocks=1).eval()
    with pytest.raises(ValueError, match="at least 16 x 16"):
        generator(torch.zeros(1, 3, 8, 8))
    assert generator(torch.zeros(1, 3, 8, 16))[0].shape == (1, 3, 8, 16)
    assert GlassNet(width1=4, width2=4, blocks=1, norm="none")(torch.zeros(1, 3, 8, 8))[0].shape == (1, 3, 8, 8)


def test_phone_file_types_are_read_and_every_other_file_is_named(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = gradient_photo(24, 40)
    for name in ("IMG_0001.jpg", "IMG_0003.jfif", "IMG_0004.JPE", "IMG_0005.jpe", "IMG_0006.JPG"):
        Image.fromarray(photo).save(folder / name, format="JPEG", quality=95)
    (folder / "IMG_0002.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00")  # Pillow has no HEIF codec
    (folder / "notes.txt").write_text("not a photo")
    (folder / "edits").mkdir()
    assert main([f"input={folder}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out'}"]) == 1
    err = capsys.readouterr().err
    assert "rendered 5 of 6" in err
    assert "IMG_0002.HEIC" in err and "HEIC/HEIF" in err and "convert it to JPEG" in err  # skipped, with what to do
    assert "notes.txt" in err and "edits" in err  # named: not images, not searched
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["IMG_0001.jpg", "IMG_0003.jfif", "IMG_0004.JPE", "IMG_0005.jpe", "IMG_0006.JPG"]
    for name in written:
        with Image.open(tmp_path / "out" / name) as image:
            assert image.format == "JPEG" and image.size == (40, 24)
    # a .jfif given alone is a JPEG like any other
    assert main([f"input={folder / 'IMG_0003.jfif'}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'one'}"]) == 0
    assert main([f"input={folder / 'IMG_0002.HEIC'}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'heic'}"]) == 2
    assert "HEIC/HEIF" in capsys.readouterr().err


def read_only(folder: Path, monkeypatch) -> Path:
    """``folder``, made read-only; as root (who ignores mode bits) writes into it fail as for a user."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real_probe = bokeh.files._probe

        def denied(path):
            if Path(path) == folder:
                raise PermissionError(13, "Permission denied", str(path))
            return real_probe(path)

        monkeypatch.setattr(bokeh.files, "_probe", denied)
    return folder


def test_an_unwritable_out_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    write_photo_cases(tmp_path / "in")
    # a folder that does not exist yet is created only when the run starts: a refused run leaves none
    assert main([f"input={tmp_path / 'in'}", f"ckpt={tmp_path / 'missing.ckpt'}", f"out={tmp_path / 'new' / 'deeper'}"]) == 2
    assert not (tmp_path / "new").exists()
    out = read_only(tmp_path / "out", monkeypatch)
    loaded = []
    monkeypatch.setattr("bokeh.render.backends.load_backend", lambda *a, **k: loaded.append(a))
    assert main([f"input={tmp_path / 'in'}", "ckpt=never-loaded.ckpt", f"out={out}"]) == 2
    err = capsys.readouterr().err
    assert "out=" in err and "not writable" in err and "Traceback" not in err
    assert not loaded and list(out.iterdir()) == []


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGHUP"])  # Ctrl-C, timeout / kill, a closed SSH session
def test_ctrl_c_in_a_folder_render_says_what_was_finished(tiny_checkpoint, tmp_path, stop):
    import signal
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(30):
        Image.fromarray(gradient_photo(256, 384, seed=index)).save(folder / f"{index:02d}.png")
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "bokeh.render", f"input={folder}", f"ckpt={tiny_checkpoint}", f"out={out}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    start = time.monotonic()
    while not (out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir())):  # once the first photo is written
        assert process.poll() is None and time.monotonic() - start < 600, process.communicate()[1][-2000:]
        time.sleep(0.02)
    process.send_signal(getattr(signal, stop))
    _, err = process.communicate(timeout=300)
    assert process.returncode == 128 + getattr(signal, stop), err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    written = sorted(out.iterdir())
    how = "Ctrl-C" if stop == "SIGINT" else stop
    assert f"bokeh.render: interrupted ({how}); rendered {len(written)} of 30 image(s)" in err
    assert 1 <= len(written) < 30 and not [p for p in written if p.name.startswith(".")], "no temporary file left"
    for path in written:
        assert read_rgb(path).shape == (256, 384, 3)  # every written file is complete


@pytest.mark.export
@pytest.mark.slow
def test_tiny_photos_render_through_every_backend(tiny_models, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    sizes = {"dot.png": (1, 1), "eight.png": (8, 8), "strip.png": (5, 300), "tall.png": (37, 9)}
    for name, size in sizes.items():
        Image.fromarray(gradient_photo(*size)).save(folder / name)
    for kind in ("ckpt", "onnx", "tflite"):
        assert main([f"input={folder}", f"ckpt={tiny_models[kind]}", f"out={tmp_path / kind}"]) == 0, kind
        for name, size in sizes.items():
            assert read_rgb(tmp_path / kind / name).shape == (*size, 3), (kind, name)


def test_a_single_photo_that_fails_leaves_no_empty_out_folder(tiny_checkpoint, tmp_path, capsys):
    # issue 32: a single-file render that failed left an empty out/
    Image.fromarray(gradient_photo(24, 40)).save(tmp_path / "photo.png")
    broken = tmp_path / "broken.png"
    broken.write_bytes((tmp_path / "photo.png").read_bytes()[:60])  # the header, no pixels: skipped when decoded
    assert main([f"input={broken}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out'}"]) == 1
    assert "broken.png" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "empty.png").write_bytes(b"")  # an empty photo is a bad input=, refused before any work
    assert main([f"input={tmp_path / 'empty.png'}", f"ckpt={tiny_checkpoint}", f"out={tmp_path / 'out'}"]) == 2
    assert "empty.png: empty file (0 bytes)" in capsys.readouterr().err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- a new user's photos and folders (issues 21, 25): colour, odd files, overwrite, one sentence
def test_render_converts_an_adobe_rgb_photo_and_tags_the_output_srgb(tiny_ckpt, tmp_path):
    raw = patches()
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(raw).save(folder / "adobe.png", icc_profile=icc_profile(*ADOBE_RGB.values(), "Adobe RGB (1998)"))
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "--side-by-side", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out / "adobe.png") as written:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(written.info["icc_profile"]))
        left = np.asarray(written.convert("RGB"), np.float64)[:, :64]
    assert profile.profile.profile_description.startswith("sRGB")
    assert np.abs(left - expected_srgb(raw.astype(np.float64), ADOBE_RGB)).max() <= 2.5, "the unchanged half keeps its colours"


LINEAR_SRGB = {"primaries": SRGB_PRIMARIES, "gamma": 1.0}


def test_a_linear_profile_named_srgb_is_converted_by_what_it_does(tiny_ckpt, tmp_path):
    raw = patches()
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    # Elle Stone's sRGB-elle-V2-g10 (shipped with Krita): sRGB's primaries, a linear curve
    Image.fromarray(raw).save(folder / "linear.png", icc_profile=icc_profile(SRGB_PRIMARIES, 1.0, "sRGB-elle-V2-g10.icc"))
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "--side-by-side", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out / "linear.png") as written:
        left = np.asarray(written.convert("RGB"), np.float64)[:, :64]
    expected = expected_srgb(raw.astype(np.float64), LINEAR_SRGB)
    assert np.abs(expected - raw).max() > 40, "the test colours must change when converted"
    assert np.abs(left - expected).max() <= 2.5, "the unchanged half shows the colours the profile means"


def bad_exif_jpeg(path: Path) -> Path:
    """A JPEG whose EXIF block holds a DateTime tag stored as a float: Pillow fails re-encoding it."""
    entries = [(0x0112, 3, 1, b"\x00\x06\x00\x00"), (0x0132, 11, 1, b"\x7f\x80\x00\x00")]
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", len(entries))
    tiff += b"".join(struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in entries) + b"\0" * 4
    Image.fromarray(gradient_photo(16, 24)).save(path, exif=b"Exif\x00\x00" + tiff)
    return path


def test_one_odd_file_is_named_and_the_rest_of_the_folder_rendered(tiny_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "a_good.png")
    bad_exif_jpeg(folder / "b_exif.jpg")
    Image.fromarray(gradient_photo(8, 8200)).save(folder / "c_wide.webp", lossless=True)  # side by side: 16,400 px
    long_name = "d" * 240 + ".png"  # a legal name (244 bytes): its temporary name must fit too
    Image.fromarray(gradient_photo(16, 24)).save(folder / long_name)
    (folder / "e_dangling.jpg").symlink_to(folder / "missing.jpg")
    (folder / "f_loop.jpg").symlink_to(folder / "f_loop.jpg")
    os.mkfifo(folder / "g_fifo.jpg")
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "side_by_side=true", cwd=tmp_path, timeout=120)
    err = result.stderr
    assert result.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["a_good.png", long_name]
    for name, why in [("b_exif.jpg", "malformed EXIF"), ("c_wide.webp", "16,383 px"), ("e_dangling.jpg", "broken symbolic link"),
                      ("f_loop.jpg", "symbolic link loop"), ("g_fifo.jpg", "FIFO")]:
        assert any(name in line and why in line for line in err.splitlines()), (name, err[-3000:])


def test_a_truncated_png_is_called_truncated_not_malformed_exif(tiny_ckpt, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    (folder / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:3000])
    Image.fromarray(gradient_photo(16, 24)).save(folder / "good.png")
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    err = one_line(result, code=1)
    assert "cut.png: corrupt or truncated image" in err and "EXIF" not in err


def test_an_animated_gif_in_a_folder_is_reported_not_silently_skipped(tiny_ckpt, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "a.png")
    frames = [Image.fromarray(gradient_photo(16, 24, seed=k)) for k in range(3)]
    frames[0].save(folder / "b.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    err = one_line(result, code=1)
    assert any("b.gif" in line and "GIF" in line for line in err.splitlines()), err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_an_unreadable_input_folder_is_one_sentence_and_exit_2(tiny_ckpt, tmp_path, monkeypatch, capsys):
    from bokeh.render import __main__ as render_main

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 16)).save(folder / "p.png")
    iterdir = Path.iterdir

    def refuse(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))  # root reads chmod 000 folders: refuse as the OS would
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    code = render_main.main([f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert code == 2 and "the folder cannot be read (Permission denied)" in err and "Traceback" not in err


def test_render_never_replaces_an_unrelated_file_without_overwrite(tiny_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir(), out.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "IMG_0001.png")
    (out / "IMG_0001.png").write_bytes(b"another photo")
    refused = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", cwd=tmp_path)
    assert refused.returncode == 2 and "overwrite=true" in refused.stderr and "IMG_0001.png" in refused.stderr
    assert (out / "IMG_0001.png").read_bytes() == b"another photo"
    replaced = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert read_rgb(out / "IMG_0001.png").shape == (16, 24, 3)


@pytest.mark.parametrize("suffix, content", [(".onnx", b"\x08\x07\x12\x04trun"), (".tflite", b"not a flatbuffer at all")])
def test_a_truncated_model_file_is_one_line_and_exit_2(tmp_path, suffix, content):
    Image.fromarray(gradient_photo(16, 16)).save(tmp_path / "p.png")
    (tmp_path / f"model{suffix}").write_bytes(content)
    result = cli("bokeh.render", f"input={tmp_path / 'p.png'}", f"ckpt={tmp_path / f'model{suffix}'}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"model{suffix} is not a loadable" in result.stderr
