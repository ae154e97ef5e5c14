"""A model with both controls (tap to focus, aperture) and a matte exports them as named inputs and
outputs (``bokeh``, ``matte``, ``background``), and torch, ONNX Runtime and TFLite (float32, float16,
LiteRT's GPU accelerator where there is an adapter) agree on the image and the matte with the
controls set, not only at their defaults.

One export per session (a tiny Glass-Net 4/4, 1 block, with the options of experiment=reference:
global residual, full-resolution skip, blend, focus and aperture inputs), about 30 s on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bokeh.checkpoint import load_generator
from bokeh.export import pipeline, verify
from bokeh.models.controls import ControlError
from bokeh.render import ExportedBackend, TorchBackend, render_image
from bokeh.runtimes import LiteRTCpuRuntime, LiteRTGpuRuntime, OnnxRuntime, TorchRuntime

REPO = Path(__file__).resolve().parents[2]
SIZE = (64, 96)  # (H, W): landscape, not square, small enough for a software GPU adapter
CONTROLS = dict(focus_input=True, aperture_input=True)
REFERENCE_LIKE = dict(width1=4, width2=4, blocks=1, global_residual=True, full_res_skip=True, blend=True, **CONTROLS)
#: (focus, aperture) settings compared across runtimes: defaults, the export's own check values, others
SETTINGS = [(None, None), ((0.3, 0.6), 4.0), ((0.9, 0.1), None), (None, 11.0), ((0.0, 1.0), 1.8)]

pytestmark = [pytest.mark.export, pytest.mark.slow]


def run_export(*overrides: str) -> pipeline.Report:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(REPO / "conf" / "export"), version_base="1.3"):
            cfg = compose("tflite", overrides=list(overrides))
        return pipeline.run(cfg)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def controls_checkpoint(make_checkpoint, tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "controls.ckpt", seed=3, **REFERENCE_LIKE)


@pytest.fixture(scope="session")
def controls_export(controls_checkpoint, tmp_path_factory) -> tuple[pipeline.Report, Path]:
    """The export pipeline on the controls model: float32 and float16, GPU checks as configured (auto)."""
    out = tmp_path_factory.mktemp("controls_export")
    report = run_export(f"ckpt={controls_checkpoint}", f"out={out}", f"size={SIZE[0]}x{SIZE[1]}",
                        "verify.latency_repeats=1", "verify.tf_analyzer=false")
    return report, out


def cases() -> list[tuple[str, np.ndarray]]:
    return list(verify.sample_images(*SIZE, "signed").items())


def test_the_export_passes_with_the_controls_as_named_inputs(controls_export):
    report, out = controls_export
    assert not report.failed, {name: report.checks[name] for name in report.failed}
    saved = json.loads((out / "report.json").read_text())
    assert saved["settings"]["inputs"] == ["image", "focus", "aperture"]
    for kind in ("tflite_float32", "tflite_float16"):
        # onnx2tf turns the image NHWC and leaves the (B, 2) / (B, 1) controls as they are
        assert saved["settings"]["tflite_inputs"][kind] == {"image": [1, *SIZE, 3], "focus": [1, 2], "aperture": [1, 1]}
        assert saved["checks"][f"{kind}_inputs"]["passed"] and saved["checks"][f"{kind}_gpu_ops"]["passed"]
        assert {"photo", "random", "photo_controls", "random_controls"} <= set(saved["errors_vs_torch"][kind])
        assert {"EXP", "CONV_2D"} <= set(saved["tflite_ops"][kind])  # the tap plane: a Gaussian through a 1 x 1 conv
    assert saved["checks"]["onnx_inputs"]["passed"]
    assert saved["settings"]["outputs"] == ["bokeh", "matte", "background"]
    for kind in ("onnx", "tflite_float32", "tflite_float16"):
        assert saved["checks"][f"{kind}_outputs"]["passed"]
    for kind in ("onnxruntime", "tflite_float32", "tflite_float16"):
        assert saved["checks"][f"{kind}_matte_vs_torch"]["passed"]
    for kind in ("tflite_float32", "tflite_float16"):  # the 1-channel matte NHWC, as the image
        assert saved["settings"]["tflite_outputs"][kind] == {"image": [1, *SIZE, 3], "matte": [1, *SIZE, 1],
                                                            "background": [1, *SIZE, 3]}


def exported_runtimes(out):
    """Each exported file's runtime with the largest difference from torch it may show."""
    return {"onnx": (OnnxRuntime(out / "bokeh.onnx"), 1e-4),
            "tflite_float32": (LiteRTCpuRuntime(out / "bokeh_float32.tflite"), 1e-4),
            "tflite_float16": (LiteRTCpuRuntime(out / "bokeh_float16.tflite"), 2e-2)}


@pytest.mark.parametrize("focus, aperture", SETTINGS[:2])
def test_torch_onnx_runtime_and_tflite_give_the_same_matte_and_background(controls_export, controls_checkpoint, focus, aperture):
    """The names survive onnx2tf and the matte is not transposed: every runtime's layers by name agree."""
    _, out = controls_export
    torch_model = TorchRuntime(load_generator(controls_checkpoint))
    models = exported_runtimes(out)
    for image_name, image in cases():
        expected = torch_model.run_layers(image, focus, aperture)
        assert float(expected["matte"].std()) > 0.05, "a matte that varies, or the agreement proves nothing"
        for name, (model, limit) in models.items():
            assert model.outputs == torch_model.outputs, name
            layers = model.run_layers(image, focus, aperture)
            assert layers["matte"].shape == (1, 1, *SIZE), name
            for key in ("image", "matte", "background"):
                error = float(np.abs(layers[key] - expected[key]).max())
                assert error < limit, f"{name} {key} on {image_name} with focus={focus}, aperture={aperture}: {error:.3g}"


@pytest.mark.parametrize("focus, aperture", SETTINGS)
def test_torch_onnx_runtime_and_tflite_agree_with_the_controls_set(controls_export, controls_checkpoint, focus, aperture):
    _, out = controls_export
    torch_model = TorchRuntime(load_generator(controls_checkpoint))
    models = exported_runtimes(out)
    for name, (model, limit) in models.items():
        assert model.contract == torch_model.contract, name
        for image_name, image in cases():
            expected = torch_model.run(image, focus, aperture)
            error = float(np.abs(model.run(image, focus, aperture) - expected).max())
            assert error < limit, f"{name} on {image_name} with focus={focus}, aperture={aperture}: {error:.3g}"


def test_the_controls_change_the_output_far_more_than_the_runtimes_differ(controls_export, controls_checkpoint):
    """Otherwise the agreement above would prove nothing about the control inputs."""
    _, out = controls_export
    tflite = LiteRTCpuRuntime(out / "bokeh_float32.tflite")
    image = cases()[0][1]
    default = tflite.run(image)
    for focus, aperture in SETTINGS[1:]:
        assert float(np.abs(tflite.run(image, focus, aperture) - default).max()) > 1e-2, (focus, aperture)


def test_exported_models_refuse_bad_controls_by_name(controls_export):
    _, out = controls_export
    tflite = LiteRTCpuRuntime(out / "bokeh_float32.tflite")
    image = cases()[0][1]
    with pytest.raises(ControlError, match="outside the photo"):
        tflite.run(image, focus=(1.5, 0.5))
    with pytest.raises(ControlError, match="aperture="):
        tflite.run(image, aperture=0.0)


def test_a_tap_renders_the_same_through_the_exported_model_and_torch(controls_export, controls_checkpoint):
    """render_image maps the point through the Plan (a portrait photo is turned for the landscape
    model) the same way for an exported model and for torch made to behave like one."""
    _, out = controls_export
    photo = (verify.photo(120, 70) * 255).astype(np.uint8)  # portrait: turned for the 64 x 96 model
    exported = ExportedBackend(LiteRTCpuRuntime(out / "bokeh_float32.tflite"), SIZE)
    torch_backend = TorchBackend(load_generator(controls_checkpoint), static_size=SIZE)
    tapped = render_image(photo, exported, focus=(0.2, 0.8), aperture=2.8)
    assert float((tapped - render_image(photo, torch_backend, focus=(0.2, 0.8), aperture=2.8)).abs().max()) < 1e-3
    assert float((tapped - render_image(photo, exported)).abs().max()) > 1e-2


def test_the_gpu_accelerator_runs_the_controls_whole_and_close_to_torch(controls_export, controls_checkpoint, vulkan_adapter):
    report, out = controls_export
    assert report.gpu_accelerator["status"] == "ran"
    for kind in ("tflite_float32", "tflite_float16"):
        assert report.checks[f"{kind}_gpu_fully_accelerated"].passed
        assert "photo_controls" in report.errors[f"{kind}_gpu"]
        assert report.checks[f"{kind}_gpu_matte_vs_torch"].passed  # the three-output model, fully delegated
    torch_model = TorchRuntime(load_generator(controls_checkpoint))
    for enforce_f32, limit in ((False, 2e-2), (True, 1e-4)):
        with LiteRTGpuRuntime(out / "bokeh_float32.tflite", enforce_f32=enforce_f32) as gpu:
            assert gpu.fully_accelerated and gpu.contract == torch_model.contract and gpu.outputs == torch_model.outputs
            for focus, aperture in SETTINGS:
                for _, image in cases():
                    layers, expected = gpu.run_layers(image, focus, aperture), torch_model.run_layers(image, focus, aperture)
                    for key in ("image", "matte"):
                        error = float(np.abs(layers[key] - expected[key]).max())
                        assert error < limit, (enforce_f32, key, focus, aperture, error)


def test_int8_says_it_does_not_take_controls_before_any_work(controls_checkpoint, tmp_path):
    out = tmp_path / "int8"
    with pytest.raises(pipeline.ExportConfigError, match="int8 export does not support a model with controls"):
        run_export(f"ckpt={controls_checkpoint}", f"out={out}", f"size={SIZE[0]}x{SIZE[1]}", "export.int8.enabled=true")
    assert not out.exists() or not any(out.iterdir())


def test_a_paper_model_exports_one_image_input(tiny_checkpoint, controls_export):
    """The paper's configuration keeps its single input: the contract read back from the files says so."""
    report = run_export(f"ckpt={tiny_checkpoint}", f"out={Path(controls_export[1]).parent / 'paper'}",
                        f"size={SIZE[0]}x{SIZE[1]}", "export.float16=false", "verify.latency_repeats=1",
                        "verify.tf_analyzer=false", "verify.gpu_accelerator=off")
    assert not report.failed, {name: report.checks[name] for name in report.failed}
    assert report.settings["inputs"] == ["image"] and "photo_controls" not in report.errors["onnxruntime"]
    assert report.settings["outputs"] == ["bokeh"] and "onnxruntime_matte" not in report.errors
    paper = Path(report.out_dir)
    assert OnnxRuntime(paper / "bokeh.onnx").contract.names == ("image",)
    assert LiteRTCpuRuntime(paper / "bokeh_float32.tflite").contract.names == ("image",)
    assert set(LiteRTCpuRuntime(paper / "bokeh_float32.tflite").run_layers(verify.sample_images(*SIZE, "signed")["photo"])) == {"image"}
    with pytest.raises(ControlError, match="takes no f-number"):
        LiteRTCpuRuntime(paper / "bokeh_float32.tflite").run(verify.sample_images(*SIZE, "signed")["photo"], aperture=4.0)
