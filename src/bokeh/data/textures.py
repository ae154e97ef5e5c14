"""Textures for synthetic scenes: photographs shipped with scikit-image, and procedural patterns.

Only the files named in :data:`PHOTOS` and :data:`GRAY_TEXTURES` are ever read. The Middlebury
'motorcycle' stereo pair in scikit-image's data folder (a real photo with true disparity) is
reserved for evaluation: :data:`RESERVED` names it, and :func:`load_texture` refuses it.

Value conventions: textures are ``float32`` in [0, 1]; colour ones ``(h, w, 3)``, gray ``(h, w)``.
"""

from __future__ import annotations

import functools

import numpy as np
import skimage.data
from PIL import Image

#: Colour photographs (loaded through ``skimage.data.<name>()``, all in the package's own folder).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "immunohistochemistry")
#: Gray photographs of surfaces and things, tinted when used.
GRAY_TEXTURES = ("brick", "grass", "gravel", "camera", "moon", "coins", "page", "text")
#: Held out for evaluation: never a texture, never training data.
RESERVED = ("stereo_motorcycle",)


def load_texture(name: str) -> Image.Image:
    """One of :data:`PHOTOS` or :data:`GRAY_TEXTURES` as a PIL image (``RGB`` or ``L``)."""
    if name in RESERVED or "motorcycle" in name:
        raise ValueError(f"{name!r} is reserved for evaluation and must not be used as a texture")
    if name not in PHOTOS + GRAY_TEXTURES:
        raise ValueError(f"unknown texture {name!r}; choose from {PHOTOS + GRAY_TEXTURES}")
    array = getattr(skimage.data, name)()
    return Image.fromarray(np.ascontiguousarray(array[..., :3] if array.ndim == 3 else array))


@functools.lru_cache(maxsize=1)
def photo_bank() -> tuple[Image.Image, ...]:
    """All colour photographs, loaded once per process."""
    return tuple(load_texture(name).convert("RGB") for name in PHOTOS)


@functools.lru_cache(maxsize=1)
def gray_bank() -> tuple[Image.Image, ...]:
    """All gray textures, loaded once per process."""
    return tuple(load_texture(name).convert("L") for name in GRAY_TEXTURES)


def photo_patch(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A random crop of a random photograph, resized (0.7x to 1.6x) to ``shape``, flipped, tinted.

    Nearly flat crops (black sky, a wall) are redrawn up to twice: layers need detail for their
    blur to show.

    Shape:
        returns ``(h, w, 3)`` ``float32`` in [0, 1].
    """
    for _ in range(3):
        photo = photo_bank()[rng.integers(len(photo_bank()))]
        patch = _crop_resize(rng, photo, shape, np.float32)
        if patch.std() > 0.04:
            break
    return np.clip(patch * _tint(rng, 0.15), 0.0, 1.0)


def gray_patch(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A random gray texture crop, resized to ``shape`` and coloured by a random tint.

    Shape:
        returns ``(h, w, 3)`` ``float32`` in [0, 1].
    """
    gray = _crop_resize(rng, gray_bank()[rng.integers(len(gray_bank()))], shape, np.uint8)
    return _tint_ramp(rng)[gray]


def gray_texture(rng: np.random.Generator) -> np.ndarray:
    """A whole gray texture with a random tint, for tiling (the ground).

    Shape:
        returns ``(h, w, 3)`` ``float32`` in [0, 1].
    """
    gray = np.asarray(gray_bank()[rng.integers(3)])  # GRAY_TEXTURES[:3]: brick, grass, gravel
    return _tint_ramp(rng)[gray]


def _tint_ramp(rng: np.random.Generator) -> np.ndarray:
    """A lookup table from gray levels 0-255 to a random dark-to-light colour ramp, ``(256, 3)``."""
    base, tip = rng.uniform(0.0, 0.3, 3), rng.uniform(0.55, 1.0, 3)
    return (base + np.linspace(0.0, 1.0, 256)[:, None] * (tip - base)).astype(np.float32)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0, cells: int = 96) -> np.ndarray:
    """Spectral-synthesis 1/f^beta noise on a coarse grid, upsampled (bicubic) to ``shape``.

    Shape:
        returns ``(h, w)`` ``float32`` in [0, 1].
    """
    h, w = shape
    grid = (max(4, int(cells * h / max(h, w))), max(4, int(cells * w / max(h, w))))
    fy, fx = np.fft.fftfreq(grid[0])[:, None], np.fft.rfftfreq(grid[1])[None]
    amplitude = 1.0 / np.maximum(np.hypot(fy, fx), 1.0 / max(grid)) ** (beta / 2)
    spectrum = amplitude * (rng.standard_normal(amplitude.shape) + 1j * rng.standard_normal(amplitude.shape))
    field = np.fft.irfft2(spectrum, s=grid)
    field = (field - field.min()) / max(field.max() - field.min(), 1e-8)
    image = Image.fromarray(field.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC)
    return np.clip(np.asarray(image, np.float32), 0.0, 1.0)


def procedural_patch(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Fractal noise through a random colour ramp, with random hard-edged rectangles on top.

    The rectangles give sharp edges at every scale (like windows, books or tiles), so blur is
    visible on procedural layers too.

    Shape:
        returns ``(h, w, 3)`` ``float32`` in [0, 1].
    """
    h, w = shape
    colors = rng.uniform(0.0, 1.0, (3, 3))  # a ramp through three colours
    ramp = np.stack([np.interp(np.linspace(0, 1, 256), [0, 0.5, 1], colors[:, c]) for c in range(3)], 1)
    level = np.round(fractal_noise(rng, shape, beta=rng.uniform(1.5, 3.0)) * 255).astype(np.uint8)
    ramp = ramp.astype(np.float32)
    image = ramp[level]
    for _ in range(int(rng.integers(0, 25))):
        rh, rw = int(rng.integers(1, max(2, h // 4))), int(rng.integers(1, max(2, w // 4)))
        y, x = int(rng.integers(0, max(1, h - rh))), int(rng.integers(0, max(1, w - rw)))
        image[y : y + rh, x : x + rw] = np.clip(ramp[rng.integers(256)] * rng.uniform(0.6, 1.3), 0, 1)  # muted
    return image


def any_patch(rng: np.random.Generator, shape: tuple[int, int], photo_share: float = 0.6) -> np.ndarray:
    """A photo patch with probability ``photo_share``, else a tinted gray or procedural one."""
    draw = rng.uniform()
    if draw < photo_share:
        return photo_patch(rng, shape)
    if draw < photo_share + (1 - photo_share) / 2:
        return gray_patch(rng, shape)
    return procedural_patch(rng, shape)


def _crop_resize(rng: np.random.Generator, image: Image.Image, shape: tuple[int, int], dtype) -> np.ndarray:
    """A random crop of ``image`` with the aspect of ``shape``, resized to ``shape``, maybe mirrored."""
    h, w = shape
    W, H = image.size
    zoom = rng.uniform(0.7, 1.6)  # output pixels per source pixel
    ch, cw = min(H, h / zoom), min(W, w / zoom)
    scale = min(ch / h, cw / w)  # keep the aspect of the target
    ch, cw = h * scale, w * scale
    y0, x0 = rng.uniform(0, max(H - ch, 0.0)), rng.uniform(0, max(W - cw, 0.0))  # max: rounding
    patch = image.resize((w, h), Image.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.uniform() < 0.5:
        patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(patch, np.float32) / 255.0 if dtype == np.float32 else np.asarray(patch, dtype)


def _tint(rng: np.random.Generator, strength: float) -> np.ndarray:
    return rng.uniform(1.0 - strength, 1.0 + strength, 3).astype(np.float32)
