"""The model behind a render, as one callable, whatever file holds it.

=========  ==========================================  ======================================
suffix     runtime                                     input size
=========  ==========================================  ======================================
``.ckpt``  torch, :mod:`bokeh.inference`'s fast path   any multiple of 8 (photo padded)
``.onnx``  ONNX Runtime (:class:`bokeh.export.onnx.OnnxRuntimeModel`)   static: the export size
``.tflite``  LiteRT (:class:`bokeh.export.tflite.LiteRTModel`)          static: the export size
=========  ==========================================  ======================================

Every backend maps a ``(1, 3, h, w)`` float32 tensor in [-1, 1] to the bokeh image of the same
shape and range, and says in ``static_size`` whether it takes only one ``(h, w)``.
Exported models in the ``pixel`` value range (``export.value_range=pixel``: float32 in [0, 255])
are scaled to and from [-1, 1] here; ``value_range="auto"`` reads it from the ``report.json``
that ``python -m bokeh.export`` writes next to the model, and assumes ``signed`` without one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from bokeh.inference import PRECISIONS, describe_precision, prepare_for_inference, resolve_precision, run_generator

SUFFIXES = (".ckpt", ".onnx", ".tflite")
VALUE_RANGES = ("auto", "signed", "pixel")


class Backend(Protocol):
    """A model ready to render. Shape: ``(1, 3, h, w)`` in [-1, 1] -> ``(1, 3, h, w)`` in [-1, 1]."""

    name: str
    static_size: tuple[int, int] | None  # (h, w) the model only takes, or None for any multiple of 8

    def __call__(self, image: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """A Glass-Net in torch on the CPU, through :func:`bokeh.inference.prepare_for_inference`.

    Args:
        generator: a :class:`~bokeh.models.glassnet.GlassNet` (left untouched; a prepared copy runs).
        static_size: make it behave like an exported model of that ``(h, w)`` (for comparisons).
        precision: ``fp32`` (default here, for comparisons with exported models), ``bf16`` or ``auto``
            (bf16 where the CPU computes it natively: :func:`bokeh.inference.resolve_precision`);
            the resolved choice is in ``self.precision``.
    """

    def __init__(self, generator: nn.Module, static_size: tuple[int, int] | None = None, name: str = "torch",
                 precision: str = "fp32") -> None:
        self.precision = resolve_precision(precision)
        self.model = prepare_for_inference(generator, precision=self.precision)
        self.static_size = tuple(static_size) if static_size is not None else None
        self.name = name

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return run_generator(self.model, image)


class ExportedBackend:
    """A runtime that takes and returns NCHW float32 numpy arrays at one static size.

    Args:
        run: ``(1, 3, h, w)`` array -> ``(1, 3, h, w)`` array, in ``value_range``.
        static_size: the model's ``(h, w)``; ``None`` if it takes any multiple of 8.
        value_range: ``signed`` ([-1, 1]) or ``pixel`` ([0, 255]), see ``bokeh.export.onnx.Deployable``.
    """

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], static_size: tuple[int, int] | None,
                 value_range: str = "signed", name: str = "exported") -> None:
        if value_range not in ("signed", "pixel"):
            raise ValueError(f"value_range must be 'signed' or 'pixel', got {value_range!r}")
        self.run, self.static_size, self.value_range, self.name = run, static_size, value_range, name

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        x = image.detach().float().cpu().numpy()
        if self.value_range == "pixel":
            x = (x + 1.0) * 127.5
        y = np.asarray(self.run(np.ascontiguousarray(x, np.float32)), np.float32)
        if self.value_range == "pixel":
            y = y / 127.5 - 1.0
        if y.shape != x.shape:
            raise RuntimeError(f"{self.name} returned shape {y.shape} for an input of {x.shape}")
        return torch.from_numpy(y)


def exported_value_range(model_path: Path) -> str:
    """``settings.value_range`` of the ``report.json`` beside an exported model; ``signed`` without one."""
    report = model_path.parent / "report.json"
    if not report.is_file():
        return "signed"
    try:
        value_range = json.loads(report.read_text())["settings"]["value_range"]
    except (OSError, ValueError, KeyError, TypeError):
        return "signed"
    return value_range if value_range in ("signed", "pixel") else "signed"


def _static(dims) -> tuple[int, int] | None:
    """``(h, w)`` from a model's input dims, or None if either is dynamic (a name or -1)."""
    if not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        return None
    return int(dims[0]), int(dims[1])


def load_backend(path: str | os.PathLike, threads: int = 0, value_range: str = "auto", precision: str = "auto") -> Backend:
    """The model at ``path`` (``.ckpt``, ``.onnx`` or ``.tflite``) ready to render on the CPU.

    Args:
        threads: CPU threads for the runtime; 0 = every core (torch's default; passed explicitly to
            ONNX Runtime and LiteRT, whose defaults may differ).
        value_range: exported models only: ``auto`` (from ``report.json``), ``signed`` or ``pixel``.
        precision: torch checkpoints only: ``auto`` (bf16 where the CPU computes it natively, else
            fp32), ``fp32`` or ``bf16``; exported models compute in the precision they were exported in.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unknown suffix, value range or precision; ``bf16``/``fp32`` for an exported model.
        bokeh.checkpoint.CheckpointError: a ``.ckpt`` that is not a training checkpoint.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"ckpt={path}: unknown model file type {suffix or '(none)'!r}; "
                         f"pass a Lightning checkpoint (.ckpt), an ONNX model (.onnx) or a TFLite model (.tflite)")
    if not path.is_file():
        raise FileNotFoundError(f"ckpt={path}: no such file; train one with `python -m bokeh.train` "
                                f"or export one with `make tflite CKPT=...`")
    if value_range not in VALUE_RANGES:
        raise ValueError(f"value_range={value_range!r}: expected one of {', '.join(VALUE_RANGES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if suffix != ".ckpt" and precision != "auto":
        raise ValueError(f"precision={precision} applies to torch checkpoints (.ckpt) only; {path.name} runs in the "
                         f"precision it was exported in (pick bokeh_float32 / _float16 / _int8.tflite instead)")
    if suffix == ".ckpt":
        from bokeh.checkpoint import load_generator

        if threads > 0:
            torch.set_num_threads(threads)
        precision = resolve_precision(precision)
        return TorchBackend(load_generator(path), name=f"torch {describe_precision(precision)} ({path.name})",
                            precision=precision)
    value_range = exported_value_range(path) if value_range == "auto" else value_range
    threads = threads if threads > 0 else (os.cpu_count() or 1)
    if suffix == ".onnx":
        from bokeh.export.onnx import OnnxRuntimeModel

        model = OnnxRuntimeModel(path, threads)
        dims = model.session.get_inputs()[0].shape  # [1, 3, H, W]
        return ExportedBackend(model, _static(dims[2:]), value_range, f"ONNX Runtime ({path.name})")
    from bokeh.export.tflite import LiteRTModel  # imports torch._dynamo before TensorFlow (TOOLCHAIN.md)

    model = LiteRTModel(path, threads)
    static_size = _static(model.input_shape[1:3])  # (1, H, W, 3)
    if static_size is None:
        raise ValueError(f"ckpt={path}: TFLite input shape {model.input_shape} has no static height and width; "
                         f"export it with `python -m bokeh.export size=HxW`")
    return ExportedBackend(model, static_size, value_range, f"LiteRT ({path.name})")
