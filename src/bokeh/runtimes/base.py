"""What every runtime has in common: the interface, its description and its errors."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class RuntimeUnavailable(RuntimeError):
    """A runtime (library) or device this machine lacks; the message names the command that provides it."""


class ModelFileError(ValueError):
    """A model file that its runtime cannot load (truncated, not that format, unreadable): one sentence."""


def model_file_error(path: str | Path, kind: str, error: BaseException) -> ModelFileError:
    """The :class:`ModelFileError` for a runtime that refused ``path`` (a ``kind`` model) with ``error``."""
    if isinstance(error, PermissionError):
        return ModelFileError(f"{path}: cannot be read: permission denied; make it readable (chmod u+r)")
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    return ModelFileError(f"{path} is not a loadable {kind} model ({type(error).__name__}: {first}); it may be truncated "
                          f"or not a {kind} file: copy it again, or export it again with python -m bokeh.export")


@dataclass(frozen=True)
class Description:
    """What a runtime is and where it runs, for reports and benchmark headers.

    Attributes:
        runtime: the library and its version, e.g. ``"ONNX Runtime 1.23.0 (CPUExecutionProvider)"``.
        device: what computes: the CPU's model name, or the GPU adapter (vendor, name, backend).
        precision: the arithmetic, e.g. ``"float32"``, ``"fp16 (GPU default)"``, ``"int8"``.
        threads: CPU threads the runtime was given (None: not a CPU runtime).
        software_adapter: True when ``device`` is a GPU emulated on the CPU (Mesa's lavapipe): its
            timings say nothing about a real GPU. None for CPU runtimes.
        extra: anything else worth reporting (file, fully accelerated, ...).
    """

    runtime: str
    device: str
    precision: str
    threads: int | None = None
    software_adapter: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Runtime(abc.ABC):
    """One way to run an exported or trained Glass-Net: build from a file, run, describe.

    Every runtime maps an NCHW float32 batch to the output batch of the same shape, in the value
    range the model was built for ([-1, 1] for checkpoints and ``export.value_range=signed``,
    [0, 255] for ``pixel`` exports). Building fails with :class:`RuntimeUnavailable` (naming the
    command that provides it) when the library or device is missing, so a runtime that exists runs.

    Subclasses set :attr:`kind` and implement :meth:`from_file`, :meth:`run_one` (or :meth:`run`)
    and :meth:`describe`; :attr:`input_size` is the static ``(H, W)`` the model takes, or None.
    """

    kind: ClassVar[str]  # short name in reports: "torch", "onnxruntime", "litert_cpu", "litert_gpu"
    input_size: tuple[int, int] | None = None

    @classmethod
    @abc.abstractmethod
    def from_file(cls, path: str | Path, **options: Any) -> Runtime:
        """Build the runtime for the model file at ``path`` (options: see each subclass)."""

    @abc.abstractmethod
    def describe(self) -> Description:
        """Library, device, precision and threads of this runtime."""

    def run_one(self, image: np.ndarray) -> np.ndarray:
        """One ``(1, 3, H, W)`` image -> ``(1, 3, H, W)``; runtimes with a batch-1 model implement this."""
        raise NotImplementedError

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run ``batch`` through the model.

        Shape:
            ``(B, 3, H, W)`` float32 (NCHW) in the model's value range -> the same shape and range;
            ``(H, W)`` must equal :attr:`input_size` where that is set.

        Raises:
            ValueError: a batch that is not 4-D with 3 channels, or of the wrong static size.
        """
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"{self.kind}: expected an NCHW batch (B, 3, H, W), got shape {batch.shape}")
        if self.input_size is not None and tuple(batch.shape[2:]) != self.input_size:
            raise ValueError(f"{self.kind}: the model takes {self.input_size[0]} x {self.input_size[1]} only, "
                             f"got {batch.shape[2]} x {batch.shape[3]}")
        batch = np.ascontiguousarray(batch, np.float32)
        return np.concatenate([self.run_one(batch[i:i + 1]) for i in range(batch.shape[0])])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.run(batch)


def library_version(distribution: str) -> str:
    """The installed version of ``distribution`` (pip name), or ``"?"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


def static_size(dims: Any) -> tuple[int, int] | None:
    """``(H, W)`` from a model's two spatial dims, or None if either is dynamic (a name, -1 or 0)."""
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        return None
    return int(dims[0]), int(dims[1])
