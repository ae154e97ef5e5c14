"""Honest metrics for a model and its baselines on the validation pairs of a datamodule.

Every number is PSNR (dB, data range 1) and SSIM on full-resolution RGB in [0, 1], per image and
then averaged over images, with the SSIM definition named (``gaussian``: 11 x 11, sigma 1.5;
``uniform``: skimage's default 7 x 7): see :mod:`bokeh.metrics`. The baselines show what the
model adds: ``identity`` (the sharp input as the answer) and ``gaussian blur`` of the input with the
sigma that scores best on these very pairs (an oracle choice, which favours the baseline).

    python -m bokeh.evaluate ckpt=outputs/.../best.ckpt                 # synthetic validation set
    python -m bokeh.evaluate ckpt=... data=ebb data.root=/data/ebb      # EBB! Val294
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable

import kornia
import torch

from bokeh import metrics
from bokeh.data.transforms import unpad

Predict = Callable[[torch.Tensor], torch.Tensor]
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def score(predict: Predict, samples: Iterable[dict]) -> dict[str, float]:
    """Mean PSNR and both SSIMs of ``predict`` over ``samples``.

    Args:
        predict: maps ``(1, 3, H, W)`` in [-1, 1] (H, W multiples of 8) to the same shape and range.
        samples: dicts with ``input``, ``target`` (``(3, H, W)`` in [-1, 1]) and optional ``size``
            (the unpadded ``(H, W)``, as :class:`bokeh.data.pairs.PairDataset` gives).
    """
    totals = {"psnr": 0.0, "ssim_gaussian": 0.0, "ssim_uniform": 0.0}
    count = 0
    with torch.inference_mode():
        for sample in samples:
            image, target = sample["input"][None], sample["target"][None]
            size = sample.get("size", image.shape[-2:])
            output = metrics.to_unit_range(unpad(predict(image).clamp(-1, 1), size))
            target = metrics.to_unit_range(unpad(target, size))
            totals["psnr"] += metrics.psnr(output, target).item()
            totals["ssim_gaussian"] += metrics.ssim(output, target, kind="gaussian").item()
            totals["ssim_uniform"] += metrics.ssim(output, target, kind="uniform").item()
            count += 1
    if count == 0:
        raise ValueError("no validation pairs to score")
    return {name: total / count for name, total in totals.items()} | {"images": count}


def gaussian_blur(sigma: float) -> Predict:
    """The input blurred with a Gaussian of ``sigma`` pixels (kernel 2 * ceil(3 sigma) + 1)."""
    size = 2 * math.ceil(3 * sigma) + 1
    return lambda image: kornia.filters.gaussian_blur2d(image, (size, size), (sigma, sigma), border_type="reflect")


def baselines(samples: list[dict], sigmas: Iterable[float] = BLUR_SIGMAS) -> dict[str, dict[str, float]]:
    """``identity`` and the best-PSNR ``gaussian blur`` over ``sigmas`` (its sigma in the result)."""
    results = {"identity": score(lambda image: image, samples)}
    blurred = {sigma: score(gaussian_blur(sigma), samples) for sigma in sigmas}
    best = max(blurred, key=lambda sigma: blurred[sigma]["psnr"])
    results["gaussian blur"] = blurred[best] | {"sigma": best}
    return results


def evaluate_generator(generator: torch.nn.Module, samples: list[dict]) -> dict[str, dict[str, float]]:
    """The generator's scores next to the baselines', all on the same ``samples``."""
    generator = generator.eval()
    return {"model": score(lambda image: generator(image)[0], samples)} | baselines(samples)


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table of ``results`` (rows: methods; PSNR and the two SSIMs)."""
    lines = [f"{'method':<22} {'PSNR dB':>8} {'SSIM gauss':>11} {'SSIM 7x7':>9}"]
    for name, row in results.items():
        label = f"{name} (sigma {row['sigma']:g})" if "sigma" in row else name
        lines.append(f"{label:<22} {row['psnr']:>8.2f} {row['ssim_gaussian']:>11.4f} {row['ssim_uniform']:>9.4f}")
    return "\n".join(lines)


def validation_samples(datamodule) -> list[dict]:
    """Every validation sample of a datamodule (prepared and set up here)."""
    datamodule.prepare_data()
    datamodule.setup("validate")
    dataset = datamodule.val_dataloader().dataset
    return [dataset[i] for i in range(len(dataset))]


def main(argv: list[str] | None = None) -> dict:
    """CLI: ``ckpt=PATH`` plus any data overrides of the training config.

    Paths may hold ``=``, spaces or quotes (``ckpt=``, ``out=`` and the training config's path
    settings, Hydra-quoted here). An unwritable ``out=`` or a bad checkpoint stops before any
    scoring (exit status 2); Ctrl-C stops with one line (130) and writes no partial report.
    """
    import hydra
    from hydra import compose, initialize_config_dir

    from bokeh.checkpoint import CheckpointError, load_generator
    from bokeh.cli import (EXIT_SETTINGS, OutputFolderError, check_output_file, interruptible, quote_path_overrides,
                           unquote, write_text_atomic)
    from bokeh.train import CONF_DIR, PATH_KEYS

    args = list(sys.argv[1:] if argv is None else argv)
    ckpt = [unquote(a.split("=", 1)[1]) for a in args if a.startswith("ckpt=")]
    out = [unquote(a.split("=", 1)[1]) for a in args if a.startswith("out=")]
    overrides = quote_path_overrides([a for a in args if not a.startswith(("ckpt=", "out="))], PATH_KEYS)
    if len(ckpt) != 1:
        raise SystemExit("usage: python -m bokeh.evaluate ckpt=PATH [out=report.json] [data=ebb data.root=...]")
    with interruptible("bokeh.evaluate", lambda: "nothing was written"):
        try:
            report = check_output_file(out[0], "out") if out else None
            generator = load_generator(ckpt[0])
        except (OutputFolderError, CheckpointError) as error:
            print(f"bokeh.evaluate: {error}", file=sys.stderr)
            raise SystemExit(EXIT_SETTINGS) from None
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides + ["output_dir=."])
        results = evaluate_generator(generator, validation_samples(hydra.utils.instantiate(cfg.data)))
        print(format_table(results))
        if report is not None:
            write_text_atomic(report, json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
