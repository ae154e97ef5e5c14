"""A Glass-Net in torch on the CPU, through the fast path of :mod:`bokeh.inference`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from bokeh.cpu import cpu_name
from bokeh.inference import (
    compile_for_inference, describe_precision, prepare_for_inference, resolve_precision, run_generator, run_generator_layers,
)
from bokeh.models.controls import InputContract, OutputContract
from bokeh.runtimes.base import Description, Runtime, control_inputs, library_version


class TorchRuntime(Runtime):
    """A Glass-Net (a prepared copy: channels-last, inference mode) on the CPU in fp32 or bf16.

    Takes any batch whose height and width are multiples of 8 (:attr:`input_size` is None), and the
    controls the generator was built with (:attr:`contract`, ``GlassNet.contract``).

    Args:
        generator: a :class:`~bokeh.models.glassnet.GlassNet`, with ``nn.InstanceNorm2d`` as trained
            or in the average-pool form of :mod:`bokeh.models.norms` (left untouched).
        threads: torch's intra-op threads, set when the runtime is built (process-wide in torch);
            0 leaves torch's setting (every core by default).
        precision: ``fp32`` (default: comparisons with exported models), ``bf16`` (weights and
            activations; emulated, and slow, where the CPU lacks bf16 instructions) or ``auto`` (bf16
            where native, :func:`bokeh.inference.resolve_precision`); the choice made is in
            :attr:`precision` and :meth:`describe`.
        compiled: run :func:`bokeh.inference.compile_for_inference` (``torch.compile``): faster, but
            the first run at each input size compiles for minutes.

    Shape:
        :meth:`run`: ``(B, 3, H, W)`` float32 in [-1, 1] -> ``(B, 3, H, W)`` float32 in [-1, 1];
        :meth:`run_layers` adds the matte and the background of a generator built with ``blend``
        (:attr:`outputs`, ``GlassNet.outputs``).
    """

    kind = "torch"

    def __init__(self, generator: nn.Module, threads: int = 0, precision: str = "fp32", compiled: bool = False) -> None:
        if threads > 0:
            torch.set_num_threads(threads)
        self.precision, self.compiled = resolve_precision(precision), compiled
        self.model = prepare_for_inference(generator, precision=self.precision)
        if compiled:
            self.model = compile_for_inference(self.model)
        self.input_size = None
        self.contract = getattr(generator, "contract", InputContract())
        self.outputs = getattr(generator, "outputs", OutputContract())

    @classmethod
    def from_file(cls, path: str | Path, threads: int = 0, precision: str = "fp32", compiled: bool = False) -> TorchRuntime:
        """The generator of the Lightning checkpoint at ``path`` (:func:`bokeh.checkpoint.load_generator`;
        raises its ``CheckpointError`` for a file that is not one)."""
        from bokeh.checkpoint import load_generator

        return cls(load_generator(path), threads, precision, compiled)

    def run_tensor(self, batch: torch.Tensor, focus=None, aperture=None, subject=None) -> torch.Tensor:
        """:meth:`run` on a torch tensor, without the numpy round trip (an inference tensor comes back)."""
        controls = control_inputs(self.contract, batch.shape[0], focus, aperture, subject, tuple(batch.shape[2:]))
        return run_generator(self.model, batch, **{k: torch.from_numpy(v) for k, v in controls.items()})

    def run_tensor_layers(self, batch: torch.Tensor, focus=None, aperture=None, subject=None) -> dict[str, torch.Tensor]:
        """:meth:`run_layers` on a torch tensor (inference tensors come back)."""
        controls = control_inputs(self.contract, batch.shape[0], focus, aperture, subject, tuple(batch.shape[2:]))
        return run_generator_layers(self.model, batch, **{k: torch.from_numpy(v) for k, v in controls.items()})

    def run(self, batch: np.ndarray, focus=None, aperture=None, subject=None) -> np.ndarray:
        return self.run_tensor(torch.from_numpy(self.check_batch(batch)), focus, aperture, subject).numpy()

    def run_layers(self, batch: np.ndarray, focus=None, aperture=None, subject=None) -> dict[str, np.ndarray]:
        layers = self.run_tensor_layers(torch.from_numpy(self.check_batch(batch)), focus, aperture, subject)
        return {name: value.numpy() for name, value in layers.items()}

    def describe(self) -> Description:
        how = "channels-last, inference mode" + (", torch.compile" if self.compiled else "")
        precision = "float32" if self.precision == "fp32" else describe_precision(self.precision)
        return Description(runtime=f"torch {library_version('torch')} ({how})", device=cpu_name(), precision=precision,
                           threads=torch.get_num_threads())
