"""Where to tap: focus points drawn from what a pair knows about its in-focus region.

A pair knows its in-focus region from a subject mask (``focal/``: photo pairs, real pairs) or from
its per-pixel blur radius (``coc/``: synthetic scenes, radius below
:data:`bokeh.metrics.IN_FOCUS_MAX_RADIUS`). Training taps a random point well inside that region
(:func:`sample_point`), or none at all in a share of the samples (auto focus); evaluation taps the
point deepest inside it (:func:`interior_point`, kornia's distance transform), the same on every run.

Points are ``(x, y)`` fractions of the width and height of the (cropped) image, as the model's
``focus`` input takes them (:mod:`bokeh.models.controls`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bokeh.models.controls import NO_FOCUS

TAP_MARGIN = 0.03  # a training tap lies at least this fraction of the short side inside the region
INTERIOR_SIDE = 256  # interior_point measures depth on a copy of the mask whose long side is at most this


def in_focus_region(mask: np.ndarray | None, radius: np.ndarray | None, in_focus_max_radius: float = 1.0) -> np.ndarray | None:
    """The ``(H, W)`` bool in-focus region: the subject mask where there is one (> 0.5 of its range),
    else where the blur radius is below ``in_focus_max_radius`` px, else ``None`` (unknown)."""
    if mask is not None:
        return np.asarray(mask) > (127 if np.asarray(mask).dtype == np.uint8 else 0.5)
    if radius is not None:
        return np.asarray(radius) < in_focus_max_radius
    return None


UNKNOWN = -1.0  # matte-target value of a pixel whose focus the pair does not know (no loss there)


def matte_target(mask: np.ndarray | None, radius: np.ndarray | None, in_focus_max_radius: float = 1.0) -> np.ndarray | None:
    """What the model's matte should be: 1 where the pair is in focus, 0 where it is not.

    The blur radius is exact where the pair has one (synthetic scenes, photo pairs: radius below
    ``in_focus_max_radius`` px), else the subject mask (> 0.5 of its range; real pairs with a
    ``focal/`` mask), else ``None``: a pair that knows neither leaves the matte free.

    Shape:
        mask, radius: ``(H, W)`` or None; returns ``(H, W)`` ``float32`` in {0, 1}, or None.
    """
    if radius is not None:
        return (np.asarray(radius) < in_focus_max_radius).astype(np.float32)
    if mask is not None:
        return in_focus_region(mask, None).astype(np.float32)
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


def interior_point(mask: np.ndarray | torch.Tensor, side: int = INTERIOR_SIDE) -> tuple[float, float] | None:
    """The point deepest inside ``mask``: the pixel farthest from the mask's outside (and from the
    picture's border), as ``(x, y)`` fractions of the width and height (pixel centres: ``(i + 0.5) /
    n``); the first such pixel in row-major order when several tie. Deterministic.

    The mask is first reduced (area average, then > 0.5) so its long side is at most ``side``
    pixels, and distances come from ``kornia.contrib.distance_transform`` on the reduced mask, so
    the answer is one reduced pixel coarse (about 0.4 % of the long side).

    Shape:
        mask: ``(H, W)`` bool (numpy or torch). Returns ``(x, y)`` in (0, 1), or None for an empty mask.
    """
    from kornia.contrib import distance_transform

    region = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask).float()[None, None]
    if region.ndim != 4 or not region.any():
        return None
    height, width = region.shape[-2:]
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        reduced = torch.nn.functional.interpolate(region, size=size, mode="area") > 0.5
        region = reduced.float() if reduced.any() else (torch.nn.functional.interpolate(region, size=size, mode="area") > 0).float()
    outside = torch.nn.functional.pad(1.0 - region, (1, 1, 1, 1), value=1.0)  # the border counts as outside
    distance = distance_transform(outside)[0, 0, 1:-1, 1:-1] * region[0, 0]  # (h, w): 0 outside the mask
    index = int(torch.argmax(distance.flatten()))
    h, w = distance.shape
    return ((index % w + 0.5) / w, (index // w + 0.5) / h)
