"""The subject matte (bokeh.runtimes.segmenter): MediaPipe's selfie segmenter on our LiteRT runtimes."""

from __future__ import annotations

from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bokeh.runtimes import segmenter as seg
from bokeh.runtimes.segmenter import SegmenterMissing, SubjectSegmenter, default_segmenter, segmenter_model_path
from bokeh.runtimes.tflite_tensors import TfliteTensors


@pytest.fixture(scope="module")
def portrait() -> torch.Tensor:
    """matplotlib's sample portrait (Grace Hopper, 600 x 512), ``(1, 3, H, W)`` in [-1, 1]."""
    from matplotlib import cbook

    rgb = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def face_and_corners(matte: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The matte on a central face box, and on the two top corners (the wall behind her)."""
    height, width = matte.shape[-2:]
    face = matte[..., int(0.2 * height):int(0.5 * height), int(0.35 * width):int(0.65 * width)]
    corners = torch.cat([matte[..., :height // 8, :width // 8].flatten(), matte[..., :height // 8, -width // 8:].flatten()])
    return face, corners


def test_model_is_read_from_the_installed_wheel():
    path = segmenter_model_path()
    assert path.name == "selfie_segmentation.tflite" and path.parts[-4:-1] == ("mediapipe", "modules", "selfie_segmentation")
    assert path.stat().st_size == 249_505
    assert segmenter_model_path("landscape").name == "selfie_segmentation_landscape.tflite"
    with pytest.raises(ValueError, match="variant='portrait'"):
        segmenter_model_path("portrait")


def test_matte_covers_the_face_of_a_portrait_on_the_cpu(portrait):
    segmenter = SubjectSegmenter()
    assert segmenter.size == (256, 256)
    matte = segmenter.matte(portrait)
    assert matte.shape == (1, 1, *portrait.shape[-2:]) and matte.dtype == torch.float32
    assert 0.0 <= matte.min() and matte.max() <= 1.0
    face, corners = face_and_corners(matte)
    assert (face > 0.5).float().mean() > 0.99, "the face is not in the subject matte"
    assert corners.mean() < 0.05, "the wall behind the subject is in the matte"
    assert torch.equal(segmenter.matte(portrait), matte), "not deterministic"


def test_matte_of_a_batch_equals_each_image_alone(portrait):
    segmenter = default_segmenter("cpu")
    flipped = portrait.flip(-1)
    both = segmenter.matte(torch.cat([portrait, flipped]))
    assert torch.equal(both[1:], segmenter.matte(flipped)) and torch.equal(both[:1], segmenter.matte(portrait))
    assert not torch.equal(both[0], both[1])


def test_matte_in_bf16_is_float32_in_range_and_close(portrait):
    segmenter = default_segmenter("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        matte = segmenter.matte(portrait.to(torch.bfloat16) * 1.01)  # bf16 rounding pushes past [-1, 1]
    assert matte.dtype == torch.float32 and 0.0 <= matte.min() and matte.max() <= 1.0
    assert ((matte > 0.5) == (segmenter.matte(portrait) > 0.5)).float().mean() > 0.99


def test_default_segmenter_is_one_instance_per_device():
    assert default_segmenter("cpu") is default_segmenter("cpu")
    with pytest.raises(ValueError, match="device='npu'"):
        default_segmenter("npu")


def test_matte_refuses_a_tensor_that_is_not_an_image_batch():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        default_segmenter("cpu").matte(torch.zeros(1, 1, 64, 64))


def test_landscape_variant_has_its_own_size(portrait):
    segmenter = SubjectSegmenter(segmenter_model_path("landscape"))
    assert segmenter.size == (144, 256)
    face, corners = face_and_corners(segmenter.matte(portrait))
    assert face.mean() > 0.9 and corners.mean() < 0.1


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.count(". ") == 0 and "Traceback" not in message


def test_missing_mediapipe_is_one_sentence_naming_the_fix(monkeypatch):
    monkeypatch.setattr(seg, "find_spec", lambda name: None)
    with pytest.raises(SegmenterMissing) as raised:
        SubjectSegmenter()
    message = str(raised.value)
    _one_sentence(message)
    assert "mediapipe" in message and "make venv" in message and "pip install mediapipe==0.10.21" in message


def test_a_wheel_without_the_model_is_one_sentence_naming_the_file(monkeypatch, tmp_path):
    package = tmp_path / "mediapipe"
    (package / "modules" / "selfie_segmentation").mkdir(parents=True)
    spec = ModuleSpec("mediapipe", None, is_package=True)
    spec.submodule_search_locations = [str(package)]
    monkeypatch.setattr(seg, "find_spec", lambda name: spec)
    with pytest.raises(SegmenterMissing) as raised:
        segmenter_model_path()
    message = str(raised.value)
    _one_sentence(message)
    assert str(package / "modules" / "selfie_segmentation" / "selfie_segmentation.tflite") in message
    assert "pip install mediapipe==0.10.21" in message


def test_a_missing_segmenter_file_names_the_export(tmp_path):
    with pytest.raises(SegmenterMissing, match="make tflite") as raised:
        SubjectSegmenter(tmp_path / "segmenter.tflite")
    _one_sentence(str(raised.value))


def test_a_glassnet_file_is_not_a_segmenter(tmp_path):
    from bokeh.runtimes.tiny_tflite import add_model

    with pytest.raises(ValueError, match="not a segmenter's"):
        SubjectSegmenter(add_model(tmp_path / "add.tflite"))  # (1, 8, 8, 3) out, not one plane


def test_tensor_runner_checks_names_and_shapes():
    model = TfliteTensors(segmenter_model_path())
    assert model.input_shapes == {"input_1": (1, 256, 256, 3)} and model.output_shapes == {"activation_10": (1, 256, 256, 1)}
    with pytest.raises(ValueError, match="the model takes"):
        model.run({"image": np.zeros((1, 256, 256, 3), np.float32)})
    with pytest.raises(ValueError, match=r"the model takes \(1, 256, 256, 3\)"):
        model.run({"input_1": np.zeros((1, 128, 128, 3), np.float32)})
    with pytest.raises(ValueError, match="device='tpu'"):
        TfliteTensors(segmenter_model_path(), "tpu")


def test_gpu_matte_agrees_with_the_cpu(portrait, vulkan_adapter):
    gpu = default_segmenter("gpu")
    assert gpu.model.fully_accelerated is True
    described = gpu.describe()
    assert described.extra["fully_accelerated"] is True and described.extra["licence"] == "Apache-2.0"
    matte = gpu.matte(portrait)
    assert matte.shape == (1, 1, *portrait.shape[-2:]) and 0.0 <= matte.min() and matte.max() <= 1.0
    on_cpu = default_segmenter("cpu").matte(portrait) > 0.5
    on_gpu = matte > 0.5
    iou = (on_cpu & on_gpu).sum() / (on_cpu | on_gpu).sum()
    assert iou > 0.99, f"CPU and GPU mattes differ: IoU {iou:.4f}"
    face, corners = face_and_corners(matte)
    assert (face > 0.5).float().mean() > 0.99 and corners.mean() < 0.05
