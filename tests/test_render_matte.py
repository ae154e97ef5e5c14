"""The full-size photo through the matte in bokeh.render, and ``matte=true``.

(torch = ONNX Runtime = TFLite on the matte, and the three-output model on the GPU accelerator:
tests/export/test_export_controls.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bokeh.checkpoint import save_generator
from bokeh.images import read_rgb, to_tensor
from bokeh.models.controls import InputContract, OutputContract
from bokeh.models.glassnet import GlassNet
from bokeh.models.init import trained_like
from bokeh.render import load_backend, render_image
from bokeh.render.__main__ import main
from bokeh.render.fit import matte_to_uint8, render_layers
from bokeh.runtimes import TorchRuntime

TINY = dict(width1=4, width2=4, blocks=1)
BLEND = dict(TINY, blend=True)
ORIENTATION = 0x0112


class Layered:
    """A stand-in model with a matte: ``keep`` everywhere, and a constant grey background."""

    def __init__(self, keep: float, static_size=None) -> None:
        self.keep, self.static_size, self.name = keep, static_size, "layered"
        self.contract, self.outputs = InputContract(), OutputContract(matte=True)

    def layers(self, image: torch.Tensor, focus=None, aperture=None) -> dict[str, torch.Tensor]:
        matte = torch.full_like(image[:, :1], self.keep)
        background = torch.zeros_like(image)
        return {"image": matte * image + (1 - matte) * background, "matte": matte, "background": background}

    def __call__(self, image, focus=None, aperture=None):
        return self.layers(image)["image"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {"blend": save_generator(folder / "blend.ckpt", trained_like(GlassNet(**BLEND), 0), BLEND),
            "paper": save_generator(folder / "paper.ckpt", trained_like(GlassNet(**TINY), 0), TINY)}


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([255 * x / width, 255 * y / height, 128 + 0 * x], 2) + np.random.default_rng(seed).normal(0, 20, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)  # asymmetric (a turned photo cannot pass) and textured


@pytest.mark.parametrize("static_size, short_side", [(None, 64), ((64, 96), "auto")])
def test_a_matte_of_one_renders_the_photo_itself_and_of_zero_the_background(static_size, short_side):
    image = photo(150, 110)  # portrait: turned for the landscape fixed-size model; 2x above the working size
    kept, matte = render_layers(image, Layered(1.0, static_size), short_side, subject="off")  # the model's own matte
    assert torch.equal(kept, to_tensor(image)) and torch.equal(matte, torch.ones(1, 150, 110))
    blurred, matte = render_layers(image, Layered(0.0, static_size), short_side, subject="off")
    assert torch.equal(blurred, torch.zeros(3, 150, 110)) and torch.equal(matte, torch.zeros(1, 150, 110))


def test_every_runtime_gives_its_layers_and_run_stays_the_image(checkpoints):
    runtime = TorchRuntime.from_file(checkpoints["blend"])
    batch = to_tensor(photo(32, 48))[None].numpy()
    layers = runtime.run_layers(batch)
    assert set(layers) == {"image", "matte", "background"} and runtime.outputs == OutputContract(True)
    assert layers["matte"].shape == (1, 1, 32, 48) and 0 <= layers["matte"].min() and layers["matte"].max() <= 1
    np.testing.assert_allclose(layers["image"], layers["matte"] * batch + (1 - layers["matte"]) * layers["background"], atol=1e-6)
    np.testing.assert_array_equal(runtime.run(batch), layers["image"])
    assert set(TorchRuntime.from_file(checkpoints["paper"]).run_layers(batch)) == {"image"}


def test_a_blend_model_renders_through_its_matte_at_full_size(checkpoints):
    backend = load_backend(checkpoints["blend"])
    image = photo(120, 200)
    bokeh, matte = render_layers(image, backend, short_side=40)
    assert bokeh.shape == (3, 120, 200) and matte.shape == (1, 120, 200) and float(matte.std()) > 0.01
    assert torch.equal(render_image(image, backend, short_side=40), bokeh)
    # the output is the full-size photo where the matte keeps it: |out - photo| = (1 - m) |B - photo| <= 2 (1 - m)
    assert bool(((bokeh - to_tensor(image)).abs() <= 2 * (1 - matte) + 1e-5).all())
    assert float((bokeh - to_tensor(image)).abs().mean()) > 1e-3  # and the model did change the photo


def render(*args: str) -> int:
    return main(list(args))


def test_cli_matte_true_writes_the_matte_at_the_photos_size_and_orientation(checkpoints, tmp_path):
    stored = photo(60, 90)  # stored landscape, EXIF 6: shown as a 90 x 60 portrait
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    source = tmp_path / "in" / "rotated.jpg"
    source.parent.mkdir()
    Image.fromarray(stored).save(source, quality=95, subsampling=0, exif=exif)
    out = tmp_path / "out"
    assert render(f"input={source}", f"ckpt={checkpoints['blend']}", f"out={out}", "matte=true", "short_side=32") == 0
    written = Image.open(out / "rotated.matte.png")
    assert written.mode == "L" and written.size == (60, 90)  # (W, H): the upright portrait
    upright = read_rgb(source)
    _, expected = render_layers(upright, load_backend(checkpoints["blend"]), short_side=32)
    np.testing.assert_array_equal(np.asarray(written), matte_to_uint8(expected))
    assert read_rgb(out / "rotated.jpg").shape == (90, 60, 3)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cli_matte_true_is_refused_for_a_model_without_one(checkpoints, tmp_path, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray(photo(30, 40)).save(source)
    out = tmp_path / "out"
    assert render(f"input={source}", f"ckpt={checkpoints['paper']}", f"out={out}", "matte=true", "subject=off") == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "matte=true" in lines[0] and "has no matte output" in lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_cli_matte_true_does_not_overwrite_a_matte_without_overwrite_true(checkpoints, tmp_path, capsys):
    source = tmp_path / "photo.png"
    Image.fromarray(photo(30, 40)).save(source)
    out = tmp_path / "out"
    out.mkdir()
    (out / "photo.matte.png").write_bytes(b"mine")
    args = (f"input={source}", f"ckpt={checkpoints['blend']}", f"out={out}", "matte=true")
    assert render(*args) == 2
    assert "photo.matte.png" in capsys.readouterr().err and (out / "photo.matte.png").read_bytes() == b"mine"
    assert not (out / "photo.png").exists()
    assert render(*args, "overwrite=true") == 0
    assert Image.open(out / "photo.matte.png").size == (40, 30)


@pytest.mark.parametrize("shape", [(200, 1, 3), (1, 200, 3), (2, 300, 3)])
def test_a_photo_a_pixel_or_two_thin_renders_through_a_static_size_model_with_a_matte(shape):
    # issue 32 item 7: 200 x 1 through an exported model with a matte stopped on the matte's upsampling
    # (reflection padding wider than the one-pixel side); a static-size torch backend runs the same path
    import numpy as np

    from bokeh.models.glassnet import GlassNet
    from bokeh.render import TorchBackend, render_layers

    torch.manual_seed(0)
    backend = TorchBackend(GlassNet(4, 4, blocks=1, blend=True).eval(), static_size=(16, 32))
    photo = (np.arange(shape[0] * shape[1] * 3) % 255).astype(np.uint8).reshape(shape)
    image, matte = render_layers(photo, backend)
    assert tuple(image.shape) == (3, *shape[:2]) and tuple(matte.shape) == (1, *shape[:2])
    assert torch.isfinite(image).all() and 0 <= float(matte.min()) <= float(matte.max()) <= 1
