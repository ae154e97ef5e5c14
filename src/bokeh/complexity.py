"""Model size and arithmetic cost for any input size, without running the arithmetic.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` while the model runs on fake tensors
(``FakeTensorMode``): shapes propagate, nothing is computed or allocated, so a 1024 x 1536 count
is instant. Counted: convolutions, transposed convolutions and matrix multiplies, 2 FLOPs per
multiply-add (torch's convention). Not counted: elementwise work (norms, ReLU, tanh, adds,
concats), a few percent of a conv net's time but no multiply-adds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters once); only ``requires_grad`` ones if asked."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass(frozen=True)
class Complexity:
    """Size and cost of one forward pass at one input shape.

    Attributes:
        input_shape: ``(B, C, H, W)`` the count is for.
        parameters: parameter elements.
        flops: floating-point operations of convs and matmuls (2 per multiply-add).
        flops_by_module: the same count per direct child of the model (``{"unet_stage": ...}``).
    """

    input_shape: tuple[int, ...]
    parameters: int
    flops: int
    flops_by_module: dict[str, int] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        """Multiply-adds (FLOPs / 2)."""
        return self.flops // 2


def measure(model: nn.Module, input_shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Complexity:
    """Parameters and FLOPs of ``model(torch.zeros(input_shape))``, computed on fake tensors.

    Args:
        model: any module whose forward takes one tensor. It runs in eval mode (a train-mode batch
            norm would update its running statistics) and is left exactly as it was.
        input_shape: e.g. ``(1, 3, 1024, 1536)``.
        dtype: dtype of the fake input.

    Returns:
        A :class:`Complexity`. Only the model's direct children are broken out in
        ``flops_by_module``; work done in the model's own forward (outside children) is in ``flops``.
    """
    if not input_shape or any(not isinstance(n, int) or n < 1 for n in input_shape):
        raise ValueError(f"input_shape must be positive integers like (1, 3, 1024, 1536), got {input_shape!r}")
    device = next(model.parameters(), torch.empty(0)).device
    counter = FlopCounterMode(display=False)
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.no_grad():
            image = torch.empty(input_shape, dtype=dtype, device=device)  # fake: no memory behind it
            with counter:
                model(image)
    finally:
        for module, training in modes.items():
            module.training = training
    counts = counter.get_flop_counts()
    root = type(model).__name__  # FlopCounterMode names modules "<root class>.<path>"
    by_module = {
        name: int(sum(counts.get(f"{root}.{name}", {}).values())) for name, _ in model.named_children()
    }
    return Complexity(
        input_shape=tuple(input_shape),
        parameters=count_parameters(model),
        flops=int(counter.get_total_flops()),
        flops_by_module=by_module,
    )
