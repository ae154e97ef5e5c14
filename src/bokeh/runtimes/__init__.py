"""Every way to run the network, behind one small interface (:class:`~bokeh.runtimes.base.Runtime`).

==================  ===========================================  ==============  ===================
class               runs                                         file            device
==================  ===========================================  ==============  ===================
TorchRuntime        torch, the fast path of bokeh.inference      ``.ckpt``       CPU
OnnxRuntime         ONNX Runtime, CPUExecutionProvider           ``.onnx``       CPU
LiteRTCpuRuntime    LiteRT interpreter, XNNPACK                  ``.tflite``     CPU
LiteRTGpuRuntime    LiteRT CompiledModel, GPU accelerator alone  ``.tflite``     Vulkan adapter
==================  ===========================================  ==============  ===================

Each is built from a file and options (``from_file``), runs an NCHW float32 batch in the model's
value range (``run`` or calling it) and describes itself (``describe()``: library, device, precision,
threads). A missing library or device fails when the object is built, with
:class:`RuntimeUnavailable` naming the command that provides it. The export checks
(:mod:`bokeh.export`) and the renderer (:mod:`bokeh.render`) both use these classes.

A model that is not a Glass-Net runs by tensor name through :class:`~bokeh.runtimes.tflite_tensors.TfliteTensors`
(LiteRT's interpreter or GPU accelerator), which leaves the Glass-Net runtimes' checks as strict as they
are: the subject segmenter (:mod:`bokeh.runtimes.segmenter`, MediaPipe's selfie segmenter).

``python -m bokeh.runtimes gpu`` prints the adapter LiteRT's GPU accelerator selects (exit 1 with
the way to get one when there is none).
"""

from __future__ import annotations

from pathlib import Path

from bokeh.model_files import lfs_pointer_reason
from bokeh.runtimes.base import Description, ModelFileError, Runtime, RuntimeUnavailable
from bokeh.runtimes.litert_cpu import LiteRTCpuRuntime
from bokeh.runtimes.litert_gpu import (
    ADAPTER_HINT, Adapter, GpuAdapterMissing, GpuRunTimedOut, LiteRTGpuRuntime, NotFullyAccelerated, gpu_adapter,
)
from bokeh.runtimes.onnx_runtime import OnnxRuntime
from bokeh.runtimes.torch_cpu import TorchRuntime

ACCELERATORS = ("cpu", "gpu")


def runtime_for(path: str | Path, accelerator: str = "cpu", threads: int = 0, precision: str = "auto") -> Runtime:
    """The runtime for the model file at ``path``, by its suffix and ``accelerator``.

    ``.ckpt`` -> :class:`TorchRuntime` (in ``precision``: ``auto`` is bf16 where the CPU computes it
    natively, else fp32), ``.onnx`` -> :class:`OnnxRuntime`, ``.tflite`` -> :class:`LiteRTCpuRuntime`
    (``accelerator="cpu"``) or :class:`LiteRTGpuRuntime` (``"gpu"``, GPU alone); exported models
    compute in the precision they were exported in.

    Raises:
        ValueError: an unknown suffix or accelerator, or ``accelerator="gpu"`` for a file other than ``.tflite``.
        RuntimeUnavailable: the runtime or device is missing (:class:`GpuAdapterMissing` for no adapter).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator={accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    if accelerator == "gpu" and suffix != ".tflite":
        raise ValueError(f"accelerator=gpu runs .tflite models (LiteRT's GPU accelerator); {path.name} is not one: "
                         f"export it with `make tflite CKPT=...`, or use accelerator=cpu")
    if suffix == ".ckpt":
        return TorchRuntime.from_file(path, threads=threads, precision=precision)
    pointer = lfs_pointer_reason(path) if suffix in (".onnx", ".tflite") else None
    if pointer:
        raise ModelFileError(pointer)
    if suffix == ".onnx":
        return OnnxRuntime.from_file(path, threads=threads)
    if suffix == ".tflite":
        return LiteRTGpuRuntime.from_file(path) if accelerator == "gpu" else LiteRTCpuRuntime.from_file(path, threads=threads)
    raise ValueError(f"{path}: unknown model file type {suffix or '(none)'!r}; expected .ckpt, .onnx or .tflite")


__all__ = [
    "ACCELERATORS",
    "ADAPTER_HINT",
    "Adapter",
    "Description",
    "GpuAdapterMissing",
    "GpuRunTimedOut",
    "LiteRTCpuRuntime",
    "LiteRTGpuRuntime",
    "NotFullyAccelerated",
    "OnnxRuntime",
    "Runtime",
    "RuntimeUnavailable",
    "ModelFileError",
    "TorchRuntime",
    "gpu_adapter",
    "runtime_for",
]
