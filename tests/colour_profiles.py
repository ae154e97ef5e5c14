"""Colour profiles built here (so the tests need no profile file from the system) and what a photo in
one must read as in sRGB by the textbook formulas: shared by test_images.py and test_render.py."""

from __future__ import annotations

import struct

import numpy as np

D65 = (0.3127, 0.3290)
ADOBE_RGB = {"primaries": ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), "gamma": 563 / 256}  # 2.19921875
DISPLAY_P3 = {"primaries": ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), "gamma": 2.2}
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
D50_XYZ = np.array([0.9642, 1.0, 0.8249])


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The 3 x 3 matrix from linear RGB to XYZ (white Y = 1) of a set of primaries."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    w = np.array([white[0] / white[1], 1.0, (1 - white[0] - white[1]) / white[1]])
    return xyz * np.linalg.solve(xyz, w)


def icc_profile(primaries, gamma: float, name: str) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile (what Adobe RGB and friends are), built here so the
    tests need no profile file from the system."""
    white = np.array([D65[0] / D65[1], 1.0, (1 - sum(D65)) / D65[1]])
    adapt = np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ D50_XYZ) / (BRADFORD @ white)) @ BRADFORD
    colorants = adapt @ rgb_to_xyz(primaries)  # columns: R, G, B in D50
    s15 = lambda v: struct.pack(">i", int(round(v * 65536)))  # noqa: E731
    xyz_tag = lambda v: b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)  # noqa: E731
    curve = b"curv\0\0\0\0" + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"
    text = name.encode() + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0\0\0" + b"\0" * 67
    tags = [(b"desc", desc), (b"wtpt", xyz_tag(D50_XYZ)), (b"rXYZ", xyz_tag(colorants[:, 0])), (b"gXYZ", xyz_tag(colorants[:, 1])),
            (b"bXYZ", xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text\0\0\0\0no copyright\0")]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"\0" * 4 + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp"
              + b"\0" * 24 + b"\0" * 4 + b"".join(s15(c) for c in D50_XYZ) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def expected_srgb(values: np.ndarray, space: dict) -> np.ndarray:
    """``values`` (uint8 in ``space``) in sRGB by the textbook formulas (not by the code under test)."""
    linear = (values / 255.0) ** space["gamma"]
    srgb_linear = linear @ (np.linalg.inv(rgb_to_xyz(SRGB_PRIMARIES)) @ rgb_to_xyz(space["primaries"])).T
    srgb_linear = np.clip(srgb_linear, 0, 1)
    encoded = np.where(srgb_linear <= 0.0031308, 12.92 * srgb_linear, 1.055 * srgb_linear ** (1 / 2.4) - 0.055)
    return encoded * 255.0


def patches() -> np.ndarray:
    """A 32 x 64 photo of four colour patches inside both gamuts, far from sRGB's values once converted."""
    colours = np.array([[170, 80, 60], [60, 150, 90], [70, 90, 170], [128, 128, 128]], np.uint8)
    return np.repeat(np.repeat(colours[None], 32, axis=0), 16, axis=1)
