"""Where to tap: focus points drawn from what a pair knows about its in-focus region.

A pair knows its in-focus region from a subject mask (``focal/``: photo pairs, real pairs) or from
its per-pixel blur radius (``coc/``: synthetic scenes, radius below
:data:`bokeh.metrics.IN_FOCUS_MAX_RADIUS`). Training taps a random point well inside that region
(:func:`sample_point`), or none at all in a share of the samples (auto focus); evaluation taps the
point deepest inside it (:func:`interior_point`), the same on every run.

Points are ``(x, y)`` fractions of the width and height of the (cropped) image, as the model's
``focus`` input takes them (:mod:`bokeh.models.controls`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bokeh.models.controls import NO_FOCUS

TAP_MARGIN = 0.03  # a training tap lies at least this fraction of the short side inside the region
WORK_SIDE = 128  # interior_point erodes a copy of the mask scaled to about this short side


def in_focus_region(mask: np.ndarray | None, radius: np.ndarray | None, in_focus_max_radius: float = 1.0) -> np.ndarray | None:
    """The ``(H, W)`` bool in-focus region: the subject mask where there is one (> 0.5 of its range),
    else where the blur radius is below ``in_focus_max_radius`` px, else ``None`` (unknown)."""
    if mask is not None:
        return np.asarray(mask) > (127 if np.asarray(mask).dtype == np.uint8 else 0.5)
    if radius is not None:
        return np.asarray(radius) < in_focus_max_radius
    return None


def _erode(region: torch.Tensor, steps: int) -> torch.Tensor:
    """``region`` ``(1, 1, H, W)`` float {0, 1} eroded ``steps`` times by a 3 x 3 square (borders count as outside)."""
    for _ in range(steps):
        region = -F.max_pool2d(-F.pad(region, (1, 1, 1, 1), value=0.0), 3, stride=1)
    return region


def sample_point(region: np.ndarray | None, generator: torch.Generator | None = None,
                 auto_share: float = 0.3) -> tuple[float, float]:
    """A random tap inside ``region`` (at least :data:`TAP_MARGIN` of the short side from its edge
    where the region is wide enough), or :data:`~bokeh.models.controls.NO_FOCUS` with probability
    ``auto_share`` and whenever the region is unknown or empty.

    Shape:
        region: ``(H, W)`` bool or None. Returns ``(x, y)`` fractions of pixel centres in (0, 1).
    """
    if region is None or not region.any() or float(torch.rand((), generator=generator)) < auto_share:
        return NO_FOCUS
    height, width = region.shape
    inner = _erode(torch.from_numpy(region.astype(np.float32))[None, None], max(1, round(TAP_MARGIN * min(height, width))))[0, 0]
    ys, xs = np.nonzero(inner.numpy() > 0.5) if bool((inner > 0.5).any()) else np.nonzero(region)
    k = int(torch.randint(0, len(ys), (), generator=generator))
    return (float(xs[k]) + 0.5) / width, (float(ys[k]) + 0.5) / height


def interior_point(region: np.ndarray) -> tuple[float, float]:
    """The point deepest inside ``region``: erode it until one more step would empty it, then take
    the remaining pixel nearest the remaining pixels' centroid (deterministic; computed on a copy
    scaled to a short side of about :data:`WORK_SIDE`).

    Shape:
        region: ``(H, W)`` bool, not empty. Returns ``(x, y)`` fractions in (0, 1).

    Raises:
        ValueError: an empty region (no pixel in focus: nothing to tap).
    """
    region = np.asarray(region, bool)
    if not region.any():
        raise ValueError("the in-focus region is empty: there is no point to tap")
    height, width = region.shape
    scale = min(1.0, WORK_SIDE / min(height, width))
    small = torch.from_numpy(region.astype(np.float32))[None, None]
    if scale < 1.0:
        small = F.interpolate(small, size=(max(1, round(height * scale)), max(1, round(width * scale))), mode="area")
    current = (small > 0.5).float() if bool((small > 0.5).any()) else (small > 0).float()
    while True:
        eroded = _erode(current, 1)
        if not bool((eroded > 0.5).any()):
            break
        current = eroded
    ys, xs = np.nonzero(current[0, 0].numpy() > 0.5)
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    h, w = current.shape[-2:]
    return (float(xs[k]) + 0.5) / w, (float(ys[k]) + 0.5) / h
