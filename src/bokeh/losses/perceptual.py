"""VGG perceptual loss: mean absolute difference of VGG19 relu5_4 features (SPEC.md, "Losses")."""

from __future__ import annotations

import torch
from torch import nn


def perceptual_loss(features: nn.Module, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean |features(output) - features(target)|`` over every feature element.

    The target's features are computed without autograd (the target is data; this saves the
    memory of a second VGG graph), so gradient reaches ``output`` only.

    Args:
        features: the frozen extractor, :class:`bokeh.models.vgg.VGG19Features` (built and loaded by
            :func:`bokeh.weights.load_vgg19_features`).
        output: generator output; target: ground truth.

    Shape:
        output, target: ``(B, 3, H, W)`` in [-1, 1], H and W >= 16. Returns a scalar >= 0.
    """
    if output.shape != target.shape:
        raise ValueError(
            f"perceptual loss needs output and target of one shape, got {tuple(output.shape)} and "
            f"{tuple(target.shape)}"
        )
    with torch.no_grad():
        target_features = features(target)  # (B, 512, H // 16, W // 16)
    return (features(output) - target_features).abs().mean()
