"""Image-quality metrics on RGB images in [0, 1]: PSNR and two named SSIM definitions.

Every number this project reports says which definition it uses (papers on EBB! mix them up):

* ``psnr``: 10 log10(L^2 / MSE), MSE over channels and pixels of one image, L the data range (1).
  The same as ``skimage.metrics.peak_signal_noise_ratio`` per image. Identical images give +inf
  (no cap): a batch mean that includes an identical pair is +inf as well.
* ``ssim(kind="gaussian")``: Wang et al.'s SSIM with an 11 x 11 Gaussian window, sigma 1.5,
  population (biased) local variances, C1 = (0.01 L)^2, C2 = (0.03 L)^2, averaged over the
  *interior* pixels whose window lies inside the image (5 pixels dropped on each side) and over
  channels. Equals ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1, channel_axis=...)``; the map is kornia's
  (``kornia.metrics.ssim`` with ``padding="valid"``). torchmetrics' default SSIM is the same number.
* ``ssim(kind="uniform")``: skimage's *default* SSIM: a 7 x 7 uniform window, local variances with
  the sample (N - 1) normalization, interior pixels only (3 dropped on each side). Several EBB!
  papers report this. Neither kornia nor torchmetrics computes it (torchmetrics' uniform window
  uses population variances), so it is written here with ``avg_pool2d``.

* ``psnr_split``: PSNR over the pixel sets of :data:`PIXEL_SETS`, by the blur radius the target was
  rendered with (synthetic data: :mod:`bokeh.data.coc`): ``all`` pixels, ``in_focus`` (radius < 1 px:
  the target keeps the input's detail) and ``defocus`` (radius >= 4 px: strongly blurred). A model
  that blurs everything scores well on ``defocus`` and badly on ``in_focus``; one that does nothing,
  the reverse. Each set's PSNR is 10 log10(L^2 / MSE) with the MSE over that set's pixels of one
  image (all channels); with every pixel in the set it equals ``psnr``.

All functions are differentiable (the SSIM loss is 1 - SSIM gaussian); per-image values are
returned as ``(B,)`` unless ``reduction="mean"``, which averages the per-image values (the way
challenge tables average over a test set).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from kornia.metrics import ssim as kornia_ssim_map
from torchmetrics.functional.image import peak_signal_noise_ratio

SSIMKind = Literal["gaussian", "uniform"]
Reduction = Literal["none", "mean"]

GAUSSIAN_WINDOW = 11  # kornia's window has sigma 1.5; skimage: 2 * int(3.5 * 1.5 + 0.5) + 1 = 11 taps
UNIFORM_WINDOW = 7  # skimage's default win_size
K1, K2 = 0.01, 0.03  # SSIM stabilizers: C1 = (K1 L)^2, C2 = (K2 L)^2
RANGE_TOLERANCE = 1e-4  # values this far outside [0, L] still pass (float rounding of (x + 1) / 2)
IN_FOCUS_MAX_RADIUS = 1.0  # px: circle-of-confusion radius below which a pixel counts as in focus
DEFOCUS_MIN_RADIUS = 4.0  # px: radius from which a pixel counts as strongly defocused
PIXEL_SETS = ("all", "in_focus", "defocus")


def to_unit_range(image: torch.Tensor) -> torch.Tensor:
    """Map a network image from [-1, 1] to [0, 1]: ``(image + 1) / 2``, not clamped (differentiable).

    Shape:
        image: any shape, values in [-1, 1]; returns the same shape, values in [0, 1].
    """
    return (image + 1) / 2


def _check_pair(name: str, pred: torch.Tensor, target: torch.Tensor, data_range: float, min_side: int = 1) -> None:
    """Raise ``ValueError`` saying what is wrong unless both are (B, C, H, W) of one shape in [0, L]."""
    if pred.ndim != 4 or pred.shape != target.shape:
        raise ValueError(
            f"{name} expects two (B, C, H, W) batches of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if min(pred.shape[-2:]) < min_side:
        raise ValueError(
            f"{name} needs images at least {min_side} x {min_side} pixels (its window), got "
            f"{pred.shape[-2]} x {pred.shape[-1]}"
        )
    for label, image in (("prediction", pred), ("target", target)):
        low, high = torch.aminmax(image.detach())
        if low < -RANGE_TOLERANCE * data_range or high > (1 + RANGE_TOLERANCE) * data_range:
            raise ValueError(
                f"{name}: the {label} has values in [{low.item():.4g}, {high.item():.4g}] but the data range is "
                f"[0, {data_range:g}]; map network images from [-1, 1] with bokeh.metrics.to_unit_range() first"
            )


def _reduce(per_image: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    if reduction == "none":
        return per_image
    if reduction == "mean":
        return per_image.mean()
    raise ValueError(f"unknown reduction {reduction!r}: expected 'none' or 'mean'")


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, reduction: Reduction = "none") -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB: 10 log10(L^2 / MSE) (torchmetrics, per image).

    Args:
        pred, target: images in [0, data_range].
        data_range: L, the span of valid values (1 for [0, 1] images).
        reduction: ``"none"`` for one value per image, ``"mean"`` for their mean.

    Shape:
        pred, target: ``(B, C, H, W)`` (RGB: C = 3). Returns ``(B,)`` or a scalar; +inf where an
        image equals its target.
    """
    _check_pair("psnr", pred, target, data_range)
    per_image = peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    return _reduce(per_image, reduction)


def _uniform_ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> torch.Tensor:
    """skimage's default SSIM map on the interior (7 x 7 uniform window, sample covariance).

    Shape:
        pred, target: ``(B, C, H, W)``; returns ``(B, C, H - 6, W - 6)``.
    """
    window = UNIFORM_WINDOW

    def local_mean(x: torch.Tensor) -> torch.Tensor:  # mean over each window lying inside the image
        return F.avg_pool2d(x, window, stride=1)

    n = window * window
    sample = n / (n - 1)  # skimage's use_sample_covariance=True
    mu_x, mu_y = local_mean(pred), local_mean(target)
    var_x = sample * (local_mean(pred * pred) - mu_x * mu_x)
    var_y = sample * (local_mean(target * target) - mu_y * mu_y)
    cov_xy = sample * (local_mean(pred * target) - mu_x * mu_y)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    kind: SSIMKind = "gaussian",
    data_range: float = 1.0,
    reduction: Reduction = "none",
) -> torch.Tensor:
    """Structural similarity per image, by a named definition (see the module docstring).

    Args:
        pred, target: images in [0, data_range].
        kind: ``"gaussian"`` (11 x 11, sigma 1.5, population variances; kornia / torchmetrics /
            skimage ``gaussian_weights=True, use_sample_covariance=False``) or ``"uniform"`` (7 x 7
            uniform window, sample covariance; skimage's defaults). Both average the SSIM map over
            the interior pixels whose window fits inside the image, as skimage does, and over channels.
        data_range: L, the span of valid values (1 for [0, 1] images).
        reduction: ``"none"`` for one value per image, ``"mean"`` for their mean.

    Shape:
        pred, target: ``(B, C, H, W)`` (RGB: C = 3), H and W at least the window (11 or 7).
        Returns ``(B,)`` or a scalar, at most 1 (1 for identical images).
    """
    if kind == "gaussian":
        _check_pair("ssim (gaussian)", pred, target, data_range, GAUSSIAN_WINDOW)
        # eps=0: no extra term in the denominator, as in the reference definition (C1 C2 > 0 anyway).
        similarity = kornia_ssim_map(pred, target, GAUSSIAN_WINDOW, max_val=float(data_range), eps=0.0, padding="valid")
    elif kind == "uniform":
        _check_pair("ssim (uniform)", pred, target, data_range, UNIFORM_WINDOW)
        similarity = _uniform_ssim_map(pred, target, float(data_range))
    else:
        raise ValueError(f"unknown SSIM kind {kind!r}: expected 'gaussian' (11x11, sigma 1.5) or 'uniform' (7x7)")
    return _reduce(similarity.mean(dim=(1, 2, 3)), reduction)  # (B,)


def pixel_sets(radius: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks of :data:`PIXEL_SETS` for a map of blur radii.

    Shape:
        radius: ``(B, 1, H, W)`` circle-of-confusion radii in pixels (>= 0); returns masks of that shape.
    """
    return {"all": torch.ones_like(radius, dtype=torch.bool), "in_focus": radius < IN_FOCUS_MAX_RADIUS,
            "defocus": radius >= DEFOCUS_MIN_RADIUS}


def psnr_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR per image over the pixels where ``mask`` is true (all channels of each such pixel), in dB.

    Shape:
        pred, target: ``(B, C, H, W)`` in [0, data_range]; mask: ``(B, 1, H, W)`` bool. Returns
        ``(B,)``: +inf where the masked pixels are equal, NaN where an image's mask is empty.
    """
    _check_pair("psnr_masked", pred, target, data_range)
    if mask.shape != (pred.shape[0], 1, *pred.shape[-2:]) or mask.dtype != torch.bool:
        raise ValueError(f"psnr_masked expects a (B, 1, H, W) bool mask for {tuple(pred.shape)} images, got {mask.dtype} {tuple(mask.shape)}")
    squared = (pred - target).pow(2).mean(1, keepdim=True)  # (B, 1, H, W): mean over channels
    count = mask.sum(dim=(1, 2, 3))
    mse = (squared * mask).sum(dim=(1, 2, 3)) / count  # NaN for an empty mask (0 / 0)
    return 10 * torch.log10(data_range**2 / mse)


def psnr_split(pred: torch.Tensor, target: torch.Tensor, radius: torch.Tensor, data_range: float = 1.0) -> dict[str, torch.Tensor]:
    """:func:`psnr_masked` over each of :data:`PIXEL_SETS` (see the module docstring).

    Shape:
        pred, target: ``(B, C, H, W)`` in [0, data_range]; radius: ``(B, 1, H, W)`` in pixels.
        Returns ``{set name: (B,)}``, NaN where an image has no pixel in a set.
    """
    return {name: psnr_masked(pred, target, mask, data_range) for name, mask in pixel_sets(radius).items()}
