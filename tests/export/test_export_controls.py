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

import torch
from ai_edge_litert.interpreter import Interpreter

from bokeh.checkpoint import load_generator
from bokeh.export import pair, pipeline, verify
from bokeh.model_files import read_metadata
from bokeh.models.controls import ControlError
from bokeh.render import ExportedBackend, TorchBackend, load_backend, render_image
from bokeh.render.fit import SUBJECT_GATE
from bokeh.runtimes import LiteRTCpuRuntime, LiteRTGpuRuntime, OnnxRuntime, TorchRuntime
from bokeh.runtimes.segmenter import SegmenterMissing, SubjectSegmenter, default_segmenter, segmenter_model_path

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


# ---------------------------------------------------------------- the phone pipeline: segmenter + Glass-Net (issue 30)
def pipeline_render(backend, image: np.ndarray, focus=None, aperture=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two-model pipeline at the model's own size, as pipeline.json writes it: (out, m, B) with
    ``m`` the backend's subject matte and ``B`` its background, ``out = m * photo + (1 - m) * B``."""
    x = torch.from_numpy(image)
    m, background = backend.segmenter.matte(x), backend.layers(x, focus, aperture)["background"]
    return m * x + (1 - m) * background, m, background


def test_the_export_writes_the_segmenter_and_the_pipeline_description(controls_export):
    report, out = controls_export
    assert report.checks["segmenter_cpu"].passed and report.files[pair.SEGMENTER_FILE] == 249_505
    assert (out / pair.SEGMENTER_FILE).read_bytes() == segmenter_model_path().read_bytes()
    description = json.loads((out / pair.PIPELINE_FILE).read_text())
    segmenter = description["models"]["segmenter"]
    assert segmenter["licence"] == "Apache-2.0" and "MediaPipe" in segmenter["source"] and segmenter["file"] == "segmenter.tflite"
    assert segmenter["inputs"] == {"input_1": {"shape": [1, 256, 256, 3], "layout": "NHWC", "dtype": "float32",
                                               "range": [0.0, 1.0], "from": segmenter["inputs"]["input_1"]["from"]}}
    assert segmenter["outputs"]["activation_10"]["shape"] == [1, 256, 256, 1]
    glassnet = description["models"]["glassnet"]
    assert glassnet["files"] == ["bokeh_float32.tflite", "bokeh_float16.tflite"]
    assert list(glassnet["inputs"]) == ["image", "focus", "aperture"] and glassnet["inputs"]["image"]["shape"] == [1, *SIZE, 3]
    assert list(glassnet["outputs"]) == ["bokeh", "matte", "background"] and glassnet["inputs"]["image"]["range"] == [-1.0, 1.0]
    assert description["composite"] == "m * photo + (1 - m) * up(B)" and "'background'" in description["composite_terms"]["B"]
    assert {k: description["subject_gate"][k] for k in SUBJECT_GATE} == SUBJECT_GATE  # the renderer's gate (bokeh.render.fit)
    for name in glassnet["files"]:  # a model file copied alone still says what it pairs with
        meta = read_metadata(out / name)
        assert meta["segmenter"] == "segmenter.tflite" and meta["pipeline"] == description


def test_tflite_tensors_are_named_and_ordered_as_in_onnx(controls_export):
    import onnx

    _, out = controls_export
    graph = onnx.load(str(out / "bokeh.onnx"), load_external_data=False).graph
    onnx_inputs, onnx_outputs = [i.name for i in graph.input], [o.name for o in graph.output]
    assert onnx_outputs == ["bokeh", "matte", "background"]
    for name in ("bokeh_float32.tflite", "bokeh_float16.tflite"):
        interpreter = Interpreter(model_path=str(out / name))  # by index, without the signature (was PartitionedCall:0..2)
        assert [d["name"] for d in interpreter.get_input_details()] == onnx_inputs
        assert [d["name"] for d in interpreter.get_output_details()] == onnx_outputs
        signature = interpreter.get_signature_list()["serving_default"]
        assert sorted(signature["outputs"]) == sorted(onnx_outputs) and sorted(signature["inputs"]) == sorted(onnx_inputs)


def test_render_runs_the_two_file_pipeline_on_the_cpu_as_torch(controls_export, controls_checkpoint):
    _, out = controls_export
    torch_backend = load_backend(controls_checkpoint, precision="fp32")
    assert torch_backend.segmenter is default_segmenter("cpu")  # torch and ONNX: the installed segmenter
    limits = {"tflite_float32": 1e-4, "tflite_float16": 2e-2}  # exported_runtimes' table
    for name, limit in limits.items():
        backend = load_backend(out / f"bokeh_{name[7:]}.tflite")
        assert backend.segmenter.path == out / pair.SEGMENTER_FILE and backend.segmenter.device == "cpu"
        for focus, aperture in SETTINGS[:2]:
            for case, image in cases():
                expected, m, _ = pipeline_render(torch_backend, image, focus, aperture)
                got, m_tflite, _ = pipeline_render(backend, image, focus, aperture)
                assert torch.equal(m, m_tflite)
                error = float((got - expected).abs().max())
                assert error < limit, f"{name} {case} focus={focus} aperture={aperture}: {error:.3g}"
    photo_matte = pipeline_render(torch_backend, cases()[0][1])[1]
    assert 0.1 < float(photo_matte.mean()) < 0.9, "the sample photo (a person) has a subject, or the composite proves little"


def test_render_runs_the_two_file_pipeline_on_the_gpu_accelerator(controls_export, controls_checkpoint, vulkan_adapter):
    report, out = controls_export
    assert report.checks["segmenter_gpu_fully_accelerated"].passed and report.checks["segmenter_gpu_vs_cpu"].passed
    torch_backend = load_backend(controls_checkpoint, precision="fp32")
    backend = load_backend(out / "bokeh_float32.tflite", accelerator="gpu")
    assert backend.run.fully_accelerated and backend.segmenter.model.fully_accelerated
    assert backend.segmenter.path == out / pair.SEGMENTER_FILE and backend.segmenter.device == "gpu"
    f32 = ExportedBackend(LiteRTGpuRuntime(out / "bokeh_float32.tflite", enforce_f32=True), SIZE)
    f32.segmenter_source = lambda: SubjectSegmenter(out / pair.SEGMENTER_FILE, "gpu", enforce_f32=True)
    for focus, aperture in SETTINGS[:2]:
        for case, image in cases():
            expected, m, background = pipeline_render(torch_backend, image, focus, aperture)
            got, m_gpu, background_gpu = pipeline_render(backend, image, focus, aperture)
            # fp16: each model within its GPU tolerance (conf/export/tflite.yaml), so the composite within their sum
            assert float((background_gpu - background).abs().max()) < 2e-2, case
            assert float((m_gpu - m).abs().max()) < 0.15 and pair.iou(m_gpu, m) >= pair.MIN_GPU_IOU, case
            bound = 0.15 * (torch.from_numpy(image) - background).abs() + 2e-2
            assert bool(((got - expected).abs() <= bound).all()) and float((got - expected).abs().mean()) < 2e-3, case
            exact = pipeline_render(f32, image, focus, aperture)[0]  # float32 arithmetic: gpu_float32's tolerance
            assert float((exact - expected).abs().max()) < 1e-4, (case, float((exact - expected).abs().max()))
    f32.segmenter.close()
    f32.run.close()


def test_an_exported_model_without_its_segmenter_says_so_in_one_sentence(controls_export, tmp_path):
    _, out = controls_export
    alone = tmp_path / "bokeh_float32.tflite"
    alone.write_bytes((out / "bokeh_float32.tflite").read_bytes())
    backend = load_backend(alone)  # renders without the subject matte (subject=off) as before
    assert backend(torch.from_numpy(cases()[0][1])).shape == (1, 3, *SIZE)
    with pytest.raises(SegmenterMissing) as raised:
        backend.segmenter
    message = str(raised.value)
    assert "\n" not in message and str(tmp_path / "segmenter.tflite") in message and "make tflite" in message
    (tmp_path / "segmenter.tflite").write_bytes((out / pair.SEGMENTER_FILE).read_bytes())
    assert backend.segmenter.path == tmp_path / "segmenter.tflite"  # nothing was cached by the failure
