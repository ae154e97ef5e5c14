"""An ``.onnx`` model on ONNX Runtime's CPU execution provider."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bokeh.cpu import cpu_name
from bokeh.runtimes.base import (
    Description, Runtime, RuntimeUnavailable, contract_from_names, library_version, model_file_error, outputs_from_names,
    static_size,
)


class OnnxRuntime(Runtime):
    """ONNX Runtime CPU session with a fixed thread count; the model's inputs and outputs by name.

    Args:
        path: an ``.onnx`` file with an NCHW float32 image input and, for a model with controls, the
            inputs ``focus`` ``(1, 2)`` and ``aperture`` ``(1, 1)`` (``python -m bokeh.export`` writes
            them; :attr:`contract` is read from the input names); one image output, or for a model
            with a matte ``bokeh``, ``matte`` and ``background`` (:attr:`outputs`, read from the
            output names).
        threads: intra-op threads; 0 = one per core (``os.cpu_count()``).

    Raises:
        RuntimeUnavailable: onnxruntime is not installed.
        ModelFileError: the file is truncated, not ONNX, or unreadable.

    Shape:
        :meth:`run`: ``(B, 3, H, W)`` float32 -> the same; ``(H, W)`` the export size where static.
    """

    kind = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as error:
            raise RuntimeUnavailable(f"ONNX Runtime is not installed ({error}); `make venv` installs the pinned version") from error
        self.path = Path(path)
        self.threads = threads if threads > 0 else (os.cpu_count() or 1)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001  InvalidProtobuf, Fail, ...: onnxruntime's own types
            raise model_file_error(self.path, "ONNX", error) from error
        inputs = self.session.get_inputs()
        self.contract = contract_from_names([i.name for i in inputs], self.path)
        first = next(i for i in inputs if i.name == "image") if len(inputs) > 1 else inputs[0]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.outputs = outputs_from_names(self.output_names, self.path)
        self.input_name = first.name
        self.input_size = static_size(first.shape[2:])  # (1, 3, H, W)

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0) -> OnnxRuntime:
        return cls(path, threads)

    def run_one(self, image: np.ndarray, controls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.session.run(self.output_names, {self.input_name: image, **controls})
        return {self.outputs.name_of(name): result for name, result in zip(self.output_names, results)}

    def describe(self) -> Description:
        return Description(
            runtime=f"ONNX Runtime {library_version('onnxruntime')} (CPUExecutionProvider)",
            device=cpu_name(), precision="float32", threads=self.threads, extra={"file": self.path.name},
        )
