"""Photos with a subject mask and no target (a portrait and its person mask): the matte's test.

A folder holds ``images/<name>.jpg`` (or .png) and ``masks/<name>.png`` (white = the subject, the
person: hair, face, shoulders), as the PFCN portrait set is laid out. Nothing here renders; the
scores live in :mod:`bokeh.evaluate` and :class:`bokeh.callbacks.PortraitMatteScores`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bokeh.data.pairs import DataLayoutError

LAYOUT = "expected images/<name>.jpg with masks/<name>.png beside them (white = the subject)"


@dataclass(frozen=True)
class Portrait:
    """One photo with its subject mask."""

    name: str
    image: Path
    mask: Path


def list_portraits(folder: str | Path) -> list[Portrait]:
    """The photos of ``folder/images`` that have a mask ``folder/masks/<stem>.png``, sorted by name.

    Raises:
        DataLayoutError: the folder, ``images/`` or ``masks/`` is missing, no photo has a mask, or
            two files of one name (``x.jpg`` and ``x.png``) in either folder.
    """
    from bokeh.images import SameStemError, images_by_stem

    folder = Path(folder).expanduser()
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise DataLayoutError(f"{folder} is not a portrait folder: {LAYOUT}")
    try:  # every image type read here (TIFF too); two files of one name would be scored twice under it
        photos, by_stem = images_by_stem(images), images_by_stem(masks)
    except SameStemError as error:
        raise DataLayoutError(str(error)) from None
    found = [Portrait(stem, photo, by_stem[stem]) for stem, photo in photos.items() if stem in by_stem]
    if not found:
        raise DataLayoutError(f"{folder}: no photo in images/ has a mask in masks/; {LAYOUT}")
    return found


def read_portrait(portrait: Portrait, short_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The photo ``(H, W, 3)`` ``uint8`` (conversions of :func:`bokeh.images.read_rgb`) and its mask
    ``(H, W)`` ``bool``, both resized so the short side is ``short_side`` (None: as stored).

    Raises:
        ValueError: an unreadable file, or a mask whose size differs from its photo's (naming them).
    """
    from bokeh.images import read_rgb

    image = read_rgb(portrait.image)
    mask = read_rgb(portrait.mask).max(-1) > 127
    _check_size(portrait, mask.shape, image.shape[:2])
    if short_side is not None:
        scale = short_side / min(image.shape[:2])
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.BILINEAR)) > 127
    return image, mask


def _check_size(portrait: Portrait, mask: tuple[int, int], image: tuple[int, int]) -> None:
    if tuple(mask) != tuple(image[:2]):
        raise ValueError(f"{portrait.mask}: mask of {mask[0]} x {mask[1]} does not match its photo "
                         f"{portrait.image} of {image[0]} x {image[1]}")


def check_portraits(portraits: list[Portrait], skipped=None) -> list[Portrait]:
    """``portraits`` whose photo's and mask's headers have been read and agree in size, and whose
    mask holds both a subject and a background: a mask that is all black (no subject) or all white
    (no background) has nothing to score on one side (its scores would be NaN) and is left out,
    ``skipped(portrait, reason)`` told (as ``photo_pairs`` skips a photo).

    Raises:
        bokeh.images.ImageError: an unreadable file (naming it).
        ValueError: a mask whose size differs from its photo's, in one sentence naming the mask.
        DataLayoutError: every mask was left out.
    """
    from bokeh.images import read_rgb, read_size

    kept = []
    for portrait in portraits:
        _check_size(portrait, read_size(portrait.mask), read_size(portrait.image))
        subject = read_rgb(portrait.mask).max(-1) > 127
        reason = ("its mask is all black (no subject to score)" if not subject.any() else
                  "its mask is all white (no background to score)" if subject.all() else None)
        if reason is None:
            kept.append(portrait)
        elif skipped is not None:
            skipped(portrait, reason)
    if portraits and not kept:
        raise DataLayoutError(f"no portrait left to score: every mask is all black or all white ({len(portraits)} skipped); {LAYOUT}")
    return kept
