"""A ``.tflite`` model on LiteRT's interpreter on the CPU (XNNPACK, LiteRT's default CPU delegate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bokeh.cpu import cpu_name
from bokeh.runtimes.base import (
    Description, ModelFileError, Runtime, RuntimeUnavailable, contract_from_names, control_inputs, library_version, model_file_error,
    outputs_from_names, static_size,
)


def quantize(values: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """Float values -> the integer type of a quantized tensor (``real = scale * (q - zero_point)``);
    ``values`` unchanged (as float32) for a float tensor."""
    dtype = np.dtype(details["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return np.ascontiguousarray(values, dtype)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, details: dict[str, Any]) -> np.ndarray:
    """The inverse of :func:`quantize`: a quantized tensor's values as float32."""
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32, copy=True)  # a copy: the runner's outputs alias its memory
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)


class LiteRTCpuRuntime(Runtime):
    """A ``.tflite`` file run by LiteRT's interpreter through its first signature, on the CPU.

    Float32, float16-weight and quantized (int8) models run unchanged: integer inputs and outputs are
    quantized and dequantized here with the tensors' own scale and zero point. The model takes and
    returns NHWC; :meth:`run` transposes from and to NCHW, :meth:`run_nhwc` does not.

    Args:
        path: the ``.tflite`` file; an image input (and, for a model with controls, the inputs
            ``focus`` and ``aperture``: :attr:`contract` is read from the signature's input names),
            one image output (or, for a model with a matte, ``bokeh``, ``matte`` and ``background``:
            :attr:`outputs`, from the signature's output names), batch 1, static size; run through
            its signature, or its first input and output if it has none.
        threads: XNNPACK threads; 0 = LiteRT's default.

    Raises:
        RuntimeUnavailable: ai-edge-litert is not installed.

    Shape:
        :meth:`run`: ``(B, 3, H, W)`` float32 -> the same, ``(H, W) ==`` :attr:`input_size`.
    """

    kind = "litert_cpu"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise RuntimeUnavailable(f"LiteRT is not installed ({error}); `make venv` installs ai-edge-litert") from error
        self.path, self.threads = Path(path), threads
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads if threads > 0 else None)
        except Exception as error:  # noqa: BLE001  ValueError, RuntimeError: LiteRT's words for a bad file
            raise model_file_error(self.path, "TFLite", error) from error
        self.control_details: dict[str, dict[str, Any]] = {}
        if self.interpreter.get_signature_list():
            self.runner = self.interpreter.get_signature_runner()
            inputs = self.runner.get_input_details()
            self.contract = contract_from_names(list(inputs), self.path)
            self.input_name = "image" if len(inputs) > 1 else next(iter(inputs))
            self.input_details = inputs[self.input_name]
            self.control_details = {name: inputs[name] for name in self.contract.controls}
            self.output_details_by_name = self.runner.get_output_details()
            self.outputs = outputs_from_names(list(self.output_details_by_name), self.path)
        else:  # a model converted without a signature: its first input and output
            self.runner = None
            self.interpreter.allocate_tensors()
            if len(self.interpreter.get_input_details()) > 1:
                raise ModelFileError(f"{self.path}: a model with several inputs but no signature naming them; "
                                     f"export it again with python -m bokeh.export")
            self.input_details = self.interpreter.get_input_details()[0]
            self.output_details_by_name = {"": self.interpreter.get_output_details()[0]}
        # the image output (the file's only output, or the one named bokeh)
        self.output_details = next(d for name, d in self.output_details_by_name.items() if self.outputs.name_of(name) == "image")
        self.input_shape = tuple(int(d) for d in self.input_details["shape"])  # (1, H, W, 3)
        self.output_shape = tuple(int(d) for d in self.output_details["shape"])
        self.input_size = static_size(self.input_shape[1:3])

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> LiteRTCpuRuntime:
        return cls(path, threads)

    def run_nhwc_layers(self, image_nhwc: np.ndarray, controls: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """One ``(1, H, W, 3)`` float image -> every output by :attr:`outputs` name, float32 NHWC as
        the model gives them (``image`` ``(1, H, W, 3)``; ``matte`` ``(1, H, W, 1)``, ``background``).

        ``controls``: the model's control inputs, complete and checked (:func:`~bokeh.runtimes.base.control_inputs`);
        None: the defaults (auto focus, f/1.8, no subject) for a model that takes controls. A
        ``subject`` matte ``(1, 1, H, W)`` is fed as the model's ``(1, H, W, 1)`` (one channel: the same values).
        """
        image = quantize(image_nhwc, self.input_details)
        if self.runner is None:
            self.interpreter.set_tensor(self.input_details["index"], image)
            self.interpreter.invoke()
            return {"image": dequantize(self.interpreter.get_tensor(self.output_details["index"]), self.output_details)}
        controls = control_inputs(self.contract, 1, size=image_nhwc.shape[1:3]) if controls is None else controls
        feeds = {name: quantize(np.reshape(value, self.control_details[name]["shape"]), self.control_details[name])
                 for name, value in controls.items()}
        out = self.runner(**{self.input_name: image}, **feeds)
        return {self.outputs.name_of(name): dequantize(out[name], details) for name, details in self.output_details_by_name.items()}

    def run_nhwc(self, image_nhwc: np.ndarray, controls: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """One ``(1, H, W, 3)`` float image -> the image output ``(1, H, W, 3)`` float32 (NHWC, as the model)."""
        return self.run_nhwc_layers(image_nhwc, controls)["image"]

    def run_one(self, image: np.ndarray, controls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {name: value.transpose(0, 3, 1, 2) for name, value in self.run_nhwc_layers(image.transpose(0, 2, 3, 1), controls).items()}

    def precision(self) -> str:
        """``float32``, ``fp16 weights, float32 arithmetic`` or ``int8 (quantized)``, from the tensor types."""
        types = {np.dtype(t["dtype"]) for t in self.interpreter.get_tensor_details()}
        if np.dtype(np.int8) in types or np.dtype(np.uint8) in types:
            return "int8 (quantized)"
        if np.dtype(np.float16) in types:
            return "fp16 weights, float32 arithmetic"
        return "float32"

    def describe(self) -> Description:
        return Description(
            runtime=f"LiteRT {library_version('ai-edge-litert')} interpreter (XNNPACK)",
            device=cpu_name(), precision=self.precision(), threads=self.threads or None,
            extra={"file": self.path.name},
        )
