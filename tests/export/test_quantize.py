"""The int8 TFLite model: calibration data, and its parity check passing a right model and failing a wrong one.

Two tiny conversions (widths 4 / 4, one block, 128 x 192, 4 calibration images): about 20 s each
on 2 idle cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from bokeh.export import quantize, verify
from bokeh.export.gpu_ops import GPU_DELEGATE_OPS
from bokeh.runtimes import LiteRTCpuRuntime, LiteRTGpuRuntime

from test_export_pipeline import run_in_process, torch_reference  # tests/export/ is on sys.path

SIZE = (128, 192)
INT8 = [f"size={SIZE[0]}x{SIZE[1]}", "export.int8.enabled=true", "export.int8.calibration_count=4",
        "export.float16=false", "verify.latency_repeats=1", "verify.tf_analyzer=false"]


def test_representative_images_are_the_synthetic_sharp_images_in_the_model_range():
    from bokeh.data.synthetic import make_pair

    images = list(quantize.representative_images(32, 48, "signed", count=3, seed=5))
    assert len(images) == 3 and all(x.shape == (1, 32, 48, 3) and x.dtype == np.float32 for x in images)
    assert all(-1.0 <= x.min() and x.max() <= 1.0 for x in images)
    expected = make_pair(1, seed=5, size=(32, 48)).sharp.astype(np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(images[1][0], expected, atol=1e-6)
    pixel = next(quantize.representative_images(32, 48, "pixel", count=1, seed=5))
    np.testing.assert_allclose(pixel[0], make_pair(0, seed=5, size=(32, 48)).sharp.astype(np.float32), atol=1e-4)
    with pytest.raises(ValueError, match="at least one image"):
        next(quantize.representative_images(32, 48, count=0))


@pytest.fixture(scope="module")
def int8_export(tiny_checkpoint, tmp_path_factory):
    """``(report, out folder)`` of an export with the int8 file, tiny model."""
    out = tmp_path_factory.mktemp("int8")
    return run_in_process(f"ckpt={tiny_checkpoint}", f"out={out}", *INT8), out


@pytest.fixture(scope="module")
def photo_reference(tiny_checkpoint):
    """``(photo, torch output)``, NCHW in [-1, 1], at the export size."""
    return verify.sample_images(*SIZE, "signed")["photo"], torch_reference(tiny_checkpoint, SIZE)["photo"]


@pytest.mark.export
@pytest.mark.slow
def test_int8_model_is_written_verified_and_close_to_torch(int8_export, photo_reference):
    report, out = int8_export
    assert not report.failed, {name: report.checks[name] for name in report.failed}
    assert report.checks["tflite_int8_vs_torch"].passed and "PSNR" in report.checks["tflite_int8_vs_torch"].detail
    path = out / "bokeh_int8.tflite"
    assert report.files["bokeh_int8.tflite"] == path.stat().st_size
    assert path.stat().st_size < 0.5 * (out / "bokeh_float32.tflite").stat().st_size  # int8 weights
    ops = verify.tflite_ops(path)
    assert ops["QUANTIZE"] >= 1 and ops["DEQUANTIZE"] >= 1 and ops["CONV_2D"] >= 1
    assert set(ops) <= GPU_DELEGATE_OPS and report.checks["tflite_int8_gpu_ops"].passed
    assert report.latency["tflite_int8"]["median_s"] > 0
    assert "per output channel" in report.to_json()["settings"]["int8"]["scheme"]
    # independently of the report: the file against torch, on the photo, float32 in and out
    model = LiteRTCpuRuntime(path)
    assert model.input_shape == (1, *SIZE, 3) and model.describe().precision == "int8 (quantized)"
    photo, reference = photo_reference
    output = model(photo)
    assert output.dtype == np.float32
    psnr = verify.parity(reference, output, 2.0)["psnr_db"]
    assert 38.0 <= psnr < 80.0, psnr  # close, and really quantized (float32 gives > 120 dB)


@pytest.mark.export
@pytest.mark.slow
def test_int8_model_runs_fully_on_the_gpu_accelerator(int8_export, photo_reference, vulkan_adapter):
    report, out = int8_export
    assert not report.failed
    runtime = LiteRTGpuRuntime(out / "bokeh_int8.tflite")  # GPU alone: refuses a model with ops it cannot run
    assert runtime.fully_accelerated
    photo, reference = photo_reference
    psnr = verify.parity(reference, runtime(photo), 2.0)["psnr_db"]
    assert psnr >= 35.0, psnr  # int8 weights, fp16 arithmetic on the GPU


@pytest.mark.export
@pytest.mark.slow
def test_int8_parity_check_fails_on_a_wrongly_calibrated_model(tiny_checkpoint, tmp_path, monkeypatch):
    """Calibrated on black images, every activation range collapses: the int8 model is wrong, and the
    export must say so instead of shipping it."""
    def black(height, width, value_range="signed", count=1, seed=0):
        for _ in range(count):
            yield np.full((1, height, width, 3), -1.0, np.float32)

    monkeypatch.setattr(quantize, "representative_images", black)
    report = run_in_process(f"ckpt={tiny_checkpoint}", f"out={tmp_path}", *INT8)
    assert report.failed == ["tflite_int8_vs_torch"], report.failed
    assert report.checks["tflite_float32_vs_torch"].passed
    assert not (tmp_path / "bokeh_int8.tflite").exists() and (tmp_path / "failed" / "bokeh_int8.tflite").exists()
    assert min(e["psnr_db"] for e in report.errors["tflite_int8"].values()) < 30
