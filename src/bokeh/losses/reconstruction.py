"""Reconstruction losses on images in [-1, 1]: L1 and the SSIM loss 1 - SSIM (SPEC.md, "Losses").

SSIM is the Gaussian-window SSIM of Wang et al. (11 x 11 window, sigma 1.5, C1 = 0.01^2,
C2 = 0.03^2 on a data range of 1), computed on the images mapped to [0, 1], from
``kornia.metrics.ssim`` (reflect padding at the borders, so every pixel counts; mean over pixels,
channels and batch). Note that kornia's own ``ssim_loss`` is (1 - SSIM) / 2: the paper's loss is
1 - SSIM, as here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.metrics import ssim

SSIM_WINDOW = 11  # kornia's Gaussian window has sigma 1.5 whatever its size


def _check_pair(name: str, output: torch.Tensor, target: torch.Tensor) -> None:
    if output.shape != target.shape:
        raise ValueError(
            f"{name} needs output and target of one shape, got {tuple(output.shape)} and {tuple(target.shape)}"
        )


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every element.

    Shape:
        output, target: ``(B, 3, H, W)`` in [-1, 1]. Returns a scalar in [0, 2].
    """
    _check_pair("l1_loss", output, target)
    return F.l1_loss(output, target)


def ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` of the images mapped from [-1, 1] to [0, 1] (mean SSIM over pixels and channels).

    Values are not clamped, so gradient flows everywhere (Glass-Net's tanh output is in range).

    Shape:
        output, target: ``(B, 3, H, W)`` in [-1, 1], H and W >= 6 (reflect padding of 5 px).
        Returns a scalar in [0, 2]; 0 for equal images.
    """
    _check_pair("ssim_loss", output, target)
    similarity = ssim((output + 1) / 2, (target + 1) / 2, SSIM_WINDOW, max_val=1.0)  # (B, 3, H, W)
    return 1 - similarity.mean()
