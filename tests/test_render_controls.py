"""Tap to focus and an aperture through rendering and the runtimes: the point maps through the render
Plan, the controls reach the model, and every bad value is one sentence, exit 2, before any work.

(torch = ONNX Runtime = TFLite with the controls set: tests/export/test_export_controls.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bokeh.checkpoint import save_generator
from bokeh.images import read_rgb
from bokeh.inference import prepare_for_inference, run_generator
from bokeh.models.controls import NO_FOCUS, REFERENCE_F_NUMBER, ControlError, InputContract
from bokeh.models.glassnet import GlassNet
from bokeh.models.init import trained_like
from bokeh.render import ExportedBackend, PixelPoint, TorchBackend, plan_for, render_image
from bokeh.models.controls import parse_aperture, parse_focus
from bokeh.runtimes import TorchRuntime
from bokeh.runtimes.base import ModelFileError, contract_from_names, control_inputs
from test_render import gradient_photo
from user_cli import cli, one_line

TINY = dict(width1=4, width2=4, blocks=1)
BOTH = dict(TINY, focus_input=True, aperture_input=True)


def controls_generator(seed: int = 0, **settings) -> GlassNet:
    return trained_like(GlassNet(**(settings or BOTH)), seed)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {"both": save_generator(folder / "both.ckpt", controls_generator(), BOTH),
            "aperture": save_generator(folder / "aperture.ckpt", controls_generator(**TINY, aperture_input=True),
                                       dict(TINY, aperture_input=True)),
            "paper": save_generator(folder / "paper.ckpt", GlassNet(**TINY), TINY)}


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray((np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)).save(path)
    return path


# ----------------------------------------------------------------------------- the plan's geometry
class DotFinder:
    """A stand-in model that returns its input and records where its brightest pixel was, and the
    focus it was given (fractions of the canvas)."""

    def __init__(self, static_size=None) -> None:
        self.static_size, self.name, self.contract = static_size, "dot finder", InputContract(focus=True)
        self.seen: list[tuple[tuple[float, float], tuple[float, float]]] = []

    def __call__(self, image: torch.Tensor, focus=None, aperture=None) -> torch.Tensor:
        height, width = image.shape[-2:]
        peak = int(image[0].sum(0).argmax())
        self.seen.append((((peak % width + 0.5) / width, (peak // width + 0.5) / height), focus))
        return image.clone()


@pytest.mark.parametrize("size, static_size", [
    ((60, 90), None),  # landscape, padded to 64 x 96
    ((90, 60), (64, 96)),  # portrait photo, landscape model: turned a quarter turn
    ((75, 75), (64, 96)),  # square: resized, padded at the right
    ((300, 200), (96, 64)),  # shrunk to fit, not turned
    ((13, 35), None),  # padded a lot
])
@pytest.mark.parametrize("point", [(0.2, 0.7), (0.85, 0.1), (0.5, 0.5)])
def test_the_point_maps_through_the_plan_to_where_the_photo_is(size, static_size, point):
    """A bright dot drawn at the point of the photo is where the model is told to focus."""
    height, width = size
    photo = np.zeros((height, width, 3), np.uint8)
    row, col = min(height - 1, int(point[1] * height)), min(width - 1, int(point[0] * width))
    photo[max(0, row - 1):row + 2, max(0, col - 1):col + 2] = 255
    model = DotFinder(static_size)
    plan = plan_for(size, static_size, short_side=None)
    mapped = plan.map_point(((col + 0.5) / width, (row + 0.5) / height))
    render_image(photo, model, short_side=None, detail=False, focus=((col + 0.5) / width, (row + 0.5) / height))
    (dot, given), = model.seen
    assert given == pytest.approx(mapped)
    canvas_h, canvas_w = plan.canvas
    assert abs(dot[0] - given[0]) * canvas_w <= 1.5 and abs(dot[1] - given[1]) * canvas_h <= 1.5, (dot, given, plan)


def test_map_point_turns_corners_as_rot90_does():
    plan = plan_for((30, 20), (20, 30))  # portrait photo, landscape model: turned, no padding
    assert plan.rotate and plan.work == plan.canvas == (20, 30)
    assert plan.map_point((0.0, 0.0)) == (0.0, 1.0)  # top-left -> bottom-left
    assert plan.map_point((1.0, 0.0)) == (0.0, 0.0)  # top-right -> top-left
    padded = plan_for((20, 20), None)  # 20 -> canvas 24
    assert padded.map_point((1.0, 1.0)) == (pytest.approx(20 / 24), pytest.approx(20 / 24))


def test_pixel_points_are_fractions_of_the_photo_and_refused_outside():
    assert PixelPoint(30, 10).fractions((40, 60)) == (0.5, 0.25)
    with pytest.raises(ControlError, match="outside the photo"):
        PixelPoint(61, 10).fractions((40, 60))
    assert parse_focus("640px, 480px") == PixelPoint(640, 480) and parse_focus("0.5,0.25") == (0.5, 0.25)
    assert parse_aperture("f/2.8") == parse_aperture("2.8") == 2.8


# ----------------------------------------------------------------------------- runtimes
def test_control_inputs_fill_the_defaults_and_refuse_what_the_model_lacks():
    both = InputContract(True, True)
    defaults = control_inputs(both, 2)
    assert defaults["focus"].tolist() == [list(NO_FOCUS)] * 2
    assert defaults["aperture"].tolist() == [[pytest.approx(REFERENCE_F_NUMBER)]] * 2
    rows = control_inputs(both, 2, focus=[[0.1, 0.2], list(NO_FOCUS)], aperture=[2.8, 8])
    assert rows["focus"].tolist() == [[pytest.approx(0.1), pytest.approx(0.2)], list(NO_FOCUS)]
    assert rows["aperture"][:, 0].tolist() == [pytest.approx(2.8), 8.0]
    assert set(control_inputs(InputContract(aperture=True), 1)) == {"aperture"}
    with pytest.raises(ControlError, match="focus= was given"):
        control_inputs(InputContract(aperture=True), 1, focus="abc")  # refused by name before its value
    with pytest.raises(ControlError, match="one per image"):
        control_inputs(both, 2, focus=np.zeros((3, 2)))
    with pytest.raises(ControlError, match="outside the photo"):
        control_inputs(both, 1, focus=(0.5, 1.5))


def test_the_contract_of_a_file_comes_from_its_input_names():
    assert contract_from_names(["image", "focus", "aperture"], "m.onnx") == InputContract(True, True)
    assert contract_from_names(["aperture", "image"], "m.onnx") == InputContract(aperture=True)
    assert contract_from_names(["input_1"], "old.tflite") == InputContract()  # an export from before the controls
    with pytest.raises(ModelFileError, match="not a Glass-Net's"):
        contract_from_names(["image", "mask"], "other.onnx")


def test_the_torch_runtime_feeds_the_controls_to_the_generator():
    generator = controls_generator()
    runtime = TorchRuntime(generator)
    assert runtime.contract == InputContract(True, True)
    image = np.random.default_rng(1).uniform(-1, 1, (1, 3, 32, 48)).astype(np.float32)
    expected = run_generator(prepare_for_inference(generator), torch.from_numpy(image),
                             focus=torch.tensor([[0.3, 0.6]]), aperture=torch.tensor([[4.0]])).numpy()
    np.testing.assert_array_equal(runtime.run(image, (0.3, 0.6), 4.0), expected)
    assert float(np.abs(runtime.run(image) - expected).max()) > 1e-2  # the defaults are something else


def test_a_runtime_without_controls_refuses_them_by_name():
    runtime = TorchRuntime(GlassNet(**TINY))
    image = np.zeros((1, 3, 16, 16), np.float32)
    with pytest.raises(ControlError, match="focus= was given, but this model takes no tap-to-focus point"):
        runtime.run(image, focus=(0.5, 0.5))
    with pytest.raises(ControlError, match="aperture= was given"):
        ExportedBackend(lambda x: x, None)(torch.zeros(1, 3, 16, 16), aperture=2.8)


def test_render_image_with_a_tap_and_an_aperture(checkpoints):
    backend = TorchBackend(controls_generator())
    photo = (np.random.default_rng(2).random((50, 70, 3)) * 255).astype(np.uint8)
    auto = render_image(photo, backend)
    assert torch.equal(auto, render_image(photo, backend, focus=None, aperture=REFERENCE_F_NUMBER))
    tapped = render_image(photo, backend, focus=(0.25, 0.5), aperture=4.0)
    pixels = render_image(photo, backend, focus=PixelPoint(17.5, 25), aperture=4.0)
    assert torch.equal(tapped, pixels) and float((tapped - auto).abs().max()) > 1e-2
    with pytest.raises(ControlError, match="takes no tap-to-focus point"):
        render_image(photo, TorchBackend(GlassNet(**TINY)), focus=(0.5, 0.5))


# ----------------------------------------------------------------------------- the command line
def render_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bokeh.render", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)


@pytest.mark.parametrize("model, args, message", [
    ("both", ["focus=1.2,0.5"], "focus=1.2,0.5 lies outside the photo"),
    ("both", ["focus=61px,20px"], "focus=61px,20px lies outside the photo (60 x 40 px)"),
    ("both", ["focus=-0.1,0.5"], "lies outside the photo"),
    ("both", ["focus=abc"], "focus=abc is not a point"),
    ("both", ["focus=0.5"], "is not a point"),
    ("both", ["aperture=0"], "aperture=0 is not a usable f-number"),
    ("both", ["aperture=f/0"], "is not a usable f-number"),
    ("both", ["aperture=-2.8"], "aperture=-2.8 is not a usable f-number"),
    ("both", ["aperture=nan"], "aperture=nan is not a usable f-number"),
    ("both", ["aperture=wide"], "aperture=wide is not an f-number"),
    ("paper", ["focus=0.5,0.5"], "focus= was given, but this model takes no tap-to-focus point (its inputs: image)"),
    ("paper", ["aperture=4"], "aperture= was given, but this model takes no f-number"),
    ("aperture", ["focus=0.5,0.5", "aperture=4"], "focus= was given, but this model takes no tap-to-focus point"),
])
def test_cli_refuses_each_bad_control_in_one_sentence_before_any_work(checkpoints, photo_file, tmp_path, model, args, message):
    out = tmp_path / "out"
    result = render_cli(f"input={photo_file}", f"ckpt={checkpoints[model]}", f"out={out}", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("bokeh.render: ") and message in lines[0], result.stderr
    assert not out.exists(), "nothing may be written before the controls are checked"


def test_cli_renders_with_a_tap_and_an_aperture(checkpoints, photo_file, tmp_path):
    outputs, said = {}, {}
    for name, args in {"auto": [], "tap": ["focus=0.25,0.5", "aperture=f/4"], "pixels": ["focus=15px,20px", "aperture=4"]}.items():
        result = render_cli(f"input={photo_file}", f"ckpt={checkpoints['both']}", f"out={tmp_path / name}", *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        outputs[name], said[name] = read_rgb(tmp_path / name / photo_file.name).astype(int), result.stderr
    assert "controls: focus auto (the model decides); aperture f/1.8" in said["auto"]
    assert "controls: focus 0.25, 0.5 of the width, height; aperture f/4" in said["tap"]
    assert "controls: focus 15px, 20px; aperture f/4" in said["pixels"]
    np.testing.assert_array_equal(outputs["tap"], outputs["pixels"])  # 15 px of 60 = 0.25, 20 px of 40 = 0.5
    assert np.abs(outputs["tap"] - outputs["auto"]).max() > 2


# ----------------------------------------------------------------------------- an aperture the model never learned (issue 25)
def test_an_aperture_wider_than_trained_is_refused_in_one_sentence(tmp_path):
    Image.fromarray(gradient_photo(32, 48)).save(tmp_path / "p.png")
    result = cli("bokeh.render", f"input={tmp_path / 'p.png'}", "ckpt=reference", "aperture=1.2", f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert "wider than the model was trained for (f/1.8 to f/11)" in one_line(result)
    assert not (tmp_path / "out").exists()
