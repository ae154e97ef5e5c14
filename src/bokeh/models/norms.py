"""Normalization layers for Glass-Net, and the mobile (TFLite GPU) form of instance norm.

Two interchangeable instance norms:

* ``nn.InstanceNorm2d(affine=False)`` for training: statistics over H x W per sample and channel.
* :class:`PoolInstanceNorm2d` for export: the same arithmetic written with ``avg_pool2d`` whose
  window covers the whole (static) feature map, so the converted TFLite graph holds
  AVERAGE_POOL_2D instead of MEAN, which the TFLite GPU delegate does not run (SPEC.md).

:func:`to_pool_instance_norm` swaps every instance norm in a model for the pool form at one input
size; the feature-map sizes are found by tracing the model with fake tensors (no arithmetic).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

NormKind = Literal["instance", "batch", "none"]
EPS = 1e-5


def make_norm(kind: NormKind, channels: int) -> nn.Module:
    """The normalization layer for ``kind``: instance (no affine, as the paper), batch, or none."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, eps=EPS, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, eps=EPS)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}: expected 'instance', 'batch' or 'none'")


def _pool_windows(height: int, width: int) -> list[tuple[int, int]]:
    """Pooling windows whose product covers a ``height x width`` map exactly.

    Two steps (8 x 8, then the rest) when both sides are multiples of 8 and larger than 8: exact,
    closer to ``nn.InstanceNorm2d`` in float32 than one huge window, and it spreads the work over
    GPU threads instead of one thread reading every pixel (TOOLCHAIN.md). Otherwise one window.
    """
    if height % 8 == 0 and width % 8 == 0 and height * width > 64:
        return [(8, 8), (height // 8, width // 8)]
    return [(height, width)]


class PoolInstanceNorm2d(nn.Module):
    """Instance norm for a fixed feature-map size, using only average pooling for statistics.

    y = (x - mean) * (var + eps) ** -0.5, mean and var (biased) over H x W per sample and
    channel; equal to ``nn.InstanceNorm2d(affine=False)`` up to float rounding.

    Shape:
        x: ``(B, C, height, width)``, any values; output the same shape.
    """

    def __init__(self, height: int, width: int, eps: float = EPS) -> None:
        super().__init__()
        if height < 1 or width < 1:
            raise ValueError(f"feature map size must be positive, got {height} x {width}")
        self.height, self.width, self.eps = height, width, eps
        self.windows = _pool_windows(height, width)

    def _spatial_mean(self, x: torch.Tensor) -> torch.Tensor:
        for window in self.windows:
            x = F.avg_pool2d(x, kernel_size=window, stride=window)
        return x  # (B, C, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"PoolInstanceNorm2d was built for {self.height} x {self.width} feature maps but got "
                f"{tuple(x.shape[-2:])}: rebuild it with to_pool_instance_norm() for this input size"
            )
        deviation = x - self._spatial_mean(x)
        variance = self._spatial_mean(deviation * deviation)  # (B, C, 1, 1)
        return deviation * (variance + self.eps) ** -0.5

    def extra_repr(self) -> str:
        return f"{self.height}x{self.width}, windows={self.windows}, eps={self.eps}"


def _instance_norm_input_sizes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Spatial size of the input of every ``nn.InstanceNorm2d`` in ``model`` for ``example``.

    Runs the model under FakeTensorMode: shapes propagate, no arithmetic is done, so this is
    instant even at 1024 x 1536.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    sizes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            def record(_module, inputs, _output, name=name):
                sizes[name] = (int(inputs[0].shape[-2]), int(inputs[0].shape[-1]))
            hooks.append(module.register_forward_hook(record))
    try:
        with FakeTensorMode(allow_non_fake_inputs=True) as mode, torch.no_grad():
            model(mode.from_tensor(example))
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def to_pool_instance_norm(model: nn.Module, input_shape: tuple[int, int, int, int]) -> nn.Module:
    """A copy of ``model`` with every ``nn.InstanceNorm2d`` replaced by :class:`PoolInstanceNorm2d`.

    Args:
        model: any module; instance norms must have ``affine=False`` and no running stats.
        input_shape: ``(B, C, H, W)`` of the input the exported model will take (static).

    Returns:
        A deep copy, in the same train/eval mode; the original is untouched.
    """
    model = copy.deepcopy(model)
    sizes = _instance_norm_input_sizes(model, torch.zeros(input_shape))
    for name, (height, width) in sizes.items():
        module = model.get_submodule(name)
        if module.affine or module.track_running_stats:
            raise ValueError(f"{name}: only affine=False instance norms without running stats can be swapped")
        parent_name, _, child_name = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child_name, PoolInstanceNorm2d(height, width, eps=module.eps))
    return model
