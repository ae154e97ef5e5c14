"""How well the full-size matte follows the photo: bilinear against the guided upsampling, per radius and eps.

``python benchmarks/composite_params.py --portraits ../shared/data/portraits`` takes the first
``--count`` photos of a folder of ``images/`` + ``masks/`` (a hand-labelled person mask per photo),
makes each mask a perfect matte at a working size ``--factor`` times below the photo (antialiased
bilinear, as a model at that size would see the person), brings it back to the photo's size with
:func:`bokeh.composite.upsample_matte` for each radius and eps (and with plain bilinear upsampling),
and prints the error against the full-size mask: mean absolute error over the whole photo and in
the band within 3 % of the short side of the person's outline, and IoU at 0.5. Lower and higher
(IoU) is better; the defaults of :mod:`bokeh.composite` were picked from this table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from bokeh.composite import EPS, RADIUS, upsample_background, upsample_matte
from bokeh.images import read_rgb, to_tensor

RADII = (0.5, 1.0, 2.0, 4.0)
EPSILONS = (1e-4, 1e-3, 1e-2)


def load(folder: Path, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(photo (1, 3, H, W) in [-1, 1], mask (1, 1, H, W) in {0, 1})`` pairs."""
    from PIL import Image

    pairs = []
    for image_path in sorted((folder / "images").iterdir())[:count]:
        mask_path = folder / "masks" / (image_path.stem + ".png")
        mask = torch.from_numpy(np.asarray(Image.open(mask_path).convert("L")) > 127).float()[None, None]
        pairs.append((to_tensor(read_rgb(image_path))[None], mask))
    return pairs


def band(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within ``width`` of the mask's outline (a dilation minus an erosion)."""
    dilated = F.max_pool2d(mask, 2 * width + 1, 1, width)
    eroded = -F.max_pool2d(-mask, 2 * width + 1, 1, width)
    return (dilated - eroded) > 0


def scores(matte: torch.Tensor, mask: torch.Tensor, edge: torch.Tensor) -> tuple[float, float, float]:
    error = (matte - mask).abs()
    inter = ((matte > 0.5) & (mask > 0.5)).sum().item()
    union = ((matte > 0.5) | (mask > 0.5)).sum().item()
    return error.mean().item(), error[edge].mean().item(), inter / max(union, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--portraits", type=Path, required=True, help="folder with images/ and masks/")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--factor", type=int, default=4, help="photo size / working size")
    args = parser.parse_args(argv)
    pairs = load(args.portraits, args.count)
    variants = {"bilinear": None, **{f"guided r={r:g} eps={e:g}": (r, e) for r in RADII for e in EPSILONS}}
    totals = {name: np.zeros(4) for name in variants}
    for photo, mask in pairs:
        size = tuple(photo.shape[-2:])
        work = (size[0] // args.factor, size[1] // args.factor)
        small = F.interpolate(mask, size=work, mode="bilinear", align_corners=False, antialias=True)
        edge = band(mask, max(1, round(0.03 * min(size))))
        for name, params in variants.items():
            start = time.perf_counter()
            matte = upsample_background(small, size).clamp(0, 1) if params is None else upsample_matte(small, photo, *params)
            seconds = time.perf_counter() - start
            totals[name] += np.array([*scores(matte, mask, edge), seconds])
    table = Table(title=f"{len(pairs)} photos of {args.portraits}, matte at 1/{args.factor} of the photo "
                        f"(defaults: r={RADIUS:g}, eps={EPS:g})")
    for column in ("upsampling", "MAE all", "MAE outline band", "IoU", "ms / photo"):
        table.add_column(column, justify="right")
    for name, total in totals.items():
        mae, edge_mae, iou, seconds = total / len(pairs)
        table.add_row(name, f"{mae:.4f}", f"{edge_mae:.4f}", f"{iou:.4f}", f"{1000 * seconds:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
