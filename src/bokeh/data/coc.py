"""Per-pixel circle-of-confusion maps kept beside synthetic pairs: ``<root>/coc/<name>.png``.

The synthetic generator knows, for every pixel, the radius of the blur disc it rendered there: the
thin-lens circle of confusion (:meth:`bokeh.data.optics.ThinLens.coc_radius`) of the nearest surface,
capped at the scene's largest radius as the renderer caps it. Validation uses it to split the error
into in-focus and defocused pixels (:mod:`bokeh.metrics`). EBB! has no depth, so its pairs carry no map.

Format: a 16-bit grayscale PNG of the radius in hundredths of a pixel (0 to 655.35 px), lossless and
about a tenth of the size of the pair's JPEGs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from bokeh.images import ImageError, write_image

SCALE = 100.0  # stored units per pixel of radius
MAX_RADIUS = np.iinfo(np.uint16).max / SCALE


def encode(radius: np.ndarray) -> np.ndarray:
    """Radii in pixels (``(H, W)``, >= 0; larger ones saturate) to the stored ``uint16`` map."""
    radius = np.asarray(radius, np.float64)
    if radius.ndim != 2 or not np.isfinite(radius).all() or (radius < 0).any():
        raise ValueError(f"a CoC map is an (H, W) array of finite radii >= 0 px, got shape {radius.shape}")
    return np.round(np.minimum(radius, MAX_RADIUS) * SCALE).astype(np.uint16)


def write_coc(path: str | os.PathLike, radius: np.ndarray) -> Path:
    """Write the CoC map of ``radius`` (``(H, W)`` px) as a 16-bit PNG, atomically; return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: CoC maps are 16-bit PNG files (.png)")
    return write_image(path, encode(radius))


def read_coc(path: str | os.PathLike) -> np.ndarray:
    """The CoC map at ``path`` as ``(H, W)`` ``float32`` radii in pixels.

    Raises:
        ImageError: the file is missing, unreadable or not a 16-bit grayscale PNG.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            stored = np.asarray(image)
    except (OSError, ValueError) as error:
        raise ImageError(path, f"cannot read the CoC map ({error})") from error
    if stored.ndim != 2 or stored.dtype not in (np.uint16, np.int32):
        raise ImageError(path, f"not a CoC map: expected a 16-bit grayscale PNG, got {stored.dtype} of shape {stored.shape}")
    return (stored.astype(np.float32) / np.float32(SCALE)).astype(np.float32)
