"""Any float32 ``.tflite`` model run by tensor name, on LiteRT's CPU interpreter or its GPU accelerator.

The Glass-Net runtimes (:mod:`bokeh.runtimes.litert_cpu`, :mod:`bokeh.runtimes.litert_gpu`) read a
model's input contract (``image``, ``focus``, ``aperture``) and output contract (``bokeh``, ``matte``,
``background``) from its names and refuse any other file. Models that are not a Glass-Net (MediaPipe's
selfie segmenter: ``input_1`` -> ``activation_10``) run through :class:`TfliteTensors` instead: it
checks only what LiteRT itself needs (float32 tensors, the shapes the model declares), so a Glass-Net's
checks stay as strict as they are.

On the GPU the model is compiled for the accelerator alone (as :class:`~bokeh.runtimes.LiteRTGpuRuntime`):
a model with an op it does not run raises :class:`~bokeh.runtimes.NotFullyAccelerated`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bokeh.cpu import cpu_name
from bokeh.runtimes.base import Description, RuntimeUnavailable, library_version, model_file_error
from bokeh.runtimes.litert_gpu import (
    Adapter, LiteRTGpuRuntime, NotFullyAccelerated, accelerator_library, compile_error, native_stderr, parse_adapter,
    unsupported_ops,
)

DEVICES = ("cpu", "gpu")


class TfliteTensors:
    """A ``.tflite`` file run through its first signature (or its inputs and outputs when it has none),
    fed and read by tensor name.

    Args:
        path: the model: float32 inputs and outputs, static shapes, batch as the model declares it.
        device: ``cpu`` (LiteRT's interpreter, XNNPACK) or ``gpu`` (LiteRT's ``CompiledModel`` on its
            GPU accelerator alone; fp16 arithmetic unless ``enforce_f32``).
        threads: CPU threads for the interpreter (0: LiteRT's default).

    Attributes:
        input_shapes, output_shapes: ``{name: shape}`` in the model's order (NHWC for images).
        fully_accelerated: ``gpu``: True (else it raised); ``cpu``: None.

    Raises:
        ValueError: an unknown ``device``, or a tensor that is not float32.
        FileNotFoundError: no file at ``path``.
        RuntimeUnavailable: LiteRT, or (``gpu``) its accelerator or a Vulkan adapter, is missing.
        ModelFileError: (``cpu``) a file LiteRT cannot load.
        NotFullyAccelerated: (``gpu``) ops the accelerator does not run, named.
    """

    def __init__(self, path: str | Path, device: str = "cpu", threads: int = 0, enforce_f32: bool = False) -> None:
        if device not in DEVICES:
            raise ValueError(f"device={device!r}: expected one of {', '.join(DEVICES)}")
        self.path, self.device, self.threads, self.enforce_f32 = Path(path), device, threads, enforce_f32
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        self.adapter: Adapter | None = None
        self.fully_accelerated: bool | None = None
        details = self._open_gpu() if device == "gpu" else self._open_cpu()
        inputs, outputs = details
        self.input_shapes = {name: tuple(int(d) for d in detail["shape"]) for name, detail in inputs.items()}
        self.output_shapes = {name: tuple(int(d) for d in detail["shape"]) for name, detail in outputs.items()}
        for kind, tensors in (("input", inputs), ("output", outputs)):
            for name, detail in tensors.items():
                if np.dtype(detail["dtype"]) != np.float32:
                    raise ValueError(f"{self.path}: {kind} {name!r} is {np.dtype(detail['dtype'])}; "
                                     f"TfliteTensors runs float32 models only")

    def _open_cpu(self) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise RuntimeUnavailable(f"LiteRT is not installed ({error}); `make venv` installs ai-edge-litert") from error
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=self.threads if self.threads > 0 else None)
        except Exception as error:  # noqa: BLE001  ValueError, RuntimeError: LiteRT's words for a bad file
            raise model_file_error(self.path, "TFLite", error) from error
        if self.interpreter.get_signature_list():
            self.runner = self.interpreter.get_signature_runner()
            return self.runner.get_input_details(), self.runner.get_output_details()
        self.runner = None
        self.interpreter.allocate_tensors()
        return ({d["name"]: d for d in self.interpreter.get_input_details()},
                {d["name"]: d for d in self.interpreter.get_output_details()})

    def _open_gpu(self) -> tuple[dict[str, Any], dict[str, Any]]:
        accelerator_library()
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import GpuOptions, Options

        options = Options(HardwareAccelerator.GPU, gpu_options=GpuOptions(enforce_f32=self.enforce_f32))
        with native_stderr() as captured:
            try:
                self.model = CompiledModel.from_file(str(self.path), options=options)
                error = None
            except RuntimeError as raised:
                error = raised
        log = captured[0]
        adapter = parse_adapter(log)
        if error is not None:
            raise compile_error(self.path, error, log, adapter) from error
        self.adapter = adapter or LiteRTGpuRuntime._last_adapter  # LiteRT logs the adapter once per environment
        LiteRTGpuRuntime._last_adapter = self.adapter
        self.fully_accelerated = self.model.is_fully_accelerated()
        if not self.fully_accelerated:
            raise NotFullyAccelerated(self.path, unsupported_ops(log))
        signatures = self.model.get_signature_list()
        key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
        self.signature_index = self.model.get_signature_index(key)
        self.input_buffers = self.model.create_input_buffers(self.signature_index)
        self.output_buffers = self.model.create_output_buffers(self.signature_index)
        inputs, outputs = self.model.get_input_tensor_details(key), self.model.get_output_tensor_details(key)
        # the buffers follow the signature's order
        return ({name: inputs[name] for name in signatures[key]["inputs"]},
                {name: outputs[name] for name in signatures[key]["outputs"]})

    @property
    def input_names(self) -> list[str]:
        return list(self.input_shapes)

    @property
    def output_names(self) -> list[str]:
        return list(self.output_shapes)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output, by name, as float32 arrays of :attr:`output_shapes` (copies, safe to keep).

        Args:
            feeds: one array per input name, of exactly :attr:`input_shapes`.

        Raises:
            ValueError: a missing or unknown input, or an array of another shape.
        """
        if set(feeds) != set(self.input_shapes):
            raise ValueError(f"{self.path.name}: inputs {sorted(feeds)} given, the model takes {self.input_names}")
        arrays = {}
        for name, shape in self.input_shapes.items():
            array = np.ascontiguousarray(feeds[name], np.float32)
            if array.shape != shape:
                raise ValueError(f"{self.path.name}: input {name!r} of shape {array.shape}, the model takes {shape}")
            arrays[name] = array
        if self.device == "gpu":
            for buffer, name in zip(self.input_buffers, self.input_names):
                buffer.write(arrays[name])
            self.model.run_by_index(self.signature_index, self.input_buffers, self.output_buffers)
            return {name: buffer.read(int(np.prod(shape)), np.float32).reshape(shape).copy()
                    for buffer, (name, shape) in zip(self.output_buffers, self.output_shapes.items())}
        if self.runner is not None:
            return {name: np.array(value, np.float32) for name, value in self.runner(**arrays).items()}
        for detail in self.interpreter.get_input_details():
            self.interpreter.set_tensor(detail["index"], arrays[detail["name"]])
        self.interpreter.invoke()
        return {detail["name"]: np.array(self.interpreter.get_tensor(detail["index"]), np.float32)
                for detail in self.interpreter.get_output_details()}

    def close(self) -> None:
        """Release the GPU buffers and the compiled model (nothing to do on the CPU); idempotent."""
        for buffer in getattr(self, "input_buffers", []) + getattr(self, "output_buffers", []):
            if buffer.capsule is not None:
                buffer.destroy()
        self.input_buffers, self.output_buffers = [], []
        if getattr(self, "model", None) is not None:
            self.model.close()
            self.model = None

    def describe(self) -> Description:
        """Library, device and precision of this run (as the Glass-Net runtimes describe themselves)."""
        if self.device == "gpu":
            return Description(
                runtime=f"LiteRT {library_version('ai-edge-litert')} GPU accelerator (ML Drift, WebGPU)",
                device=str(self.adapter) if self.adapter else "unknown adapter (LiteRT logged none)",
                precision="float32 (enforce_f32)" if self.enforce_f32 else "float16 arithmetic (the GPU default)",
                software_adapter=self.adapter.software if self.adapter else None,
                extra={"file": self.path.name, "fully_accelerated": self.fully_accelerated})
        return Description(runtime=f"LiteRT {library_version('ai-edge-litert')} interpreter (XNNPACK)", device=cpu_name(),
                           precision="float32", threads=self.threads or None, extra={"file": self.path.name})
