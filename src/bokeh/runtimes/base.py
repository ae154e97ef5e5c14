"""What every runtime has in common: the interface, its description and its errors."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bokeh.models.controls import CONTROL_NAMES, NO_FOCUS, REFERENCE_F_NUMBER, ControlError, InputContract, OutputContract


class RuntimeUnavailable(RuntimeError):
    """A runtime (library) or device this machine lacks; the message names the command that provides it."""


class ModelFileError(ValueError):
    """A model file that its runtime cannot load (truncated, not that format, unreadable): one sentence."""


def model_file_error(path: str | Path, kind: str, error: BaseException) -> ModelFileError:
    """The :class:`ModelFileError` for a runtime that refused ``path`` (a ``kind`` model) with ``error``."""
    if isinstance(error, PermissionError):
        return ModelFileError(f"{path}: cannot be read: permission denied; make it readable (chmod u+r)")
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    article = "an" if kind[:1].upper() in "AEIOU" else "a"  # an ONNX file, a TFLite file
    return ModelFileError(f"{path} is not a loadable {kind} model ({type(error).__name__}: {first}); it may be truncated "
                          f"or not {article} {kind} file: copy it again, or export it again with python -m bokeh.export")


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


def contract_from_names(names: list[str] | tuple[str, ...], path: str | Path) -> InputContract:
    """The :class:`InputContract` of an exported model from its input names (ONNX or TFLite).

    One input, whatever its name, is an image-only model (files exported before the controls);
    several must be ``image`` and the controls of :data:`~bokeh.models.controls.CONTROL_NAMES`.

    Raises:
        ModelFileError: several inputs with a name that is not ``image``, ``focus``, ``aperture`` or ``subject``.
    """
    names = list(names)
    if len(names) <= 1:
        return InputContract()
    unknown = [name for name in names if name not in ("image", *CONTROL_NAMES)]
    if unknown or "image" not in names:
        raise ModelFileError(f"{path}: inputs {names} are not a Glass-Net's (image, and optionally focus, "
                             f"aperture and subject); export it again with python -m bokeh.export")
    return InputContract(focus="focus" in names, aperture="aperture" in names, subject="subject" in names)


def outputs_from_names(names: list[str] | tuple[str, ...], path: str | Path) -> OutputContract:
    """The :class:`~bokeh.models.controls.OutputContract` of an exported model from its output names
    (ONNX or TFLite): one output is an image-only model, three are ``bokeh`` (the image), ``matte``
    and ``background`` (:meth:`OutputContract.from_names`).

    Raises:
        ModelFileError: several outputs that are not those three.
    """
    try:
        return OutputContract.from_names(names)
    except ValueError as error:
        raise ModelFileError(f"{path}: {error}; export it again with python -m bokeh.export") from None


def _rows(value, batch: int, width: int, name: str) -> np.ndarray | None:
    """``value`` as ``(batch, width)`` float64 rows: one row for the whole batch, or one per sample."""
    if value is None:
        return None
    try:
        rows = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ControlError(f"{name}={value!r} is not a number" + (" pair" if width == 2 else "")) from None
    if rows.ndim <= 1 and rows.size == width:
        return np.broadcast_to(rows.reshape(1, width), (batch, width))
    if rows.shape == (batch, width):
        return rows
    raise ControlError(f"{name} must be {'(x, y)' if width == 2 else 'one f-number'} or one per image, shape "
                       f"({batch}, {width}); got shape {rows.shape}")


def subject_rows(subject, batch: int, size: tuple[int, int] | None) -> np.ndarray:
    """A subject matte as ``(batch, 1, H, W)`` float32 in [0, 1]: all zeros (no subject prior) for
    ``None``; one ``(H, W)`` / ``(1, H, W)`` / ``(1, 1, H, W)`` matte for the whole batch, or one per image.

    Raises:
        ControlError: a matte that is not the model input's size ``size``, or values outside [0, 1].
    """
    if size is None:
        raise ControlError("the subject input needs the image's size: pass the image batch with it")
    height, width = size
    if subject is None:
        return np.zeros((batch, 1, height, width), np.float32)
    matte = np.asarray(subject, dtype=np.float32)
    if matte.ndim == 2:
        matte = matte[None, None]
    elif matte.ndim == 3:
        matte = matte[:, None] if matte.shape[0] == batch and batch > 1 else matte[None]
    if matte.ndim != 4 or matte.shape[1] != 1 or matte.shape[0] not in (1, batch) or matte.shape[2:] != (height, width):
        raise ControlError(f"subject must be a matte of the model input's size {height} x {width}, one for the batch or one "
                           f"per image, shape ({batch}, 1, {height}, {width}); got shape {np.shape(subject)}")
    if not (np.isfinite(matte).all() and matte.min() >= 0.0 and matte.max() <= 1.0):
        raise ControlError("subject must be a matte with values in [0, 1] (1 = subject)")
    return np.array(np.broadcast_to(matte, (batch, 1, height, width)), np.float32)  # a writable copy


def control_inputs(contract: InputContract, batch: int, focus=None, aperture=None, subject=None,
                   size: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """The control arrays a model with ``contract`` takes, checked, defaults filled in.

    The one place where every runtime turns user controls into model inputs.

    Args:
        focus: ``None`` (auto for every image), an ``(x, y)`` point in fractions of the model input's
            width and height (for the whole batch), or ``(B, 2)`` points, where a row equal to
            :data:`~bokeh.models.controls.NO_FOCUS` means auto for that image.
        aperture: ``None`` (f/1.8), one f-number, or ``(B,)`` / ``(B, 1)`` f-numbers.
        subject: ``None`` (all zeros: no subject prior), or a matte in [0, 1] of the model input's
            ``size`` ``(H, W)`` (:func:`subject_rows`).

    Returns:
        ``{"focus": (B, 2), "aperture": (B, 1), "subject": (B, 1, H, W)}`` float32, only the names
        the contract takes.

    Raises:
        ControlError: a control the model does not take, a point outside [0, 1], an f-number that
            is not usable (:meth:`InputContract.check`), or arrays of the wrong shape.
    """
    contract.check_taken(*(name for name, value in (("focus", focus), ("aperture", aperture), ("subject", subject)) if value is not None))
    focus_rows = _rows(focus, batch, 2, "focus")
    if aperture is not None and np.ndim(aperture) == 1 and np.size(aperture) == batch and batch > 1:
        aperture = np.reshape(aperture, (batch, 1))
    aperture_rows = _rows(aperture, batch, 1, "aperture")
    inputs = {}
    if contract.focus:
        points = np.tile(np.asarray(NO_FOCUS), (batch, 1)) if focus_rows is None else np.array(focus_rows)
        for i, point in enumerate(points):
            if tuple(point) != NO_FOCUS:
                points[i] = contract.check(focus=tuple(point))[0]
        inputs["focus"] = points.astype(np.float32)
    if contract.aperture:
        numbers = np.full((batch, 1), REFERENCE_F_NUMBER) if aperture_rows is None else np.array(aperture_rows)
        for i, (number,) in enumerate(numbers):
            numbers[i, 0] = contract.check(aperture=number)[1]
        inputs["aperture"] = numbers.astype(np.float32)
    if contract.subject:
        inputs["subject"] = subject_rows(subject, batch, size)
    return inputs


class Runtime(abc.ABC):
    """One way to run an exported or trained Glass-Net: build from a file, run, describe.

    Every runtime maps an NCHW float32 batch to the output batch of the same shape, in the value
    range the model was built for ([-1, 1] for checkpoints and ``export.value_range=signed``,
    [0, 255] for ``pixel`` exports), with the controls its model takes (:attr:`contract`: read from
    the generator for torch, from the file's input names for ONNX and TFLite). :meth:`run` gives the
    image; :meth:`run_layers` every output the model has (:attr:`outputs`: read from the generator
    for torch, from the file's output names for ONNX and TFLite): ``image``, and for a model with a
    matte ``matte`` (in [0, 1] whatever the value range) and ``background``. Building fails with
    :class:`RuntimeUnavailable` (naming the command that provides it) when the library or device is
    missing, so a runtime that exists runs.

    Subclasses set :attr:`kind`, :attr:`contract` and :attr:`outputs`, and implement :meth:`from_file`,
    :meth:`run_one` (or :meth:`run_layers`) and :meth:`describe`; :attr:`input_size` is the static
    ``(H, W)`` the model takes, or None. Controls reach :meth:`run_one` checked and complete
    (:func:`control_inputs`): no runtime interprets them itself.
    """

    kind: ClassVar[str]  # short name in reports: "torch", "onnxruntime", "litert_cpu", "litert_gpu"
    input_size: tuple[int, int] | None = None
    contract: InputContract = InputContract()
    outputs: OutputContract = OutputContract()

    @classmethod
    @abc.abstractmethod
    def from_file(cls, path: str | Path, **options: Any) -> Runtime:
        """Build the runtime for the model file at ``path`` (options: see each subclass)."""

    @abc.abstractmethod
    def describe(self) -> Description:
        """Library, device, precision and threads of this runtime."""

    def run_one(self, image: np.ndarray, controls: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One ``(1, 3, H, W)`` image -> its outputs by :attr:`outputs` name, NCHW (``image``
        ``(1, 3, H, W)``, ``matte`` ``(1, 1, H, W)``, ``background`` ``(1, 3, H, W)``); runtimes with a
        batch-1 model implement this.

        ``controls``: exactly the model's control inputs (:func:`control_inputs`), ``(1, 2)`` / ``(1, 1)`` / ``(1, 1, H, W)``.
        """
        raise NotImplementedError

    def check_batch(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` as contiguous float32 NCHW; ``ValueError`` if not 4-D with 3 channels or of the wrong static size."""
        batch = np.asarray(batch)
        if batch.ndim != 4 or batch.shape[1] != 3:
            raise ValueError(f"{self.kind}: expected an NCHW batch (B, 3, H, W), got shape {batch.shape}")
        if self.input_size is not None and tuple(batch.shape[2:]) != self.input_size:
            raise ValueError(f"{self.kind}: the model takes {self.input_size[0]} x {self.input_size[1]} only, "
                             f"got {batch.shape[2]} x {batch.shape[3]}")
        return np.ascontiguousarray(batch, np.float32)

    def run_layers(self, batch: np.ndarray, focus=None, aperture=None, subject=None) -> dict[str, np.ndarray]:
        """Every output of the model for ``batch``, by name (:attr:`outputs`).

        Arguments and errors as :meth:`run`.

        Shape:
            ``(B, 3, H, W)`` float32 (NCHW) in the model's value range -> ``{"image": (B, 3, H, W)}``
            in that range, and for a model with a matte ``"matte": (B, 1, H, W)`` in [0, 1] (1 = the
            input's own pixel) and ``"background": (B, 3, H, W)`` in the image's range, so that
            ``image = matte * input + (1 - matte) * background``.
        """
        batch = self.check_batch(batch)
        controls = control_inputs(self.contract, batch.shape[0], focus, aperture, subject, batch.shape[2:])
        results = [self.run_one(batch[i:i + 1], {k: v[i:i + 1] for k, v in controls.items()}) for i in range(batch.shape[0])]
        return {name: np.concatenate([result[name] for result in results]) for name in self.outputs.names}

    def run(self, batch: np.ndarray, focus=None, aperture=None, subject=None) -> np.ndarray:
        """Run ``batch`` through the model with the controls it takes; the image (:meth:`run_layers`
        gives the matte and the background too).

        Args:
            focus, aperture, subject: see :func:`control_inputs` (fractions of the model input's width
                and height; f-numbers; a matte of the input's size); ``None``: auto focus, f/1.8, no subject.

        Shape:
            ``(B, 3, H, W)`` float32 (NCHW) in the model's value range -> the same shape and range;
            ``(H, W)`` must equal :attr:`input_size` where that is set.

        Raises:
            ValueError: a batch that is not 4-D with 3 channels, or of the wrong static size.
            ControlError: a control the model does not take, or a bad value (one sentence).
        """
        return self.run_layers(batch, focus, aperture, subject)["image"]

    def __call__(self, batch: np.ndarray, focus=None, aperture=None, subject=None) -> np.ndarray:
        return self.run(batch, focus, aperture, subject)


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
