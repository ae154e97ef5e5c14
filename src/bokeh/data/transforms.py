"""Paired transforms: the same crop and flip for both images of a pair, and fitting to multiples of 8.

Images stay ``(H, W, 3)`` ``uint8`` arrays while they are cropped (cheap), and become ``(3, h, w)``
tensors in [-1, 1] last (:func:`bokeh.images.to_tensor`).

Validation images are fitted to a multiple of 8 (Glass-Net's three stride-2 convs) by padding the
bottom and right edges (edge pixels repeated) or by cutting them off. The original size travels
with the batch (``batch["size"]``) and :func:`unpad` restores it before metrics.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from bokeh.images import to_tensor

FitMode = Literal["pad", "crop"]
MULTIPLE = 8


def random_crop_box(size: tuple[int, int], crop: tuple[int, int], generator: torch.Generator | None = None) -> tuple[int, int]:
    """Uniformly random ``(top, left)`` of a ``crop = (h, w)`` window inside ``size = (H, W)``."""
    (height, width), (h, w) = size, crop
    if h > height or w > width:
        raise ValueError(f"crop {h}x{w} does not fit in an image of {height}x{width}")
    top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
    return top, left


def fits(size: tuple[int, int], crop: tuple[int, int]) -> bool:
    """True if a ``crop`` window fits in an image of ``size`` (both ``(H, W)``)."""
    return size[0] >= crop[0] and size[1] >= crop[1]


def paired_train_crop(
    original: np.ndarray,
    bokeh: np.ndarray,
    crop: tuple[int, int],
    flip: bool = True,
    rotate_to_fit: bool = True,
    generator: torch.Generator | None = None,
    extra: np.ndarray | None = None,
) -> tuple[np.ndarray, ...]:
    """The same random window (and, with ``flip``, the same left-right flip, p = 0.5) of both images.

    With ``rotate_to_fit``, a pair the crop fits only when turned (a portrait photo and a landscape
    crop) is turned by 90 degrees first, both images alike. ``extra`` (a per-pixel map such as the
    blur radius) gets the same turn, window and flip and is returned third.

    Shape:
        original, bokeh: ``(H, W, 3)`` (same size), extra ``(H, W)``; returns two ``(h, w, 3)`` views
        (and an ``(h, w)`` one), ``crop = (h, w)``.
    """
    if original.shape != bokeh.shape:
        raise ValueError(f"pair sizes differ: {original.shape[:2]} vs {bokeh.shape[:2]}")
    arrays = [original, bokeh] + ([] if extra is None else [extra])
    size = original.shape[:2]
    if not fits(size, crop) and rotate_to_fit and fits(size[::-1], crop):
        arrays = [np.rot90(a) for a in arrays]
    top, left = random_crop_box(arrays[0].shape[:2], crop, generator)
    window = (slice(top, top + crop[0]), slice(left, left + crop[1]))
    arrays = [a[window] for a in arrays]
    if flip and bool(torch.rand((), generator=generator) < 0.5):
        arrays = [a[:, ::-1] for a in arrays]
    return tuple(arrays)


def pad_to_multiple(image: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right edges (repeating the edge pixels) up to a multiple of ``multiple``.

    Shape:
        image: ``(..., H, W)`` with 3 or 4 dimensions; returns ``((..., H', W'), (H, W))`` with
        ``H'``, ``W'`` the next multiples. :func:`unpad` undoes it.
    """
    height, width = image.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        image = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate")
    return image, (height, width)


def crop_to_multiple(image: np.ndarray, multiple: int = MULTIPLE) -> np.ndarray:
    """Cut the bottom and right edges down to a multiple of ``multiple``. Shape: ``(H, W, ...)``."""
    height, width = image.shape[:2]
    if height < multiple or width < multiple:
        raise ValueError(f"image of {height}x{width} is smaller than {multiple}x{multiple}")
    return image[: height - height % multiple, : width - width % multiple]


def unpad(image: torch.Tensor, size) -> torch.Tensor:
    """Cut a padded image back to ``size``: ``(H, W)``, or ``batch["size"]`` (``(B, 2)``, equal rows).

    Shape:
        image: ``(..., H', W')``; returns ``(..., H, W)``.
    """
    size = torch.as_tensor(size).reshape(-1, 2)
    if not bool((size == size[0]).all()):
        raise ValueError(f"unpad needs one size for the whole batch, got {size.tolist()}: use batch size 1")
    height, width = int(size[0, 0]), int(size[0, 1])
    return image[..., :height, :width]


def to_pair_tensors(original: np.ndarray, bokeh: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Both images as network tensors. Shape: ``(H, W, 3)`` ``uint8`` -> ``(3, H, W)`` in [-1, 1]."""
    return to_tensor(np.ascontiguousarray(original)), to_tensor(np.ascontiguousarray(bokeh))


def fit_for_eval(original: np.ndarray, bokeh: np.ndarray, fit: FitMode = "pad") -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """A whole validation pair as tensors whose sides are multiples of 8, and the size to restore.

    ``fit="pad"`` keeps every pixel (the padding is cut off again by :func:`unpad` with the returned
    size); ``fit="crop"`` drops up to 7 rows and columns and returns the cropped size.

    Shape:
        original, bokeh: ``(H, W, 3)`` ``uint8``; returns two ``(3, H', W')`` tensors and ``(h, w)``.
    """
    if fit == "crop":
        original, bokeh = crop_to_multiple(original), crop_to_multiple(bokeh)
        image, target = to_pair_tensors(original, bokeh)
        return image, target, tuple(image.shape[-2:])
    if fit != "pad":
        raise ValueError(f"fit must be 'pad' or 'crop', got {fit!r}")
    image, target = to_pair_tensors(original, bokeh)
    image, size = pad_to_multiple(image)
    target, _ = pad_to_multiple(target)
    return image, target, size


def fit_map(values: np.ndarray, fit: FitMode = "pad") -> torch.Tensor:
    """A per-pixel map (e.g. the blur radius) fitted to multiples of 8 exactly as :func:`fit_for_eval`
    fits its image: padded with edge values or cut.

    Shape:
        values: ``(H, W)``; returns ``(1, H', W')`` ``float32``.
    """
    if fit == "crop":
        return torch.from_numpy(np.ascontiguousarray(crop_to_multiple(values), np.float32))[None]
    if fit != "pad":
        raise ValueError(f"fit must be 'pad' or 'crop', got {fit!r}")
    return pad_to_multiple(torch.from_numpy(np.ascontiguousarray(values, np.float32))[None, None])[0][0]
