"""Torch side of the export: the shipped module, the instance-norm swap, ONNX export.

ONNX Runtime runs the result through :class:`bokeh.runtimes.OnnxRuntime`.

Exporter: ``torch.onnx.export(..., dynamo=True, external_data=False, optimize=True)`` at opset
:data:`OPSET`. Measured on this 2-core machine for Glass-Net 16/32 at 256 x 384 (pool-form IN):
the dynamo exporter took 8.1 s and wrote 454 nodes with no Constant nodes; the legacy TorchScript
exporter (``dynamo=False``) took 3.9 s but wrote 529 nodes (72 Constant, 3 Identity) that onnx2tf
only digests after onnxsim, and warns that it "will be removed". Export time is noise next to the
conversion (tens of seconds), so the maintained exporter wins, and onnxsim is not needed.
Opset 18 is the opset the dynamo exporter's op library (onnxscript's torchlib) is written in, so
no version conversion runs; ONNX Runtime 1.23 and onnx2tf 1.29 both read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn

from bokeh.models.controls import IMAGE_FILE_NAME, ControlError, InputContract, OutputContract, control_tensors
from bokeh.models.norms import to_pool_instance_norm

OPSET = 18
INPUT_NAME = "image"
OUTPUT_NAME = IMAGE_FILE_NAME  # the image output; a model with a matte adds "matte" and "background"

ValueRange = Literal["signed", "pixel"]
InstanceNormForm = Literal["pool", "plain"]
VALUE_RANGES: tuple[str, ...] = ("signed", "pixel")
INSTANCE_NORM_FORMS: tuple[str, ...] = ("pool", "plain")


class Deployable(nn.Module):
    """Glass-Net as shipped: the image (and the controls its generator takes) in, the final bokeh
    image out (and, for a generator with a matte, the matte and the defocus layer; the rough image
    is dropped).

    Inputs, in order and named as :attr:`contract` names them (``image``, then ``focus``, then
    ``aperture``: the ONNX and TFLite input names): a model without controls exports exactly as
    before, one ``image`` input. The controls are never scaled by ``value_range``.
    Outputs, in order, named as :attr:`outputs` names them in files (``OutputContract.file_names``):
    ``bokeh`` (the image; ONNX cannot name an output ``image`` beside the input of that name), and
    for a model with a matte ``matte`` and ``background``; a model without one exports exactly as
    before, one ``bokeh`` output.

    ``value_range="signed"``: input and output are float32 in [-1, 1], the training scale.
    ``value_range="pixel"``: input and output are float32 in [0, 255]; the scaling to and from
    [-1, 1] is inside the graph (a multiply and an add each way, GPU-delegate ops). The tensors stay
    float32: a uint8 input would need a CAST from UINT8, which the GPU delegate does not accept
    (gpu_compatibility.cc: CAST only between bool, float32 and int32). The background is scaled as
    the image; the matte stays in [0, 1] in either range.

    Shape:
        image: ``(1, 3, H, W)``, H and W multiples of 8; returns ``(1, 3, H, W)`` in the same range,
        or for a model with a matte ``(image, matte (1, 1, H, W) in [0, 1], background (1, 3, H, W))``.
        focus: ``(1, 2)`` fractions of width and height (``(-1, -1)``: auto); aperture: ``(1, 1)`` f-number;
        subject: ``(1, 1, H, W)`` matte in [0, 1] (zeros: no subject prior).
    """

    def __init__(self, generator: nn.Module, value_range: ValueRange = "signed") -> None:
        super().__init__()
        if value_range not in VALUE_RANGES:
            raise ValueError(f"value_range must be one of {VALUE_RANGES}, got {value_range!r}")
        self.generator = generator
        self.value_range = value_range

    @property
    def contract(self) -> InputContract:
        return getattr(self.generator, "contract", InputContract())

    @property
    def outputs(self) -> OutputContract:
        return getattr(self.generator, "outputs", OutputContract())

    def _to_range(self, image: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> the value range (a blend of tanh outputs: stays inside [0, 255] for ``pixel``)."""
        return (image + 1.0) * 127.5 if self.value_range == "pixel" else image

    def forward(self, image: torch.Tensor, *controls: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if len(controls) != len(self.contract.controls):
            raise ControlError(f"the model takes {', '.join(self.contract.names)}; got {1 + len(controls)} input(s)")
        if self.value_range == "pixel":
            image = image * (1.0 / 127.5) - 1.0  # [0, 255] -> [-1, 1]
        given = dict(zip(self.contract.controls, controls))
        if not self.outputs.matte:
            bokeh, _rough = self.generator(image, **given)
            return self._to_range(bokeh)
        layers = self.generator.layers(image, **given)
        return self._to_range(layers.image), layers.matte, self._to_range(layers.background)  # OutputContract order

    def extra_repr(self) -> str:
        return f"value_range={self.value_range}"


def deployable(
    generator: nn.Module,
    height: int,
    width: int,
    instance_norm: InstanceNormForm = "pool",
    value_range: ValueRange = "signed",
) -> Deployable:
    """The module to export, in eval mode; ``generator`` itself is left untouched.

    ``instance_norm="pool"`` swaps every ``nn.InstanceNorm2d`` for its average-pool form built for
    an ``height x width`` input (static shapes); ``"plain"`` keeps ``nn.InstanceNorm2d`` (exports as
    MEAN, for comparison).
    """
    if instance_norm not in INSTANCE_NORM_FORMS:
        raise ValueError(f"instance_norm must be one of {INSTANCE_NORM_FORMS}, got {instance_norm!r}")
    generator = generator.eval()
    if instance_norm == "pool":
        generator = to_pool_instance_norm(generator, (1, 3, height, width))
    return Deployable(generator, value_range).eval()


def example_inputs(module: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(image, *controls)`` to trace ``module`` with: a tap point, an f-number and a subject matte (a
    ramp: not the defaults, so that nothing can fold them away) for the controls its
    :attr:`Deployable.contract` takes."""
    focus, aperture = control_tensors(image.shape[0], (0.3, 0.6), 4.0)
    height, width = image.shape[-2:]
    ramp = torch.linspace(0.0, 1.0, width, dtype=torch.float32).expand(image.shape[0], 1, height, width).contiguous()
    values = {"focus": focus, "aperture": aperture, "subject": ramp}
    return (image, *(values[name] for name in getattr(module, "contract", InputContract()).controls))


def export_onnx(module: nn.Module, example: torch.Tensor, path: str | Path, opset: int = OPSET) -> Path:
    """Write ``module`` traced at ``example``'s static shape to ``path`` (weights inside the file).

    Inputs are named ``image`` and the controls of the module's contract (:func:`example_inputs`),
    the outputs as :attr:`Deployable.outputs` names them in files (``bokeh``, and ``matte``,
    ``background`` for a model with a matte).
    """
    path = Path(path)
    inputs = example_inputs(module, example)
    names = list(getattr(module, "contract", InputContract()).names)
    output_names = list(getattr(module, "outputs", OutputContract()).file_names)
    with torch.no_grad():
        torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=True,
            external_data=False,
            optimize=True,
            opset_version=opset,
            input_names=names,
            output_names=output_names,
            verbose=False,
        )
    return path


def check_onnx(path: str | Path) -> None:
    """Raise ``onnx.checker.ValidationError`` unless the model at ``path`` is valid ONNX."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
