"""The model behind a render, as one callable, whatever file holds it.

=========  ======================================================  ===================================
suffix     runtime (:mod:`bokeh.runtimes`)                          input size
=========  ======================================================  ===================================
``.ckpt``  torch, :mod:`bokeh.inference`'s fast path (TorchRuntime)  any multiple of 8 (photo padded)
``.onnx``  ONNX Runtime (OnnxRuntime)                                static: the export size
``.tflite``  LiteRT on the CPU (LiteRTCpuRuntime), or with           static: the export size
           ``accelerator="gpu"`` its GPU accelerator (LiteRTGpuRuntime)
=========  ======================================================  ===================================

Every backend maps a ``(1, 3, h, w)`` float32 tensor in [-1, 1] (and the controls its model takes:
``contract``, a :class:`~bokeh.models.controls.InputContract`; ``focus`` in fractions of the
``(h, w)`` canvas it is given) to the bokeh image of the same shape and range (calling it), or to
every output of its model (``layers``: ``image``, and for a model with a matte, as its ``outputs``
say, ``matte`` in [0, 1] and ``background`` in [-1, 1]), and says in ``static_size`` whether it
takes only one ``(h, w)``. The controls go to the runtime as they are:
:func:`bokeh.runtimes.base.control_inputs` checks them and fills in the defaults.
Exported models in the ``pixel`` value range (``export.value_range=pixel``: float32 in [0, 255])
are scaled to and from [-1, 1] here; ``value_range="auto"`` reads it from the ``report.json``
that ``python -m bokeh.export`` writes next to the model, and assumes ``signed`` without one.

Every backend also carries ``segmenter``, the :class:`~bokeh.runtimes.segmenter.SubjectSegmenter`
that gives the photo's subject matte, built on first use (a render with ``subject=off`` never builds
it): for a ``.tflite`` model the segmenter file its export wrote beside it (``segmenter.tflite``,
named in the model's metadata) on the same device, the phone pipeline's pair; for torch and ONNX
models, and exports from before the pair, the installed one on the CPU
(:func:`~bokeh.runtimes.segmenter.default_segmenter`).
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from bokeh.inference import PRECISIONS, describe_precision
from bokeh.models.controls import InputContract, OutputContract
from bokeh.runtimes import ACCELERATORS, TorchRuntime, runtime_for
from bokeh.runtimes.segmenter import SegmenterMissing, SubjectSegmenter, default_segmenter

SUFFIXES = (".ckpt", ".onnx", ".tflite")
VALUE_RANGES = ("auto", "signed", "pixel")


class Backend(Protocol):
    """A model ready to render. Shape: ``(1, 3, h, w)`` in [-1, 1] -> ``(1, 3, h, w)`` in [-1, 1].

    ``focus``: ``(x, y)`` fractions of the ``(h, w)`` input (None: auto); ``aperture``: an f-number
    (None: f/1.8); only for a model whose ``contract`` takes them (else ``ControlError``).
    """

    name: str
    static_size: tuple[int, int] | None  # (h, w) the model only takes, or None for any multiple of 8
    segmenter: SubjectSegmenter  # the subject matte's model (built on first use), see the module's docstring
    contract: InputContract
    outputs: OutputContract  # a model with a matte also gives "matte" and "background" (layers)

    def __call__(self, image: torch.Tensor, focus=None, aperture=None) -> torch.Tensor: ...

    def layers(self, image: torch.Tensor, focus=None, aperture=None) -> dict[str, torch.Tensor]: ...


class SubjectMatte:
    """The ``segmenter`` of a backend, built on first use by ``segmenter_source`` (None: the installed
    segmenter on the CPU). Building raises :class:`~bokeh.runtimes.segmenter.SegmenterMissing` (one
    sentence) when the model file is missing, and nothing is kept then."""

    segmenter_source: Callable[[], SubjectSegmenter] | None = None

    @functools.cached_property
    def segmenter(self) -> SubjectSegmenter:
        return self.segmenter_source() if self.segmenter_source is not None else default_segmenter("cpu")


def exported_segmenter(model_path: Path, device: str) -> SubjectSegmenter:
    """The segmenter exported with the ``.tflite`` Glass-Net at ``model_path``, on ``device``: the file
    its metadata names (``segmenter.tflite``), beside it; the installed one for an export that names none
    (from before ``make tflite`` wrote the pair).

    Raises:
        SegmenterMissing: the named file is not beside the model (one sentence with the fix).
    """
    from bokeh.model_files import read_metadata

    name = (read_metadata(model_path) or {}).get("segmenter")
    if name is None:
        return default_segmenter(device)
    path = model_path.parent / Path(name).name
    if not path.is_file():
        raise SegmenterMissing(f"{model_path.name} runs with the subject segmenter {path}, which is missing: copy "
                               f"{path.name} from the same export folder (make tflite writes it beside the model), or export again")
    return SubjectSegmenter(path, device)


class ExportedBackend(SubjectMatte):
    """A runtime that takes and returns NCHW float32 numpy arrays (a :class:`bokeh.runtimes.Runtime`
    or any such function), in its value range.

    Args:
        run: ``(1, 3, h, w)`` array -> ``(1, 3, h, w)`` array, in ``value_range``; a runtime also
            takes ``focus=`` and ``aperture=`` (its ``contract`` says which; a plain function takes none).
        static_size: the model's ``(h, w)``; ``None`` if it takes any multiple of 8.
        value_range: ``signed`` ([-1, 1]) or ``pixel`` ([0, 255]), see ``bokeh.export.onnx.Deployable``.
    """

    def __init__(self, run: Callable[..., np.ndarray], static_size: tuple[int, int] | None,
                 value_range: str = "signed", name: str = "exported") -> None:
        if value_range not in ("signed", "pixel"):
            raise ValueError(f"value_range must be 'signed' or 'pixel', got {value_range!r}")
        self.run, self.static_size, self.value_range, self.name = run, static_size, value_range, name
        self.contract = getattr(run, "contract", InputContract())
        self.outputs = getattr(run, "outputs", OutputContract())

    def _input(self, image: torch.Tensor, focus, aperture) -> tuple[np.ndarray, dict]:
        """``image`` as a float32 array in the value range, and the controls given."""
        self.contract.check(focus, aperture)  # a control the model does not take: refused, never ignored
        x = image.detach().float().cpu().numpy()
        if self.value_range == "pixel":
            x = (x + 1.0) * 127.5
        return np.ascontiguousarray(x, np.float32), {k: v for k, v in (("focus", focus), ("aperture", aperture)) if v is not None}

    def _signed(self, y: np.ndarray, shape: tuple[int, ...], what: str = "") -> torch.Tensor:
        """An image-like output back to [-1, 1], its shape checked against ``shape``."""
        y = np.asarray(y, np.float32)
        if self.value_range == "pixel":
            y = y / 127.5 - 1.0
        if y.shape != shape:
            raise RuntimeError(f"{self.name} returned {what}shape {y.shape} for an input of {shape}")
        return torch.from_numpy(y)

    def __call__(self, image: torch.Tensor, focus=None, aperture=None) -> torch.Tensor:
        x, controls = self._input(image, focus, aperture)
        return self._signed(self.run(x, **controls), x.shape)

    def layers(self, image: torch.Tensor, focus=None, aperture=None) -> dict[str, torch.Tensor]:
        """Every output of the model (``run.run_layers``): image and background in [-1, 1], the matte in [0, 1]."""
        x, controls = self._input(image, focus, aperture)
        outputs = self.run.run_layers(x, **controls)
        layers = {"image": self._signed(outputs["image"], x.shape)}
        if "matte" in outputs:
            layers["background"] = self._signed(outputs["background"], x.shape, "a background of ")
            matte = np.asarray(outputs["matte"], np.float32)
            if matte.shape != (x.shape[0], 1, *x.shape[2:]):
                raise RuntimeError(f"{self.name} returned a matte of shape {matte.shape} for an input of {x.shape}")
            layers["matte"] = torch.from_numpy(matte)
        return layers


class TorchBackend(SubjectMatte):
    """A Glass-Net in torch on the CPU (:class:`bokeh.runtimes.TorchRuntime`), on torch tensors.

    Args:
        generator: a :class:`~bokeh.models.glassnet.GlassNet` (left untouched; a prepared copy runs).
        static_size: make it behave like an exported model of that ``(h, w)`` (for comparisons).
        short_side: the photos' short side (pixels) the model was trained at, if known (shipped models):
            ``short_side="auto"`` renders at it (:func:`bokeh.render.fit.working_short_side`).
        precision: for a ``generator``: ``fp32`` (default here, for comparisons with exported models),
            ``bf16`` or ``auto`` (bf16 where the CPU computes it natively); a runtime keeps its own.
    """

    def __init__(self, generator: nn.Module | TorchRuntime, static_size: tuple[int, int] | None = None,
                 name: str = "torch", precision: str = "fp32", short_side: int | None = None) -> None:
        self.runtime = generator if isinstance(generator, TorchRuntime) else TorchRuntime(generator, precision=precision)
        self.static_size = tuple(static_size) if static_size is not None else None
        self.name = name
        self.short_side = short_side  # the scale it was trained at, if known: short_side="auto" renders there
        self.contract = self.runtime.contract
        self.outputs = self.runtime.outputs

    def __call__(self, image: torch.Tensor, focus=None, aperture=None) -> torch.Tensor:
        return self.runtime.run_tensor(image, focus, aperture)

    def layers(self, image: torch.Tensor, focus=None, aperture=None) -> dict[str, torch.Tensor]:
        return self.runtime.run_tensor_layers(image, focus, aperture)


class GeneratorBackend:
    """A bare generator, as it is in training, as a backend: the same road as a loaded model
    (:func:`bokeh.render.fit.render_photo`) without copying or preparing it.

    The generator runs on its own device and in its own dtype, in eval mode and without gradients
    (its mode is given back after each call); outputs come back as float32 on the CPU.

    Args:
        generator: a :class:`~bokeh.models.glassnet.GlassNet` (its ``contract`` and ``outputs``).
        short_side: the photos' short side to run at for ``short_side="auto"`` (None: 1024).
        segmenter: the subject segmenter to use (None: the package's, when a render asks for it).

    Shape:
        ``(1, 3, h, w)`` in [-1, 1], h and w multiples of 8 -> ``(1, 3, h, w)`` in [-1, 1]
        (:meth:`layers`: and the matte and background of a model with a matte).
    """

    static_size = None

    def __init__(self, generator: nn.Module, name: str = "generator", short_side: int | None = None, segmenter=None) -> None:
        self.generator, self.name, self.short_side = generator, name, short_side
        self.contract = getattr(generator, "contract", InputContract())
        self.outputs = getattr(generator, "outputs", OutputContract())
        if segmenter is not None:
            self.segmenter = segmenter

    def layers(self, image: torch.Tensor, focus=None, aperture=None, subject: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        from bokeh.runtimes.base import control_inputs

        parameter = next(self.generator.parameters())
        device, dtype = parameter.device, parameter.dtype
        controls = {k: torch.from_numpy(v).to(device, dtype) for k, v in control_inputs(self.contract, image.shape[0], focus, aperture,
                                                                                                   size=tuple(image.shape[2:])).items()}
        if subject is not None:  # the subject plane of a model that takes one
            controls["subject"] = subject.to(device, dtype)
        was_training = self.generator.training
        self.generator.eval()
        try:
            with torch.inference_mode():
                x = image.to(device, dtype)
                if self.outputs.matte:
                    out = self.generator.layers(x, **controls)
                    values = {"image": out.image, "matte": out.matte, "background": out.background}
                else:
                    values = {"image": self.generator(x, **controls)[0]}
        finally:
            self.generator.train(was_training)
        return {k: v.float().cpu() for k, v in values.items()}

    def __call__(self, image: torch.Tensor, focus=None, aperture=None, subject: torch.Tensor | None = None) -> torch.Tensor:
        return self.layers(image, focus, aperture, subject)["image"]


def exported_value_range(model_path: Path) -> str:
    """The value range an exported model takes: what the file itself says (stored at export:
    :func:`bokeh.model_files.read_metadata`), else ``settings.value_range`` of the ``report.json``
    beside it.

    Raises:
        ValueError: neither says it (a file from an older export, copied without its report.json):
            guessing would render a near-white image from a pixel-range model.
    """
    from bokeh.model_files import read_metadata

    value_range = (read_metadata(model_path) or {}).get("value_range")
    report = model_path.parent / "report.json"
    if value_range is None and report.is_file():
        try:
            value_range = json.loads(report.read_text())["settings"]["value_range"]
        except (OSError, ValueError, KeyError, TypeError):
            value_range = None
    if value_range not in ("signed", "pixel"):
        raise ValueError(f"ckpt={model_path}: the file does not say which value range it takes, and there is no report.json "
                         f"beside it: pass value_range=signed ([-1, 1]) or value_range=pixel ([0, 255]), or export it again")
    return value_range


def load_backend(path: str | os.PathLike, threads: int = 0, value_range: str = "auto", accelerator: str = "cpu",
                 precision: str = "auto") -> Backend:
    """The model at ``path`` (``.ckpt``, ``.onnx`` or ``.tflite``, or a shipped model's name such as
    ``reference``: :mod:`bokeh.pretrained`) ready to render.

    Args:
        threads: CPU threads for the runtime; 0 = every core (torch's default; passed explicitly to
            ONNX Runtime and LiteRT, whose defaults may differ).
        value_range: exported models only: ``auto`` (from ``report.json``), ``signed`` or ``pixel``.
        accelerator: ``cpu``, or ``gpu`` for a ``.tflite`` model on LiteRT's GPU accelerator (GPU alone).
        precision: torch checkpoints only: ``auto`` (bf16 where the CPU computes it natively, else
            fp32), ``fp32`` or ``bf16``; exported models compute in the precision they were exported in.

    Raises:
        bokeh.checkpoint.CheckpointError: not a shipped name and not a model file (missing, a folder,
            empty, a Git LFS pointer, an image, an unknown suffix: :func:`bokeh.model_files.check_model_file`).
        ValueError: value range, accelerator or precision (or ``gpu`` for a
            non-``.tflite`` file, ``fp32``/``bf16`` for an exported one).
        bokeh.checkpoint.CheckpointError: a ``.ckpt`` that is not a training checkpoint.
        bokeh.runtimes.RuntimeUnavailable: the runtime or device is missing (for ``gpu``: no Vulkan
            adapter, :class:`bokeh.runtimes.GpuAdapterMissing`, whose message says how to get one).
        bokeh.runtimes.NotFullyAccelerated: ``gpu`` and a model with ops the GPU does not run.
    """
    from bokeh import pretrained

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    source = pretrained.resolve(path)  # a shipped name (ckpt=reference), or a checked model file
    if isinstance(source, str):
        if value_range != "auto":
            raise ValueError(f"value_range={value_range} applies to exported models (.onnx, .tflite); the shipped model "
                             f"{source} takes [-1, 1] itself: leave value_range out")
        if accelerator != "cpu":
            raise ValueError(f"accelerator={accelerator} runs .tflite models; export the shipped model first: "
                             f"make tflite CKPT={path}")
        shipped = pretrained.weights(source)
        runtime = TorchRuntime(shipped.load(), threads, precision)
        return TorchBackend(runtime, name=f"torch {describe_precision(runtime.precision)} (shipped model {path})",
                            short_side=shipped.input.short_side)
    path = source
    suffix = path.suffix.lower()
    if value_range not in VALUE_RANGES:
        raise ValueError(f"value_range={value_range!r}: expected one of {', '.join(VALUE_RANGES)}")
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator={accelerator!r}: expected one of {', '.join(ACCELERATORS)}")
    if suffix == ".ckpt" and value_range != "auto":
        raise ValueError(f"value_range={value_range} applies to exported models (.onnx, .tflite); {path.name} is a torch "
                         f"checkpoint, which takes [-1, 1] itself: leave value_range out")
    if suffix != ".ckpt" and precision != "auto":
        raise ValueError(f"precision={precision} applies to torch checkpoints (.ckpt) only; {path.name} runs in the "
                         f"precision it was exported in (pick bokeh_float32 / _float16 / _int8.tflite instead)")
    if value_range != "auto" and suffix != ".ckpt":  # for a file that says nothing; never against what the file says
        from bokeh.model_files import read_metadata

        said = (read_metadata(path) or {}).get("value_range")
        if said is not None and said != value_range:
            raise ValueError(f"value_range={value_range}, but {path.name} says it takes value_range={said} (stored at export): "
                             f"leave value_range out (auto)")
    threads = threads if threads > 0 or suffix == ".ckpt" else (os.cpu_count() or 1)
    runtime = runtime_for(path, accelerator, threads, precision)
    if suffix == ".ckpt":
        return TorchBackend(runtime, name=f"torch {describe_precision(runtime.precision)} ({path.name})")
    if runtime.input_size is None and runtime.kind != "onnxruntime":  # ONNX Runtime also runs dynamic sizes
        raise ValueError(f"ckpt={path}: the model's input has no static height and width; "
                         f"export it with `python -m bokeh.export size=HxW`")
    value_range = exported_value_range(path) if value_range == "auto" else value_range
    label = {"onnxruntime": "ONNX Runtime", "litert_cpu": "LiteRT", "litert_gpu": "LiteRT GPU accelerator"}[runtime.kind]
    if runtime.kind == "litert_gpu":
        label += f" on {runtime.describe().device}"
    backend = ExportedBackend(runtime, runtime.input_size, value_range, f"{label} ({path.name})")
    if suffix == ".tflite":  # the phone pipeline: the segmenter exported with it, on the same device
        backend.segmenter_source = functools.partial(exported_segmenter, path, accelerator)
    return backend
