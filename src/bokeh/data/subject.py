"""The subject matte of a training input: the segmenter's matte (:mod:`bokeh.runtimes.segmenter`),
which a Glass-Net with ``subject_input`` takes beside the image (issue 30 item 3).

A pair set caches its mattes as ``subject/<name>.png`` (8-bit gray, 255 = subject; :data:`SUBJECT_DIR`),
written once by :func:`cache_subject_mattes` (photo-pair sets: :mod:`bokeh.data.photo_pairs` writes
them with the set); a pair without one gets its matte computed when it is loaded (the synthetic
scenes). The matte is always that of the whole input photo, before crops and flips, which then move
it with the image (:class:`bokeh.data.pairs.PairDataset`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from bokeh.data.layout import INPUT_DIR, SUBJECT_DIR


def subject_matte(image: np.ndarray) -> np.ndarray:
    """The segmenter's subject matte of one photo.

    Shape:
        image: ``(H, W, 3)`` ``uint8`` RGB; returns ``(H, W)`` ``float32`` in [0, 1] (1 = subject).

    Raises:
        bokeh.runtimes.segmenter.SegmenterMissing: the segmenter is not installed (one sentence).
    """
    from bokeh.images import to_tensor
    from bokeh.runtimes.segmenter import default_segmenter

    return default_segmenter().matte(to_tensor(image)[None])[0, 0].numpy().astype(np.float32)


def to_uint8(matte: np.ndarray) -> np.ndarray:
    """``(H, W)`` in [0, 1] -> ``(H, W)`` ``uint8`` 0..255, as the cache stores it."""
    return np.round(np.clip(matte, 0.0, 1.0) * 255.0).astype(np.uint8)


def read_subject(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A cached subject matte as ``(H, W)`` ``float32`` in [0, 1] of the pair's ``size``.

    Raises:
        ValueError: a matte whose size differs from its pair's, or an unreadable file (naming it).
    """
    try:
        with Image.open(path) as image:
            matte = np.asarray(image.convert("L"), np.float32) / 255.0
    except OSError as error:
        raise ValueError(f"{path}: cannot read this subject matte ({error}); delete it and it is computed again") from None
    if matte.shape != tuple(size):
        raise ValueError(f"{path}: subject matte of {matte.shape[0]}x{matte.shape[1]} does not match its image's "
                         f"{size[0]}x{size[1]}; delete it and it is computed again")
    return matte


def cache_subject_mattes(root: str | Path, names: list[str] | None = None) -> int:
    """Write ``root/subject/<name>.png`` for every input ``root/original/<name>.*`` (or those of
    ``names``) that has none yet; each file atomically. Returns how many were written.

    Raises:
        bokeh.runtimes.segmenter.SegmenterMissing: the segmenter is not installed.
    """
    from bokeh.images import read_rgb, write_image

    root = Path(root)
    inputs = {p.stem: p for p in sorted((root / INPUT_DIR).iterdir()) if p.is_file() and not p.name.startswith(".")}
    written = 0
    for name in sorted(inputs if names is None else names):
        target = root / SUBJECT_DIR / f"{name}.png"
        if target.is_file():
            continue
        write_image(target, to_uint8(subject_matte(read_rgb(inputs[name]))))
        written += 1
    return written
