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

import math
from typing import Literal

import kornia
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
        return F.avg_pool2d(F.avg_pool2d(x, (window, 1), stride=1), (1, window), stride=1)  # separable: rows, columns

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


# ----------------------------------------------------------------------------- real pairs
# Real pairs (an f/16 shot and a wide-aperture shot of one scene) have no blur-radius map and differ
# in exposure and white balance as well as in blur (the camera re-exposed for the wider aperture).
# The real-pair benchmark therefore (1) tone-matches every image to the target first
# (:func:`tone_match`), (2) measures sharpness as local gradient energy (:func:`detail_energy`),
# which a global tone change scales but does not swamp, and (3) splits the pixels into in focus and
# defocused by the subject mask where a pair has one, else by how much of the input's detail the
# target keeps (:func:`real_split`). These are the definitions of the project's real-pair table
# (MEASUREMENTS, 2026-12-01): 33 x 33 windows, in focus where the target keeps >= 0.5 of the input's
# energy, defocused where it keeps <= 0.15, flat areas in neither, detail as the median ratio, SSIM
# as skimage's default (7 x 7 uniform window).

DETAIL_WINDOW = 33  # px: side of the window the local gradient energy is averaged over
DETAIL_KEEPS = 0.5  # target / input energy at or above which the target kept a pixel in focus
DETAIL_LOSES = 0.15  # target / input energy at or below which the target blurred a pixel away
FLAT_GRADIENT = 5.0 / 255.0  # local RMS gradient (per px, [0, 1] units) below which an area is flat
REAL_SETS = ("all", "in_focus", "defocus")


def tone_match(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``image`` with the per-channel affine tone change that brings it closest to ``target``.

    For each image and channel, gain ``a`` and offset ``b`` minimise ``sum((a x + b - y)^2)`` over
    all pixels (ordinary least squares: ``a = cov(x, y) / var(x)``, ``b = mean(y) - a mean(x)``;
    a constant channel gets ``a = 0``, ``b = mean(y)``); the result ``a x + b`` is clamped to
    [0, 1]. It absorbs a global exposure and white-balance change between the two shots of a
    real pair, so that a global tone change of ``image`` leaves the result unchanged (up to
    clipping).

    Shape:
        image, target: ``(B, C, H, W)`` in [0, 1]; returns ``(B, C, H, W)`` in [0, 1].
    """
    _check_pair("tone_match", image, target, 1.0)
    mean_x, mean_y = image.mean((2, 3), keepdim=True), target.mean((2, 3), keepdim=True)
    x = image - mean_x  # centred: float32 sums stay accurate
    var = x.pow(2).mean((2, 3), keepdim=True)
    cov = (x * (target - mean_y)).mean((2, 3), keepdim=True)
    gain = torch.where(var > 1e-12, cov / var.clamp_min(1e-12), torch.zeros_like(var))
    return (gain * x + mean_y).clamp_(0, 1)


def detail_energy(image: torch.Tensor, window: int = DETAIL_WINDOW, within: torch.Tensor | None = None) -> torch.Tensor:
    """Local gradient energy: the mean of ``gx^2 + gy^2`` over the ``window`` x ``window`` square
    around each pixel, on the image's luma (the mean of its channels).

    ``gx``, ``gy`` are kornia's normalised Sobel derivatives (``kornia.filters.spatial_gradient``:
    intensity change per pixel); the window mean is a box filter with reflected borders. A blur
    lowers the energy; a global gain ``a`` scales it by ``a^2``. With ``within`` (a region, e.g. a
    portrait's background), the mean is over the window's pixels in the region only (a normalised
    box filter), so the region's pixels near its edge do not see what lies beyond it (the person's
    hair from the background); values outside the region mean nothing.

    Shape:
        image: ``(B, C, H, W)`` in [0, 1]; within: ``(B, 1, H, W)`` bool or None; returns
        ``(B, 1, H, W)`` >= 0 (units: (1/px)^2).
    """
    luma = image.mean(1, keepdim=True)  # (B, 1, H, W)
    gradient = kornia.filters.spatial_gradient(luma, mode="sobel", normalized=True)  # (B, 1, 2, H, W)
    energy = gradient.pow(2).sum(2)  # (B, 1, H, W)
    if within is None:
        return kornia.filters.box_blur(energy, (window, window), border_type="reflect")
    weight = within.to(energy.dtype)
    inside = kornia.filters.box_blur(energy * weight, (window, window), border_type="reflect")
    return inside / kornia.filters.box_blur(weight, (window, window), border_type="reflect").clamp_min(1e-12)


def detail_ratio(output: torch.Tensor, image: torch.Tensor, window: int = DETAIL_WINDOW) -> torch.Tensor:
    """How much of ``image``'s local detail ``output`` keeps: ``detail_energy(output) /
    detail_energy(image)`` per pixel (1: all of it, the image itself; near 0: blurred away; above
    1: sharper or noisier). Where the image is flat (:data:`FLAT_GRADIENT`) the ratio means little:
    :func:`flat_areas` marks those pixels, which the benchmark leaves out.

    Shape:
        output, image: ``(B, C, H, W)`` in [0, 1]; returns ``(B, 1, H, W)`` >= 0.
    """
    return _ratio(detail_energy(output, window), detail_energy(image, window))


def _ratio(energy: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    floor = 1e-3 * FLAT_GRADIENT**2  # keeps 0 / 0 finite in perfectly flat areas
    return (energy + floor) / (reference + floor)


def flat_areas(image: torch.Tensor, window: int = DETAIL_WINDOW) -> torch.Tensor:
    """Pixels whose local RMS gradient is below :data:`FLAT_GRADIENT` (five 8-bit levels per pixel):
    sky, walls, smooth skin, blown highlights, where little detail can be kept or lost. (The
    threshold reproduces the split of the project's first real-pair table to within 0.05 dB.)

    Shape:
        image: ``(B, C, H, W)`` in [0, 1]; returns ``(B, 1, H, W)`` bool.
    """
    return detail_energy(image, window) < FLAT_GRADIENT**2


def real_split(image: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The pixel sets :data:`REAL_SETS` of a real pair.

    ``all``: every pixel. With a subject ``mask`` (true = the subject the target keeps in focus):
    ``in_focus`` is the mask and ``defocus`` the rest of the picture. Without one, from how much of
    the input's detail the target keeps (:func:`detail_ratio` of the target vs the input):
    ``in_focus`` where it keeps >= :data:`DETAIL_KEEPS` (0.5), ``defocus`` where it keeps <=
    :data:`DETAIL_LOSES` (0.15), flat areas (:func:`flat_areas` of the input) in neither.

    Args:
        image: the input, tone-matched to the target (:func:`tone_match`).
        target: the wide-aperture shot.
        mask: optional subject mask (one per image).

    Shape:
        image, target: ``(B, C, H, W)`` in [0, 1]; mask: ``(B, 1, H, W)`` bool or None. Returns
        ``{name: (B, 1, H, W) bool}``.
    """
    return _split(detail_energy(image), detail_energy(target), mask)


def _split(image_energy: torch.Tensor, target_energy: torch.Tensor, mask: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """:func:`real_split` from the two :func:`detail_energy` maps."""
    everything = torch.ones_like(image_energy, dtype=torch.bool)
    if mask is not None:
        if mask.shape != everything.shape or mask.dtype != torch.bool:
            raise ValueError(f"real_split expects a (B, 1, H, W) bool mask for {tuple(everything.shape)} images, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        return {"all": everything, "in_focus": mask, "defocus": ~mask}
    kept, flat = _ratio(target_energy, image_energy), image_energy < FLAT_GRADIENT**2
    return {"all": everything, "in_focus": (kept >= DETAIL_KEEPS) & ~flat, "defocus": (kept <= DETAIL_LOSES) & ~flat}


def ssim_map(pred: torch.Tensor, target: torch.Tensor, kind: SSIMKind = "uniform", data_range: float = 1.0) -> torch.Tensor:
    """:func:`ssim`'s per-pixel map of the named ``kind`` on the interior, averaged over channels.

    Shape:
        pred, target: ``(B, C, H, W)`` in [0, data_range], at least the window (7 or 11); returns
        ``(B, 1, H - w + 1, W - w + 1)`` for a window of ``w`` pixels.
    """
    if kind == "gaussian":
        _check_pair("ssim_map (gaussian)", pred, target, data_range, GAUSSIAN_WINDOW)
        similarity = kornia_ssim_map(pred, target, GAUSSIAN_WINDOW, max_val=float(data_range), eps=0.0, padding="valid")
    elif kind == "uniform":
        _check_pair("ssim_map (uniform)", pred, target, data_range, UNIFORM_WINDOW)
        similarity = _uniform_ssim_map(pred, target, float(data_range))
    else:
        raise ValueError(f"unknown SSIM kind {kind!r}: expected 'gaussian' (11x11, sigma 1.5) or 'uniform' (7x7)")
    return similarity.mean(1, keepdim=True)


def mean_over_mask(similarity: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of an interior map (:func:`ssim_map`) over the pixels where the full-size ``mask``
    is true (the mask's border, outside the map, is cropped off).

    Shape:
        similarity: ``(B, 1, h, w)``; mask: ``(B, 1, H, W)`` bool, ``H - h`` and ``W - w`` even.
        Returns ``(B,)``: NaN where an image has no interior pixel in its mask.
    """
    margin = (mask.shape[-1] - similarity.shape[-1]) // 2
    inner = mask[..., margin:mask.shape[-2] - margin, margin:mask.shape[-1] - margin].to(similarity.dtype)
    return (similarity * inner).sum((1, 2, 3)) / inner.sum((1, 2, 3))


def ssim_masked(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, kind: SSIMKind = "uniform",
                data_range: float = 1.0) -> torch.Tensor:
    """:func:`ssim`'s map of the named ``kind`` averaged over the interior pixels where ``mask`` is
    true, and over channels. With every pixel in the mask it equals :func:`ssim` of that kind.
    (Default ``uniform``, skimage's default SSIM: the real-pair benchmark's definition.)

    Shape:
        pred, target: ``(B, C, H, W)`` in [0, data_range], at least the window (7 or 11); mask:
        ``(B, 1, H, W)`` bool. Returns ``(B,)``: NaN where an image has no interior pixel in its mask.
    """
    return mean_over_mask(ssim_map(pred, target, kind, data_range), mask)


def median_masked(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The median of ``values`` over the pixels where ``mask`` is true, per image (the lower of the
    two middle values for an even count, as ``torch.median``); NaN for an empty mask.

    Shape:
        values: ``(B, 1, H, W)``; mask: ``(B, 1, H, W)`` bool. Returns ``(B,)``.
    """
    medians = [v[m].median() if m.any() else v.new_tensor(float("nan")) for v, m in zip(values, mask)]
    return torch.stack(medians)


def real_pair_scores(output: torch.Tensor, image: torch.Tensor, target: torch.Tensor,
                     mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Every number of the real-pair benchmark for one batch of outputs.

    ``output`` and ``image`` are each tone-matched to ``target`` (:func:`tone_match`); the pixel
    sets come from the tone-matched input, the target and the optional subject ``mask``
    (:func:`real_split`). Then, for each set ``S`` of :data:`REAL_SETS` (keys ``psnr``, ``ssim``
    for ``all``; ``psnr_in_focus``, ``ssim_defocus`` ... for the others):

    * ``psnr{_S}``: :func:`psnr_masked` of the tone-matched output over ``S``;
    * ``ssim{_S}``: :func:`ssim_masked` over ``S``, skimage's default SSIM (7 x 7 uniform window);
    * ``detail_in_focus``, ``detail_defocus``: the median over ``S`` (flat areas left out) of
      :func:`detail_ratio` of the tone-matched output vs the tone-matched input: 1.0 for the input
      itself, about 1.1 / 0.07 for the f/1.8 targets of the project's real pairs;
    * ``fraction_in_focus``, ``fraction_defocus``: the share of the pixels in each set.

    Shape:
        output, image, target: ``(B, 3, H, W)`` in [0, 1]; mask: ``(B, 1, H, W)`` bool or None.
        Returns ``{key: (B,)}``; NaN where an image has no pixel in a set.
    """
    matched_image = tone_match(image, target)
    matched_output = matched_image if output is image else tone_match(output, target)
    image_energy = detail_energy(matched_image)
    sets = _split(image_energy, detail_energy(target), mask)
    ratio = _ratio(detail_energy(matched_output), image_energy)
    textured = image_energy >= FLAT_GRADIENT**2
    similarity = ssim_map(matched_output, target, "uniform")
    scores = {}
    for name, pixels in sets.items():
        suffix = "" if name == "all" else f"_{name}"
        scores[f"psnr{suffix}"] = psnr_masked(matched_output, target, pixels)
        scores[f"ssim{suffix}"] = mean_over_mask(similarity, pixels)
        if name != "all":
            scores[f"detail{suffix}"] = median_masked(ratio, pixels & textured)
            scores[f"fraction{suffix}"] = pixels.float().mean((1, 2, 3))
    return scores


# ----------------------------------------------------------------------------- portraits
# Photos with a subject mask and no target (``bokeh.evaluate portraits=``): how much of the photo's
# own detail a render keeps on the subject and on the background. The band along the mask's outline
# (hair, a coarse mask edge) belongs to neither set; energies are measured within each region, so
# neither side's 33 px windows see the other; flat pixels leave both sets, as in the real-pair
# benchmark: there is no detail to keep or lose there.

PORTRAIT_BAND = 0.02  # fraction of the photo's short side: the subject set is the mask shrunk by it, the background lies beyond the mask grown by it


def grow_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` dilated by a ``(2 radius + 1)`` square (separable max filter); pixels beyond the
    picture's border count as outside the mask, so it never grows in from the border.

    Shape:
        mask: ``(B, 1, H, W)`` bool; returns the same.
    """
    if radius <= 0:
        return mask
    side = 2 * radius + 1
    grown = F.max_pool2d(mask.float(), (1, side), stride=1, padding=(0, radius))  # zero padding: outside
    return F.max_pool2d(grown, (side, 1), stride=1, padding=(radius, 0)) > 0.5


def shrink_mask(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``mask`` eroded by a ``(2 radius + 1)`` square: the complement of the grown complement, so the
    picture's border does not count as outside (a person cut off by the frame keeps that edge).

    Shape:
        mask: ``(B, 1, H, W)`` bool; returns the same.
    """
    return ~grow_mask(~mask, radius)


def band_pixels(size: tuple[int, int], band: float = PORTRAIT_BAND) -> int:
    """The band's width in pixels for an image of ``size`` ``(H, W)``: ``round(band * min(H, W))``."""
    return round(band * min(size))


def _portrait_regions(image: torch.Tensor, mask: torch.Tensor, band: float) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``{name: (set, region, the photo's detail energy within the region)}`` of :func:`portrait_sets`."""
    if mask.shape != (image.shape[0], 1, *image.shape[-2:]) or mask.dtype != torch.bool:
        raise ValueError(f"portrait_sets expects a (B, 1, H, W) bool mask for {tuple(image.shape)} images, got {mask.dtype} {tuple(mask.shape)}")
    radius = band_pixels(tuple(image.shape[-2:]), band)
    regions = {"subject": shrink_mask(mask, radius), "background": ~grow_mask(mask, radius)}
    found = {}
    for name, region in regions.items():
        energy = detail_energy(image, within=region)
        found[name] = (region & (energy >= FLAT_GRADIENT**2), region, energy)
    return found


def portrait_sets(image: torch.Tensor, mask: torch.Tensor, band: float = PORTRAIT_BAND) -> dict[str, torch.Tensor]:
    """Where a portrait's detail is scored. The regions: ``subject``, the mask shrunk by ``band`` of
    the short side (:func:`shrink_mask`), and ``background``, the pixels beyond the mask grown by as
    much (:func:`grow_mask`). Each set is its region's textured part: where the photo's detail energy
    *within the region* (:func:`detail_energy` with ``within``) is at least :data:`FLAT_GRADIENT`
    squared (local RMS gradient 5/255 per px over 33 x 33 windows), so flat sky, walls, smooth skin
    and an already soft background are left out, and a background pixel beside the person is not
    counted as textured for the person's hair in its window.

    Shape:
        image: ``(B, 3, H, W)`` in [0, 1] (the photo); mask: ``(B, 1, H, W)`` bool (true = the
        subject). Returns ``{"subject": (B, 1, H, W) bool, "background": (B, 1, H, W) bool}``.
    """
    return {name: pixels for name, (pixels, _, _) in _portrait_regions(image, mask, band).items()}


def portrait_detail(output: torch.Tensor, image: torch.Tensor, mask: torch.Tensor, band: float = PORTRAIT_BAND) -> dict[str, torch.Tensor]:
    """The detail a render keeps on a portrait: ``detail_subject`` and ``detail_background``, the
    median over each set of :func:`portrait_sets` of the output's detail energy over the photo's,
    both within the set's region (:func:`detail_ratio`'s ratio; no tone match: there is no target),
    and ``fraction_subject``, ``fraction_background``, the share of the picture in each set. 1.0 for
    the photo itself; the photo on the person over a strong blur scores 1.0 and near 0.

    Shape:
        output, image: ``(B, 3, H, W)`` in [0, 1]; mask: ``(B, 1, H, W)`` bool. Returns ``{key: (B,)}``,
        NaN where an image has no pixel in a set.
    """
    _check_pair("portrait_detail", output, image, 1.0)
    scores = {}
    for name, (pixels, region, reference) in _portrait_regions(image, mask, band).items():
        ratio = _ratio(detail_energy(output, within=region), reference)
        scores[f"detail_{name}"] = median_masked(ratio, pixels)
        scores[f"fraction_{name}"] = pixels.float().mean((1, 2, 3))
    return scores


def matte_iou(matte: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Intersection over union (Jaccard index, torchmetrics' ``binary_jaccard_index``) of
    ``matte > threshold`` and the target's in-focus region, per image, over the pixels whose target
    is known; NaN for an image with none known or where both sets are empty.

    Shape:
        matte: ``(B, 1, H, W)`` in [0, 1]; target: ``(B, 1, H, W)`` in {0, 1}, negative where unknown.
        Returns ``(B,)`` in [0, 1].
    """
    from torchmetrics.functional.classification import binary_jaccard_index

    if matte.shape != target.shape:
        raise ValueError(f"matte_iou needs matte and target of one shape, got {tuple(matte.shape)} and {tuple(target.shape)}")
    scores = []
    for kept, wanted in zip(matte.detach().float(), target):
        labels = torch.where(wanted < 0, -1, (wanted > 0.5).long())
        known = labels >= 0
        if not ((kept > threshold) & known).any() and not (labels == 1).any():
            scores.append(torch.tensor(float("nan")))
            continue
        scores.append(binary_jaccard_index(kept, labels, threshold=threshold, ignore_index=-1).float().cpu())
    return torch.stack(scores).to(matte.device)


def gaussian_blur(sigma: float):
    """A function blurring ``(B, C, H, W)`` images with a Gaussian of ``sigma`` pixels (kernel
    2 * ceil(3 sigma) + 1, reflected borders): the blur baselines of :mod:`bokeh.evaluate` and the
    detail measure of :mod:`bokeh.evaluate.real`."""
    size = 2 * math.ceil(3 * sigma) + 1
    return lambda image: kornia.filters.gaussian_blur2d(image, (size, size), (sigma, sigma), border_type="reflect")


def unscorable(scores, needed=()) -> str | None:
    """Why a row of scores cannot join a mean (``None`` if it can): the scores among ``needed`` (those
    every image gives, e.g. the all-pixel PSNR and SSIM) that are not finite. A uniform image, or a
    target identical to its photo, scores an infinite PSNR and measures nothing: every aggregation
    (real pairs, portraits, synthetic sets) skips such a row with one line. (A split's score may be
    NaN, no such pixels, or infinite, the identity on pixels the target keeps sharp, by design.)"""
    bad = [f"{key}={value:g}" for key, value in scores.items()
           if key in needed and isinstance(value, float) and not math.isfinite(value)]
    return ", ".join(bad) or None


def unscorable_line(name, reason: str) -> str:
    """The one line that says a row was skipped (:func:`unscorable`), naming the file."""
    return (f"  {name}: skipped: its scores are not finite ({reason}): a uniform image, or a target identical "
            f"to its photo, measures nothing")
