"""bokeh.runtimes: each runtime runs, describes itself and fails when built without its library or device.

The GPU accelerator's tests take the ``vulkan_adapter`` fixture (tests/conftest.py): they skip
without a Vulkan adapter, and fail without one where ``BOKEH_REQUIRE_GPU=1`` (CI).
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bokeh.inference import prepare_for_inference, run_generator
from bokeh.models.glassnet import GlassNet
from bokeh.runtimes import (
    GpuAdapterMissing, LiteRTCpuRuntime, LiteRTGpuRuntime, NotFullyAccelerated, RuntimeUnavailable, TorchRuntime,
    runtime_for,
)
from bokeh.runtimes.litert_gpu import parse_adapter, unsupported_ops
from bokeh.runtimes.tiny_tflite import add_model, gather_nd_model

NO_VULKAN = {"VK_ICD_FILENAMES": "/nonexistent/icd.json", "VK_DRIVER_FILES": "/nonexistent/icd.json"}


def nchw(seed: int = 0, height: int = 8, width: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (1, 3, height, width)).astype(np.float32)


# ----------------------------------------------------------------------------- CPU runtimes
def test_torch_runtime_is_the_fast_path_on_numpy_batches():
    generator = GlassNet(width1=4, width2=4, blocks=1).eval()
    batch = np.concatenate([nchw(0, 16, 24), nchw(1, 16, 24)])
    runtime = TorchRuntime(generator)
    expected = run_generator(prepare_for_inference(generator), torch.from_numpy(batch)).numpy()
    out = runtime(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    assert runtime.input_size is None
    description = runtime.describe()
    assert description.precision == "float32" and description.threads == torch.get_num_threads()
    assert description.runtime.startswith("torch ")


def test_litert_cpu_runs_nchw_batches_through_an_nhwc_model(tmp_path):
    runtime = LiteRTCpuRuntime.from_file(add_model(tmp_path / "add.tflite", 8, 16), threads=1)
    assert runtime.input_shape == runtime.output_shape == (1, 8, 16, 3) and runtime.input_size == (8, 16)
    batch = np.concatenate([nchw(0, 8, 16), nchw(1, 8, 16)])
    np.testing.assert_array_equal(runtime(batch), 2 * batch)  # per image, in NCHW
    assert runtime.describe().precision == "float32"
    with pytest.raises(ValueError, match="takes 8 x 16 only"):
        runtime(nchw(0, 8, 8))
    with pytest.raises(ValueError, match="NCHW"):
        runtime(np.zeros((1, 8, 16, 3), np.float32))


def test_litert_cpu_runs_an_int8_model_with_its_own_quantization(tmp_path):
    """A fully quantized model (int8 input, weights and output) runs through the same class."""
    import tensorflow as tf

    weights = np.random.default_rng(0).normal(0, 0.5, (1, 1, 3, 3)).astype(np.float32)
    fn = tf.function(lambda x: tf.nn.conv2d(x, weights, 1, "SAME"), input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([nchw(i).transpose(0, 2, 3, 1)] for i in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / "int8.tflite"
    path.write_bytes(converter.convert())
    runtime = LiteRTCpuRuntime(path)
    assert np.dtype(runtime.input_details["dtype"]) == np.int8
    image = nchw(42)
    expected = np.einsum("bchw,cd->bdhw", image, weights[0, 0])
    out = runtime(image)
    assert out.dtype == np.float32
    assert np.abs(out - expected).max() < 0.05 * np.abs(expected).max()  # int8 steps, not garbage
    assert runtime.describe().precision == "int8 (quantized)"


def test_runtime_for_picks_by_suffix_and_accelerator(tmp_path):
    path = add_model(tmp_path / "add.tflite")
    assert isinstance(runtime_for(path), LiteRTCpuRuntime)
    with pytest.raises(ValueError, match="accelerator=gpu runs .tflite"):
        runtime_for(tmp_path / "model.onnx", accelerator="gpu")
    with pytest.raises(ValueError, match="accelerator='tpu'"):
        runtime_for(path, accelerator="tpu")
    with pytest.raises(ValueError, match="unknown model file type"):
        runtime_for(tmp_path / "model.pt")


# ----------------------------------------------------------------------------- LiteRT's log
def test_adapter_and_refused_ops_are_read_from_litert_log():
    log = ("I0000 00:00:1 environment.cc:532] Selected adapter: llvmpipe (LLVM 15.0.6, 256 bits), arch=software, "
           "vendor=mesa, backend=Vulkan, adapterType=CPU / Software\n"
           "ERROR: Following operations are not supported by GPU delegate:\n"
           "GATHER_ND: Operation is not supported.\nNo operations will run on the GPU\n")
    adapter = parse_adapter(log)
    assert adapter.name == "llvmpipe (LLVM 15.0.6, 256 bits)" and adapter.vendor == "mesa"
    assert adapter.backend == "Vulkan" and adapter.software
    assert "software adapter" in str(adapter)
    hardware = parse_adapter("Selected adapter: NVIDIA H200, arch=hopper, vendor=nvidia, backend=Vulkan, adapterType=Discrete GPU")
    assert not hardware.software and "hardware adapter (Discrete GPU)" in str(hardware)
    assert unsupported_ops(log) == ["GATHER_ND: Operation is not supported."]
    assert parse_adapter("nothing here") is None


def test_no_vulkan_adapter_fails_when_built_and_says_how_to_get_one():
    """With the Vulkan loader pointed at no driver, the probe exits 1 naming the command that provides one."""
    result = subprocess.run([sys.executable, "-m", "bokeh.runtimes", "gpu"], capture_output=True, text=True,
                            env={**os.environ, **NO_VULKAN}, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no Vulkan adapter" in result.stderr and ".ci/vulkan-adapter" in result.stderr
    assert "mesa-vulkan-drivers" in result.stderr


# ----------------------------------------------------------------------------- GPU accelerator
def test_gpu_runs_a_model_and_names_its_adapter(vulkan_adapter, tmp_path):
    runtime = LiteRTGpuRuntime.from_file(add_model(tmp_path / "add.tflite", 8, 16))
    assert runtime.fully_accelerated and runtime.input_size == (8, 16)
    image = nchw(0, 8, 16)
    np.testing.assert_allclose(runtime(image), 2 * image, atol=2e-3)  # fp16 arithmetic
    description = runtime.describe()
    assert description.device == str(vulkan_adapter) and description.software_adapter == vulkan_adapter.software
    assert description.precision.startswith("float16") and description.extra["fully_accelerated"] is True
    exact = LiteRTGpuRuntime(tmp_path / "add.tflite", enforce_f32=True)
    np.testing.assert_allclose(exact(image), 2 * image, atol=1e-6)
    assert exact.describe().precision == "float32 (enforce_f32)"


def test_gpu_refuses_a_model_with_an_op_it_does_not_run(vulkan_adapter, tmp_path):
    """GATHER_ND is not a GPU op: compiled for the GPU alone it is refused by name; with the CPU as
    fallback it compiles but comes out not fully accelerated (and still computes the right pixels)."""
    path = gather_nd_model(tmp_path / "gather_nd.tflite")
    with pytest.raises(NotFullyAccelerated, match="GATHER_ND") as refused:
        LiteRTGpuRuntime(path)
    assert any(line.startswith("GATHER_ND") for line in refused.value.unsupported)
    mixed = LiteRTGpuRuntime(path, cpu_fallback=True)
    assert mixed.fully_accelerated is False and mixed.describe().extra["fully_accelerated"] is False
    image = np.random.default_rng(0).random((1, 8, 8, 3), dtype=np.float32)
    np.testing.assert_array_equal(mixed.run_nhwc(image), image[0, [1, 3], [2, 4]])


def test_gpu_without_an_adapter_raises_gpu_adapter_missing(tmp_path):
    """In-process, as the renderer meets it: a subprocess with no Vulkan driver builds the runtime."""
    path = add_model(tmp_path / "add.tflite")
    code = ("import sys; from bokeh.runtimes import LiteRTGpuRuntime, GpuAdapterMissing\n"
            f"try:\n    LiteRTGpuRuntime({str(path)!r})\n"
            "except GpuAdapterMissing as e:\n    print('MISSING', e); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, **NO_VULKAN}, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    assert "MISSING" in result.stdout and "mesa-vulkan-drivers" in result.stdout


def test_runtime_unavailable_is_one_family():
    assert issubclass(GpuAdapterMissing, RuntimeUnavailable)
