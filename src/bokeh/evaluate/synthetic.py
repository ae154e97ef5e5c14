"""Honest metrics for a model and its baselines on the validation pairs of a datamodule.

Every number is PSNR (dB, data range 1) and SSIM on full-resolution RGB in [0, 1], per image and
then averaged over images, with the SSIM definition named (``gaussian``: 11 x 11, sigma 1.5;
``uniform``: skimage's default 7 x 7): see :mod:`bokeh.metrics`. Where the pairs carry a per-pixel
blur radius (the synthetic sets: :mod:`bokeh.data.coc`), PSNR is also reported on the pixels the
target keeps in focus (radius < 1 px) and on the strongly defocused ones (radius >= 4 px); each is
averaged over the images that have such pixels. EBB! has no depth, so the split is absent there.

The baselines show what the model adds:

* ``identity``: the sharp input as the answer (perfect in focus, worst where defocused);
* ``gaussian blur``: the input blurred with the one sigma that scores best (all pixels) on these very
  pairs (an oracle choice, which favours the baseline);
* ``oracle blur``: a spatially varying Gaussian blur that picks, for every pixel, the sigma (from
  :data:`ORACLE_SIGMAS`) with the least error over the 9 x 9 region around it *measured against the
  target*: a perfect depth map driving Gaussian blurs, which no model has. A model beats it only by
  rendering what Gaussians of the input cannot: disc-shaped highlights, clipped light sources that
  keep their energy, what an out-of-focus occluder hides.

    python -m bokeh.evaluate ckpt=outputs/.../best.ckpt [data=ebb data.root=/data/ebb]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable

import kornia
import torch

from bokeh import metrics
from bokeh.metrics import gaussian_blur
from bokeh.data.transforms import unpad

Predict = Callable[[torch.Tensor], torch.Tensor]
Oracle = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (image, target) -> output
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
ORACLE_SIGMAS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)
ORACLE_REGION = 9
SPLIT_ABSENT = "absent: these pairs carry no per-pixel blur radius (EBB! has no depth; synthetic sets do)"


def score(predict: Predict | Oracle, samples: Iterable[dict], sees_target: bool = False,
          controls: Callable[[dict], dict] | None = None) -> dict[str, float]:
    """Mean PSNR (all pixels, and in focus / defocus where the samples have a ``coc`` map) and both
    SSIMs of ``predict`` over ``samples``.

    Args:
        predict: maps ``(1, 3, H, W)`` in [-1, 1] (H, W multiples of 8) to the same shape and range;
            with ``sees_target``, an oracle that also takes the target ``(1, 3, H, W)``; with
            ``controls``, also the keyword arguments ``controls(sample)`` (e.g. ``focus``, ``aperture``).
        samples: dicts with ``input``, ``target`` (``(3, H, W)`` in [-1, 1]), optional ``size`` (the
            unpadded ``(H, W)``, as :class:`bokeh.data.pairs.PairDataset` gives) and optional
            ``coc`` (``(1, H, W)`` blur radius in px).

    Returns:
        ``psnr``, ``ssim_gaussian``, ``ssim_uniform``, ``images``; with ``coc`` maps also
        ``psnr_in_focus``, ``psnr_defocus`` (means over the images that have such pixels, NaN if none
        has) and ``images_in_focus``, ``images_defocus``.

    Raises:
        ValueError: no samples.
    """
    totals = {"psnr": 0.0, "ssim_gaussian": 0.0, "ssim_uniform": 0.0}
    split: dict[str, list[float]] = {"in_focus": [], "defocus": []}
    count = with_map = seen = 0
    with torch.inference_mode():
        for sample in samples:
            image, target = sample["input"][None], sample["target"][None]
            size = sample.get("size", image.shape[-2:])
            raw = predict(image, target) if sees_target else predict(image, **controls(sample)) if controls else predict(image)
            output = metrics.to_unit_range(unpad(raw.clamp(-1, 1), size))
            target = metrics.to_unit_range(unpad(target, size))
            row = {"psnr": metrics.psnr(output, target).item(), "ssim_gaussian": metrics.ssim(output, target, kind="gaussian").item(),
                   "ssim_uniform": metrics.ssim(output, target, kind="uniform").item()}
            reason = metrics.unscorable(row, tuple(row))
            seen += 1
            if reason:  # a uniform pair: left out of the means, said in one line
                print(metrics.unscorable_line(sample.get("name", f"validation pair {seen}"), reason), file=sys.stderr, flush=True)
                continue
            for key, value in row.items():
                totals[key] += value
            if "coc" in sample:
                with_map += 1
                radius = unpad(sample["coc"][None], size)
                for name, value in metrics.psnr_split(output, target, radius).items():
                    if name in split and not math.isnan(value.item()):
                        split[name].append(value.item())
            count += 1
    if seen == 0:
        raise ValueError("no validation pairs to score")
    if 0 < with_map < count:
        raise ValueError(f"{with_map} of {count} validation samples carry a blur-radius map: score sets with maps and without apart")
    results = {name: (total / count if count else float("nan")) for name, total in totals.items()} | {"images": count}
    if with_map:
        for name, values in split.items():
            results[f"psnr_{name}"] = sum(values) / len(values) if values else float("nan")
            results[f"images_{name}"] = len(values)
    return results


def blur_bank(image: torch.Tensor, sigmas: Iterable[float] = ORACLE_SIGMAS) -> torch.Tensor:
    """``(K, 3, H, W)``: ``image`` ``(1, 3, H, W)`` blurred with each sigma (0: unchanged); sigmas
    whose kernel reaches past the image's short side (reflection needs less) are left out."""
    usable = [s for s in sigmas if math.ceil(3 * s) < min(image.shape[-2:])]
    return torch.cat([image if sigma == 0 else gaussian_blur(sigma)(image) for sigma in usable])


def oracle_blur(image: torch.Tensor, target: torch.Tensor, region: int = ORACLE_REGION) -> torch.Tensor:
    """The oracle spatially varying blur of ``image`` for ``target`` (see the module docstring).

    Each pixel takes, from :func:`blur_bank`, the blur whose squared error against ``target``,
    summed over the ``region`` x ``region`` window around the pixel, is least (``region=1``: per
    pixel, an upper bound only).

    Shape:
        image, target: ``(1, 3, H, W)`` in [-1, 1]; returns ``(1, 3, H, W)``.
    """
    bank = blur_bank(image)
    error = (bank - target).pow(2).mean(1, keepdim=True)
    if region > 1:
        error = kornia.filters.box_blur(error, (region, region))
    choice = error.argmin(0, keepdim=True).expand(1, 3, *error.shape[-2:])
    return bank.gather(0, choice)


def baselines(samples: list[dict], sigmas: Iterable[float] = BLUR_SIGMAS, oracle_region: int | None = ORACLE_REGION) -> dict[str, dict[str, float]]:
    """``identity``, the best-PSNR ``gaussian blur`` over ``sigmas`` (its sigma in the result) and,
    unless ``oracle_region`` is None, the ``oracle blur`` with that region size."""
    results = {"identity": score(lambda image: image, samples)}
    blurred = {sigma: score(gaussian_blur(sigma), samples) for sigma in sigmas}
    best = max(blurred, key=lambda sigma: blurred[sigma]["psnr"])
    results["gaussian blur"] = blurred[best] | {"sigma": best}
    if oracle_region is not None:
        oracle = score(lambda image, target: oracle_blur(image, target, oracle_region), samples, sees_target=True)
        results["oracle blur"] = oracle | {"region": oracle_region}
    return results


def sample_controls(generator: torch.nn.Module, tapped: bool) -> Callable[[dict], dict]:
    """The controls a generator takes, from a validation sample: its f-number (``aperture``) and,
    when ``tapped``, its in-focus point (``focus``: :mod:`bokeh.data.focus`); auto focus otherwise."""
    contract = generator.contract

    def controls(sample: dict) -> dict:
        chosen = {}
        if contract.focus and tapped and "focus" in sample:
            chosen["focus"] = sample["focus"][None]
        if contract.aperture and "aperture" in sample:
            chosen["aperture"] = sample["aperture"][None]
        return chosen

    return controls


def evaluate_generator(generator: torch.nn.Module, samples: list[dict], with_baselines: bool = True) -> dict[str, dict[str, float]]:
    """The generator's scores next to the baselines', all on the same ``samples``: ``model`` as it
    runs by default (auto focus; each pair's f-number where it takes one), and for a generator with
    a focus input also ``model, tapped`` (tapped at each pair's in-focus point)."""
    generator = generator.eval()
    results = {"model": score(lambda image, **c: generator(image, **c)[0], samples, controls=sample_controls(generator, False))}
    if generator.contract.focus:
        results["model, tapped"] = score(lambda image, **c: generator(image, **c)[0], samples, controls=sample_controls(generator, True))
    return results | baselines(samples) if with_baselines else results


def _label(name: str, row: dict) -> str:
    if "sigma" in row:
        return f"{name} (sigma {row['sigma']:g})"
    if "region" in row:
        return f"{name} ({row['region']}x{row['region']} regions)"
    return name


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text table of ``results`` (rows: methods; PSNR all / in focus / defocus and both SSIMs)."""
    has_split = any("psnr_in_focus" in row for row in results.values())
    width = max(22, *(len(_label(n, r)) for n, r in results.items()))
    lines = [f"{'method':<{width}} {'PSNR dB':>8} {'in focus':>9} {'defocus':>8} {'SSIM gauss':>11} {'SSIM 7x7':>9}"]
    for name, row in results.items():
        focus = f"{row['psnr_in_focus']:>9.2f}" if has_split else f"{'-':>9}"
        defocus = f"{row['psnr_defocus']:>8.2f}" if has_split else f"{'-':>8}"
        lines.append(f"{_label(name, row):<{width}} {row['psnr']:>8.2f} {focus} {defocus} {row['ssim_gaussian']:>11.4f} {row['ssim_uniform']:>9.4f}")
    if has_split:
        first = next(iter(results.values()))
        lines.append(f"(in focus: blur radius < {metrics.IN_FOCUS_MAX_RADIUS:g} px, {first.get('images_in_focus', 0)} of "
                     f"{first['images']} images have such pixels; defocus: radius >= {metrics.DEFOCUS_MIN_RADIUS:g} px, "
                     f"{first.get('images_defocus', 0)} images)")
    else:
        lines.append(f"(in focus / defocus: {SPLIT_ABSENT})")
    return "\n".join(lines)


def validation_samples(datamodule) -> list[dict]:
    """Every validation sample of a datamodule (prepared and set up here), each pair once: a pair
    that fails to decode is skipped with its reason (the dataset's ``on_bad_pair``), not counted twice."""
    datamodule.prepare_data()
    datamodule.setup("validate")
    dataset = datamodule.val_dataloader().dataset
    samples: dict[str, dict] = {}
    for i in range(len(dataset)):
        sample = dataset[i]
        samples.setdefault(sample.get("name", i), sample)
    return list(samples.values())
