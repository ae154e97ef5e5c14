"""Helpers for the data tests: tiny EBB!-layout folders and odd image files written by hand."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from bokeh.images import write_image


def _png16_bytes(array: np.ndarray) -> bytes:
    """A 16-bit PNG (gray, RGB or RGBA by channel count) written by hand: Pillow cannot write them."""
    array = array if array.ndim == 3 else array[..., None]
    height, width, channels = array.shape
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture
def png16():
    """``png16(array)`` -> bytes of a 16-bit PNG (gray, RGB or RGBA by channel count)."""
    return _png16_bytes


def noise_image(seed: int, height: int, width: int) -> np.ndarray:
    """Random RGB ``uint8`` content: every window of it is distinct."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def make_folder(tmp_path):
    """``make_folder(names, size=(H, W), sub="")`` -> root of an EBB!-layout folder of PNG pairs.

    Each target is the inverted input (``255 - input``), so a correctly paired crop satisfies
    ``target == -input`` exactly in the [-1, 1] range.
    """

    def make(names, size=(40, 56), sub: str = "", root: Path | None = None) -> Path:
        root = root or tmp_path / "ebb"
        base = root / sub if sub else root
        for k, name in enumerate(names):
            image = noise_image(k, *size)
            write_image(base / "original" / f"{name}.png", image)
            write_image(base / "bokeh" / f"{name}.png", 255 - image)
        return root

    return make
