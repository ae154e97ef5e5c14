"""How far a model can get on a validation set: oracle blur ceilings and where the error sits.

    .venv/bin/python benchmarks/quality_ceiling.py                          # experiment=demo's pairs
    .venv/bin/python benchmarks/quality_ceiling.py ckpt=outputs/demo/pretrain/checkpoints/last.ckpt
    .venv/bin/python benchmarks/quality_ceiling.py experiment=paper data.root=/data/ebb

Rows (PSNR in dB on [0, 1] RGB, mean over images, as ``bokeh.evaluate`` scores):

* ``identity`` and ``gaussian blur (best global sigma)``: the baselines of ``bokeh.evaluate``.
* ``oracle blur, N x N regions``: every pixel takes, from a bank of Gaussian blurs of the input,
  the sigma with the least error over the N x N region around it *measured against the target*.
  This is a spatially varying blur driven by a perfect depth map: no model that blurs the input
  with Gaussians can beat it at that region size. (N = 1 cheats per pixel; it is an upper bound
  only.) It cannot model disc-shaped highlights, clipped light sources that keep their energy, or
  what an occluder hides in the sharp input, which the synthetic pairs contain.
* The split columns: PSNR over the pixels the target keeps sharp (its local mean difference from
  the input is under 0.03 in [-1, 1] units) and over the rest. Global-blur and model rows show
  whether the loss comes from smearing the subject or from rendering the background.
"""

from __future__ import annotations

import math
import sys

import hydra
import kornia
import torch
from hydra import compose, initialize_config_dir

from bokeh import metrics
from bokeh.cli import quote_path_overrides
from bokeh.data.transforms import unpad
from bokeh.evaluate import BLUR_SIGMAS, baselines, gaussian_blur, validation_samples
from bokeh.train import CONF_DIR, PATH_KEYS

ORACLE_SIGMAS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)
ORACLE_REGIONS = (1, 9, 25)
SHARP_THRESHOLD = 0.03  # mean |target - input| over 5 x 5, [-1, 1] units


def blur_bank(image: torch.Tensor) -> torch.Tensor:
    """``(K, 3, H, W)``: ``image`` ``(1, 3, H, W)`` blurred with each of :data:`ORACLE_SIGMAS`."""
    return torch.cat([image if sigma == 0 else gaussian_blur(sigma)(image) for sigma in ORACLE_SIGMAS])


def oracle_blur(image: torch.Tensor, target: torch.Tensor, region: int) -> torch.Tensor:
    """The oracle spatially varying blur of ``image`` for ``target`` (both ``(1, 3, H, W)``, [-1, 1])."""
    bank = blur_bank(image)
    error = (bank - target).pow(2).mean(1, keepdim=True)
    if region > 1:
        error = kornia.filters.box_blur(error, (region, region))
    choice = error.argmin(0, keepdim=True).expand(1, 3, *error.shape[-2:])
    return bank.gather(0, choice)


def sharp_mask(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(1, 1, H, W)`` bool: pixels where the target is (locally) the input."""
    difference = (target - image).abs().mean(1, keepdim=True)
    return kornia.filters.box_blur(difference, (5, 5)) < SHARP_THRESHOLD


def psnr_of(squared_error_sum: float, count: float) -> float:
    """PSNR (data range 1) of a summed squared error in [-1, 1] units over ``count`` values."""
    mse = squared_error_sum / max(count, 1) / 4.0
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def main(argv: list[str]) -> None:
    ckpt = [a.split("=", 1)[1] for a in argv if a.startswith("ckpt=")]
    overrides = quote_path_overrides([a for a in argv if not a.startswith("ckpt=")], PATH_KEYS) or ["experiment=demo"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides + ["output_dir=."])
    samples = validation_samples(hydra.utils.instantiate(cfg.data))
    global_sigma = baselines(samples)["gaussian blur"]["sigma"]

    predictors = {
        "identity": lambda x, t: x,
        f"gaussian blur (best global sigma {global_sigma:g})": lambda x, t: gaussian_blur(global_sigma)(x),
        **{f"oracle blur, {n} x {n} regions": (lambda n: lambda x, t: oracle_blur(x, t, n))(n) for n in ORACLE_REGIONS},
    }
    if ckpt:
        from bokeh.checkpoint import load_generator

        generator = load_generator(ckpt[0]).eval()
        predictors[f"model {ckpt[0]}"] = lambda x, t: generator(x)[0]

    rows = {name: {"psnr": 0.0, "sharp": [0.0, 0.0], "blurred": [0.0, 0.0]} for name in predictors}
    sharp_share = 0.0
    with torch.inference_mode():
        for sample in samples:
            # predict on the padded pair (sides multiples of 8), score the image's own pixels
            padded_image, padded_target = sample["input"][None], sample["target"][None]
            size = sample.get("size", padded_image.shape[-2:])
            image, target = unpad(padded_image, size), unpad(padded_target, size)
            mask = sharp_mask(image, target)
            sharp_share += mask.float().mean().item() / len(samples)
            for name, predict in predictors.items():
                output = unpad(predict(padded_image, padded_target), size).clamp(-1, 1)
                row = rows[name]
                row["psnr"] += metrics.psnr(metrics.to_unit_range(output), metrics.to_unit_range(target)).item() / len(samples)
                error = (output - target).pow(2).mean(1, keepdim=True)
                for part, where in (("sharp", mask), ("blurred", ~mask)):
                    row[part][0] += error[where].sum().item()
                    row[part][1] += where.sum().item()

    print(f"{len(samples)} validation pairs ({' '.join(overrides)}); {sharp_share:.0%} of pixels sharp in the target")
    width = max(len(name) for name in rows)
    print(f"{'':{width}s} {'PSNR':>7s} {'sharp px':>9s} {'blurred px':>11s}")
    for name, row in rows.items():
        print(f"{name:{width}s} {row['psnr']:7.2f} {psnr_of(*row['sharp']):9.2f} {psnr_of(*row['blurred']):11.2f}")
    print(f"(global sigmas tried: {', '.join(f'{s:g}' for s in BLUR_SIGMAS)}; oracle bank: {', '.join(f'{s:g}' for s in ORACLE_SIGMAS)})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
