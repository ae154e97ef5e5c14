"""Fast tests of the export pieces that need no conversion."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from bokeh.checkpoint import CheckpointError
from bokeh.export import tflite, verify
from bokeh.export.onnx import Deployable, deployable, export_onnx
from bokeh.export.pipeline import ExportConfigError, parse_size, run, to_signed, variant_dir
from bokeh.models.glassnet import GlassNet
from bokeh.models.norms import PoolInstanceNorm2d

CONF = Path(__file__).resolve().parents[2] / "conf" / "export"

pytestmark = pytest.mark.export


@pytest.fixture
def compose_export():
    def _compose(*overrides):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose("tflite", overrides=list(overrides))

    yield _compose
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("text, expected", [("1024x1536", (1024, 1536)), ("1536X1024", (1536, 1024)), ("16x24", (16, 24))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text, message", [
    ("1024", "is not HxW"), ("1024x", "is not HxW"), ("axb", "is not HxW"),
    ("1020x1536", "multiples of 8"), ("0x8", "multiples of 8"), ("8x8", "at least 16 px"),
    ("8x16", "each side must be at least 16 px"), ("16x8", "at least 16x16"),
])
def test_parse_size_rejects(text, message):
    with pytest.raises(ExportConfigError, match=message):
        parse_size(text)


def test_pixel_range_is_the_signed_model_rescaled():
    generator = GlassNet(4, 4, blocks=1).eval()
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        signed = Deployable(generator, "signed")(x)
        pixel = Deployable(generator, "pixel")((x + 1) * 127.5)
    torch.testing.assert_close(pixel, (signed + 1) * 127.5, atol=1e-4, rtol=0)
    assert 0 <= pixel.min() and pixel.max() <= 255
    torch.testing.assert_close(torch.from_numpy(to_signed(pixel.numpy(), "pixel")), signed, atol=1e-6, rtol=0)


def test_a_blend_model_exports_its_matte_in_0_1_and_its_background_scaled_as_the_image():
    from bokeh.models.init import trained_like

    generator = trained_like(GlassNet(4, 4, blocks=1, blend=True), 0).eval()
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        layers = generator.layers(x)
        image, matte, background = Deployable(generator, "signed")(x)
        pixel_image, pixel_matte, pixel_background = Deployable(generator, "pixel")((x + 1) * 127.5)
    assert Deployable(generator).outputs.file_names == ("bokeh", "matte", "background")
    torch.testing.assert_close(image, layers.image, atol=0, rtol=0)
    torch.testing.assert_close(matte, layers.matte, atol=0, rtol=0)
    assert float(matte.std()) > 0.01 and 0 <= matte.min() and matte.max() <= 1
    torch.testing.assert_close(pixel_matte, matte, atol=1e-5, rtol=0)  # never scaled
    torch.testing.assert_close(pixel_background, (background + 1) * 127.5, atol=1e-3, rtol=0)
    torch.testing.assert_close(pixel_image, (image + 1) * 127.5, atol=1e-3, rtol=0)


def test_deployable_swaps_instance_norm_only_in_pool_form():
    generator = GlassNet(4, 4, blocks=1)
    pool = deployable(generator, 16, 24, "pool")
    plain = deployable(generator, 16, 24, "plain")
    assert any(isinstance(m, PoolInstanceNorm2d) for m in pool.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in pool.modules())
    assert not any(isinstance(m, PoolInstanceNorm2d) for m in plain.modules())
    with pytest.raises(ValueError, match="instance_norm"):
        deployable(generator, 16, 24, "mean")
    with pytest.raises(ValueError, match="value_range"):
        Deployable(generator, "uint8")


def test_variant_dirs_never_collide(tmp_path):
    dirs = {variant_dir(tmp_path, n, r) for n in ("pool", "plain") for r in ("signed", "pixel")}
    assert len(dirs) == 4 and variant_dir(tmp_path, "pool", "signed") == tmp_path


def test_parity_numbers():
    a = np.zeros((1, 3, 4, 4), np.float32)
    assert verify.parity(a, a, 2.0) == {"max_abs": 0.0, "psnr_db": float("inf")}
    b = a + 0.02
    result = verify.parity(a, b, 2.0)
    assert result["max_abs"] == pytest.approx(0.02)
    assert result["psnr_db"] == pytest.approx(10 * np.log10(4 / 0.02**2), abs=1e-3)
    with pytest.raises(ValueError, match="shape"):
        verify.parity(a, a[..., :2], 2.0)


def test_sample_and_calibration_images():
    images = verify.sample_images(64, 96, "signed")
    assert set(images) == {"photo", "random"}
    for image in images.values():
        assert image.shape == (1, 3, 64, 96) and image.dtype == np.float32
        assert -1 <= image.min() < image.max() <= 1
    assert images["photo"].std() > 0.1, "a real photo, not a flat image"
    pixel = verify.sample_images(64, 96, "pixel")["photo"]
    np.testing.assert_allclose(pixel / 127.5 - 1, images["photo"], atol=1e-5)
    calibration = verify.calibration_images("signed")
    assert calibration.shape == tflite.CALIBRATION_SHAPE and calibration.dtype == np.float32
    assert -1 <= calibration.min() and calibration.max() <= 1


def test_offline_calibration_patch_is_scoped_and_checked():
    import onnx2tf.onnx2tf as onnx2tf_main

    original = onnx2tf_main.download_test_image_data
    data = verify.calibration_images("signed")
    with tflite._offline_calibration(data):
        np.testing.assert_array_equal(onnx2tf_main.download_test_image_data(), data)
    assert onnx2tf_main.download_test_image_data is original
    with pytest.raises(ValueError, match="calibration"):
        with tflite._offline_calibration(data[:, :64]):
            pass


def test_config_composes_with_documented_defaults(compose_export):
    cfg = compose_export("ckpt=model.ckpt")
    assert (cfg.out, cfg.size) == ("outputs/tflite", "1024x1536")
    assert (cfg.export.instance_norm, cfg.export.value_range, cfg.export.opset) == ("pool", "signed", 18)
    assert cfg.verify.tolerance.tflite_float32 == 1e-4 and cfg.verify.tolerance.tflite_float16 == 2e-2
    plain = compose_export("ckpt=model.ckpt", "export.instance_norm=plain", "size=256x384")
    assert plain.export.instance_norm == "plain" and plain.size == "256x384"


def test_run_explains_bad_settings(compose_export, tmp_path):
    with pytest.raises(ExportConfigError, match="pass ckpt="):
        run(compose_export())
    with pytest.raises(CheckpointError, match="does not exist"):
        run(compose_export(f"ckpt={tmp_path / 'missing.ckpt'}", f"out={tmp_path / 'out'}"))
    with pytest.raises(ExportConfigError, match="multiples of 8"):
        run(compose_export("ckpt=x.ckpt", "size=100x100"))
    with pytest.raises(ExportConfigError, match="export.instance_norm"):
        run(compose_export("ckpt=x.ckpt", "export.instance_norm=batch"))
    with pytest.raises(ExportConfigError, match="verify.gpu_ops"):
        run(compose_export("ckpt=x.ckpt", "verify.gpu_ops=maybe"))
    with pytest.raises(ExportConfigError, match="verify.gpu_accelerator"):
        run(compose_export("ckpt=x.ckpt", "verify.gpu_accelerator=sometimes"))
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(ExportConfigError, match="not a folder"):
        run(compose_export("ckpt=x.ckpt", f"out={not_a_dir}"))
    assert not (tmp_path / "out").exists(), "a refused run writes nothing"


@pytest.mark.parametrize("size, expected", [((64, 96), 2), ((256, 256), 0)])
def test_residual_add_replacements(tmp_path, size, expected):
    """One entry per residual Add (one block per stage here); none when C == H == W (32 at 256 x 256)."""
    module = deployable(GlassNet(4, 4, blocks=1), *size)
    path = export_onnx(module, torch.zeros(1, 3, *size), tmp_path / "m.onnx")
    operations = tflite.residual_add_replacements(path)["operations"]
    assert len(operations) == expected
    import onnx

    adds = {node.name for node in onnx.load(str(path)).graph.node if node.op_type == "Add"}
    assert all(op["op_name"] in adds and op["param_target"] == "outputs" for op in operations)


def test_cli_exits_2_with_the_reason(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "bokeh.export", "size=1024x1536"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "no checkpoint given: pass ckpt=" in result.stderr
    missing = subprocess.run([sys.executable, "-m", "bokeh.export", f"ckpt={tmp_path / 'nope.ckpt'}"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "nope.ckpt does not exist" in missing.stderr
    assert list(tmp_path.iterdir()) == [], "nothing written, no Hydra run folder"


# ----------------------------------------------------------------------------- GPU accelerator checks
def _gpu_settings(tmp_path, compose_export, *overrides):
    from bokeh.export.pipeline import settings_from

    return settings_from(compose_export("ckpt=x.ckpt", f"out={tmp_path}", *overrides))


def test_without_an_adapter_the_gpu_check_is_reported_not_run(monkeypatch, tmp_path, compose_export):
    """verify.gpu_accelerator=auto and no adapter: "not run" with the command that provides one, in the
    report and the printed table; not a pass, and not a failure of the export either."""
    from rich.console import Console

    from bokeh.export import pipeline
    from bokeh.export.table import print_summary
    from bokeh.runtimes import ADAPTER_HINT, GpuAdapterMissing

    def no_adapter():
        raise GpuAdapterMissing(f"no Vulkan adapter; {ADAPTER_HINT}")

    monkeypatch.setattr(pipeline, "gpu_adapter", no_adapter)
    report = pipeline.Report(settings={"size": [8, 8], "instance_norm": "pool", "value_range": "signed", "threads": 1})
    files = {"tflite_float32": tmp_path / "a.tflite", "tflite_float16": tmp_path / "b.tflite"}
    pipeline._gpu_step(report, _gpu_settings(tmp_path, compose_export), files, {}, {})
    for name in files:
        check = report.checks[f"{name}_gpu_accelerator"]
        assert not check.passed and not check.ran and not check.required
        assert ".ci/vulkan-adapter" in check.detail
    assert report.failed == [] and report.to_json()["gpu_accelerator"]["status"] == "not run"
    console = Console(record=True, width=200)
    print_summary(report.to_json(), console)
    text = console.export_text()
    assert "not run" in text and "GPU accelerator NOT RUN" in text and "mesa-vulkan-drivers" in text
    required = pipeline.Report(settings={})
    pipeline._gpu_step(required, _gpu_settings(tmp_path, compose_export, "verify.gpu_accelerator=required"), files, {}, {})
    assert required.failed == ["tflite_float32_gpu_accelerator", "tflite_float16_gpu_accelerator"]


def test_a_model_the_gpu_cannot_run_whole_fails_fully_accelerated(tmp_path, vulkan_adapter):
    """GATHER_ND is no GPU op: the check says "not fully accelerated" naming it, and runs nothing further."""
    from bokeh.export import pipeline
    from bokeh.runtimes.tiny_tflite import gather_nd_model

    report = pipeline.Report(settings={})
    path = gather_nd_model(tmp_path / "gather_nd.tflite")
    pipeline.gpu_checks(report, "tflite_float32", path, {}, {}, "signed", {"gpu": 2e-2, "gpu_f32": 1e-4}, 1)
    assert report.failed == ["tflite_float32_gpu_fully_accelerated"]
    detail = report.checks["tflite_float32_gpu_fully_accelerated"].detail
    assert "not fully accelerated" in detail and "GATHER_ND" in detail
