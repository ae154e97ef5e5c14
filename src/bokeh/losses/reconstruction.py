"""Reconstruction losses on images in [-1, 1]: L1 and the SSIM loss 1 - SSIM (SPEC.md, "Losses").

The SSIM is :func:`bokeh.metrics.ssim` with ``kind="gaussian"`` (Wang et al.: 11 x 11 Gaussian
window, sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, interior pixels), on the images mapped to [0, 1]: the
loss optimizes exactly the SSIM the project reports. (kornia's own ``ssim_loss`` would be
(1 - SSIM) / 2; the paper's loss is 1 - SSIM, as here.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bokeh import metrics


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


def focus_weighted_l1_loss(output: torch.Tensor, target: torch.Tensor, radius: torch.Tensor, focus_weight: float,
                           in_focus_max_radius: float = 1.0) -> torch.Tensor:
    """L1 with the pixels the target keeps in focus weighted ``1 + focus_weight`` (the rest 1),
    normalised by the mean weight so its scale matches :func:`l1_loss` (equal to it for weight 0).

    For data that knows each pixel's blur radius (the synthetic pairs): blurring an in-focus pixel
    costs more than failing to blur a defocused one, so an unsure model keeps the subject sharp.

    Shape:
        output, target: ``(B, 3, H, W)`` in [-1, 1]; radius: ``(B, 1, H, W)`` blur radius in px, NaN
        where unknown (a photo pair without radii in a mixed batch: weight 1).
        Returns a scalar >= 0.
    """
    _check_pair("focus_weighted_l1_loss", output, target)
    weight = 1.0 + focus_weight * (radius < in_focus_max_radius).to(output.dtype)  # (B, 1, H, W)
    return ((output - target).abs() * weight).mean() / weight.mean()


def gradient_l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the horizontal and vertical finite differences of the two images.

    Charges lost (or invented) detail directly: a model that softens an in-focus subject pays for
    every edge it smooths, where plain L1 pays only for the small intensity change (measured on real pairs:
    with a tap input it raised the subject's detail kept from 0.35 to 0.43; docs/reference-models.md, the levers).

    Shape:
        output, target: ``(B, C, H, W)``, H and W >= 2. Returns a scalar >= 0; 0 for images that
        differ by a constant.
    """
    _check_pair("gradient_l1_loss", output, target)
    diff = output - target
    return (diff[..., :, 1:] - diff[..., :, :-1]).abs().mean() + (diff[..., 1:, :] - diff[..., :-1, :]).abs().mean()


def ssim_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` (Gaussian SSIM of :mod:`bokeh.metrics`, mean over the batch) on [0, 1] images.

    The output is clamped to [-1, 1] first: SSIM is defined on images in range, and a Glass-Net with
    ``global_residual`` may step out of it while training (its L1 term pulls such pixels back). In
    range nothing changes and the gradient flows (the paper's tanh output is always in range).

    Shape:
        output: ``(B, 3, H, W)``, target ``(B, 3, H, W)`` in [-1, 1], H and W >= 11 (the window).
        Returns a scalar in [0, 2]; 0 for equal images.
    """
    _check_pair("ssim_loss", output, target)
    unit_output, unit_target = metrics.to_unit_range(output.clamp(-1.0, 1.0)), metrics.to_unit_range(target)
    return 1 - metrics.ssim(unit_output, unit_target, kind="gaussian", reduction="mean")
