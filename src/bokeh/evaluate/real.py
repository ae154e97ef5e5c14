"""The real-pair benchmark: a renderer and two baselines scored on real photo pairs.

Real pairs (:mod:`bokeh.data.real_pairs`: an f/16 input, a wide-aperture target, optionally a
subject mask) are scored at the photo's own resolution (or a given reduced size) after a
per-channel affine tone match of each image to the target, with the definitions of
:func:`bokeh.metrics.real_pair_scores`: PSNR and SSIM (skimage's default, 7 x 7) over all pixels, the in-focus ones
and the defocused ones (from the subject mask where the pair has one, else from where the target
keeps or loses the input's detail), and the detail kept (local gradient energy of the output over
the input's, median over each set). On the same pairs:

* ``identity``: the input unchanged (detail kept 1.0 everywhere; what "in focus" should score);
* ``gaussian blur``: the input blurred with the one Gaussian sigma (from :data:`REAL_BLUR_SIGMAS`)
  that gives the best all-pixel PSNR *for that photo* (an oracle choice per photo);
* ``target``: the detail the target itself keeps (no PSNR: it is the reference).

A renderer is any callable ``render(image, focus, aperture) -> image`` on ``(H, W, 3)`` ``uint8``
photos; ``focus`` is an ``(x, y)`` point in fractions of the width and height or None, ``aperture``
an f-number or None. The caller decides what to pass: with ``tap=True`` each pair's subject-mask
interior point (:func:`bokeh.data.real_pairs.interior_point`), with ``aperture=True`` each pair's
target f-number; otherwise None, which a model without controls ignores.

    python -m bokeh.evaluate ckpt=reference real=path/to/real_pairs [out=metrics.json]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from bokeh import metrics
from bokeh.data.real_pairs import EBB_APERTURE, RealPair, interior_point, list_real_pairs, read_mask
from bokeh.images import from_tensor, read_rgb, to_tensor

Focus = tuple[float, float] | None
Render = Callable[[np.ndarray, Focus, float | None], np.ndarray]
REAL_BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0)  # px at the scored size
SCORE_KEYS = ("psnr", "psnr_in_focus", "psnr_defocus", "ssim", "ssim_in_focus", "ssim_defocus",
              "detail_in_focus", "detail_defocus")
SPLITS = ("auto", "detail")


def _unit(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float in [0, 1]."""
    return metrics.to_unit_range(to_tensor(image))[None]


def load_pair(pair: RealPair, short_side: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The input, the target and the subject mask of ``pair``, optionally reduced.

    Args:
        short_side: None for the photos' own size; else photos whose short side is longer are
            scaled down (bicubic, antialiased, as the renderer resizes) so that it is this many
            pixels; the mask is area-averaged and thresholded at half.

    Shape:
        returns ``(H, W, 3)`` uint8, ``(H, W, 3)`` uint8 and ``(H, W)`` bool or None.

    Raises:
        bokeh.images.ImageError: an unreadable file.
    """
    from bokeh.render.fit import plan_dynamic, resize

    image, target = read_rgb(pair.input), read_rgb(pair.target)
    mask = read_mask(pair.mask) if pair.mask is not None else None
    plan = plan_dynamic(image.shape[:2], short_side)
    if not plan.resized:
        return image, target, mask
    image, target = (from_tensor(resize(to_tensor(x)[None], plan.work)) for x in (image, target))
    if mask is not None:
        area = torch.nn.functional.interpolate(torch.from_numpy(mask).float()[None, None], size=plan.work, mode="area")
        mask = (area[0, 0] > 0.5).numpy()
    return image, target, mask


def best_blur(image: torch.Tensor, target: torch.Tensor, sigmas: Sequence[float] = REAL_BLUR_SIGMAS) -> tuple[float, torch.Tensor]:
    """The Gaussian blur of ``image`` with the best all-pixel PSNR against ``target`` after the tone
    match, and its sigma (sigmas whose kernel would not fit the image are skipped).

    Shape:
        image, target: ``(1, 3, H, W)`` in [0, 1]; returns ``(sigma, (1, 3, H, W) in [0, 1])``.
    """
    best = (-math.inf, 0.0, image)
    for sigma in sigmas:
        if math.ceil(3 * sigma) >= min(image.shape[-2:]):
            continue
        blurred = metrics.gaussian_blur(sigma)(image).clamp(0, 1)
        value = metrics.psnr(metrics.tone_match(blurred, target), target).item()
        if value > best[0]:
            best = (value, sigma, blurred)
    return best[1], best[2]


def _row(scores: dict[str, torch.Tensor]) -> dict[str, float]:
    return {key: float(scores[key][0]) for key in (*SCORE_KEYS, "fraction_in_focus", "fraction_defocus")}


def score_pair(pair: RealPair, render: Render | None, *, tap: bool = False, aperture: bool = False,
               baselines: bool = True, short_side: int | None = None, split: str = "auto") -> dict:
    """One pair's row of the benchmark (see the module docstring).

    Args:
        render: the model under test, or None for the baselines alone.
        tap: pass the subject mask's interior point as ``focus`` (None for a pair without a mask).
        aperture: pass the pair's target f-number as ``aperture``.
        baselines: also score ``identity`` and ``gaussian blur`` (and the target's own detail).
        short_side: score at this reduced short side (None: the photo's size).
        split: ``auto``: in focus / defocused from the subject mask where there is one, else from
            the target's detail; ``detail``: from the target's detail everywhere (masks unused).

    Returns:
        ``name``, ``aperture``, ``focus`` (the point passed, or None), ``split`` (``mask`` or
        ``detail``) and ``{method: {key: value}}`` for ``model`` / ``identity`` / ``gaussian blur``
        (with its ``sigma``) / ``target`` (detail only), keys :data:`SCORE_KEYS` plus
        ``fraction_in_focus``, ``fraction_defocus``.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    image, target, mask = load_pair(pair, short_side)
    mask = mask if split == "auto" else None
    mask_t = torch.from_numpy(mask)[None, None] if mask is not None else None
    image_t, target_t = _unit(image), _unit(target)
    focus = interior_point(mask) if tap and mask is not None else None
    row: dict = {"name": pair.name, "aperture": pair.aperture, "focus": focus, "split": "mask" if mask is not None else "detail"}
    with torch.inference_mode():
        if render is not None:
            output = render(image, focus, pair.aperture if aperture else None)
            if output.shape != image.shape or output.dtype != np.uint8:
                raise ValueError(f"render returned {output.dtype} {output.shape} for a {image.shape} uint8 photo ({pair.name}): "
                                 f"it must return an image of the photo's size")
            row["model"] = _row(metrics.real_pair_scores(_unit(output), image_t, target_t, mask_t))
        if baselines:
            row["identity"] = _row(metrics.real_pair_scores(image_t, image_t, target_t, mask_t))
            sigma, blurred = best_blur(image_t, target_t)
            row["gaussian blur"] = _row(metrics.real_pair_scores(blurred, image_t, target_t, mask_t)) | {"sigma": sigma}
            own = metrics.real_pair_scores(target_t, image_t, target_t, mask_t)
            row["target"] = {key: float(own[key][0]) for key in ("detail_in_focus", "detail_defocus")}
    return row


def mean_rows(rows: Sequence[dict]) -> dict[str, dict[str, float]]:
    """``{method: {key: mean}}`` over ``rows`` (from :func:`score_pair`); each key is averaged over
    the pairs where it is a number (a pair without defocused pixels has NaN there), and ``pairs``
    says how many rows there were."""
    methods = [m for m in ("model", "identity", "gaussian blur", "target") if any(m in r for r in rows)]
    means: dict[str, dict[str, float]] = {}
    for method in methods:
        keys = [k for k in rows[0].get(method, {}) if k != "sigma"] if method in rows[0] else list(SCORE_KEYS)
        values = {key: [r[method][key] for r in rows if method in r and not math.isnan(r[method][key])] for key in keys}
        means[method] = {key: (sum(v) / len(v) if v else float("nan")) for key, v in values.items()} | {"pairs": len(rows)}
    return means


def evaluate_real(pairs: Sequence[RealPair], render: Render | None, *, tap: bool = False, aperture: bool = False,
                  baselines: bool = True, short_side: int | None = None, split: str = "auto",
                  progress: Callable[[dict], None] | None = None, skipped: Callable[[str], None] | None = None) -> dict:
    """:func:`score_pair` for every pair, and the means per target f-number.

    Returns:
        ``{"pairs": [rows], "means": {"f/1.8": {method: {key: mean, "pairs": n}}, ...}, "skipped":
        {name: reason}}``, the apertures from the widest to the narrowest. ``progress`` is called with
        each row; a row whose scores are not finite (:func:`bokeh.metrics.unscorable`: a uniform pair)
        is left out of the means and said in one line (``skipped(line)``, default stderr).

    Raises:
        ValueError: no pairs, no pair that could be scored, or ``render`` returned something that is
            not an image of the photo's size.
    """
    if not pairs:
        raise ValueError("no real pairs to score")
    say = skipped or (lambda line: print(line, file=sys.stderr, flush=True))
    rows, left_out = [], {}
    for pair in pairs:
        row = score_pair(pair, render, tap=tap, aperture=aperture, baselines=baselines, short_side=short_side, split=split)
        reason = "; ".join(f"{method}: {why}" for method in ("model", "identity", "gaussian blur") if method in row
                           for why in [metrics.unscorable(row[method], ("psnr", "ssim"))] if why)
        if reason:
            left_out[pair.name] = reason
            say(metrics.unscorable_line(pair.target, reason))
            continue
        rows.append(row)
        if progress is not None:
            progress(rows[-1])
    if not rows:
        raise ValueError(f"no real pair could be scored: every pair's scores are not finite (e.g. {pairs[0].target}: "
                         f"{left_out[pairs[0].name]}); give pairs with texture whose target differs from the photo")
    groups = sorted({row["aperture"] for row in rows})
    means = {f"f/{a:g}": mean_rows([row for row in rows if row["aperture"] == a]) for a in groups}
    return {"pairs": rows, "means": means, "skipped": left_out}


def backend_render(backend, *, subject: str = "auto", short_side: int | str | None = "auto") -> Render:
    """A :data:`Render` that renders each photo as ``bokeh.render`` does (:func:`bokeh.render.render_photo`,
    with ``subject`` and ``short_side``), for any backend: a loaded model or a generator in training
    (:class:`bokeh.render.GeneratorBackend`)."""
    from bokeh.render.fit import render_photo

    def render(image: np.ndarray, focus: Focus, aperture: float | None) -> np.ndarray:
        rendered = render_photo(image, backend, focus=focus, aperture=aperture, subject=subject, short_side=short_side)
        return from_tensor(rendered.image)

    return render


def score_real_pairs(generator: torch.nn.Module, folder: str | Path, short_side: int | None = 256, *,
                     apertures: tuple[float, ...] | None = (EBB_APERTURE,), bokeh_aperture: float = EBB_APERTURE,
                     baselines: bool = False, tap: bool = False, aperture: bool = False, subject: str = "auto") -> dict[str, float]:
    """Mean real-pair scores of a torch Glass-Net at a reduced size, for logging during training.

    The photos (and masks) are scaled so their short side is ``short_side`` pixels (None: full
    size), each is rendered at that size on the one road of ``bokeh.render``
    (:func:`bokeh.render.render_photo` through :class:`bokeh.render.GeneratorBackend`: the same
    render, focus decision and composite as ``python -m bokeh.evaluate real=``), and scored as
    :func:`score_pair` scores it (split ``auto``).

    Args:
        generator: maps ``(1, 3, H, W)`` in [-1, 1] (H, W multiples of 8) to ``(bokeh, ...)``.
        folder: a real-pair folder (:func:`bokeh.data.real_pairs.list_real_pairs`).
        apertures: keep targets at these f-numbers only (default f/1.8; None: all, averaged together).
        baselines: also return ``identity/...`` and ``gaussian blur/...`` keys.
        tap, aperture: give the generator each pair's subject-mask interior point and target f-number
            (for a generator with those inputs).
        subject: the focus decision (:data:`bokeh.render.SUBJECT_MODES`): ``auto`` as ``bokeh.render``
            renders by default, ``off`` the model alone.

    Returns:
        ``{key: mean}`` with :data:`SCORE_KEYS` (the model's) and ``pairs``; with ``baselines`` also
        ``"identity/psnr"`` and the like.

    Raises:
        bokeh.data.pairs.DataLayoutError: the folder is missing or not in the layout.
    """
    pairs = list_real_pairs(folder, bokeh_aperture, apertures)
    from bokeh.render.backends import GeneratorBackend

    render = backend_render(GeneratorBackend(generator), subject=subject)
    rows = [score_pair(pair, render, baselines=baselines, short_side=short_side, tap=tap, aperture=aperture) for pair in pairs]
    means = mean_rows(rows)
    flat = {key: means["model"][key] for key in SCORE_KEYS} | {"pairs": float(len(rows))}
    if baselines:
        flat |= {f"{method}/{key}": means[method][key] for method in ("identity", "gaussian blur") for key in SCORE_KEYS}
    return flat


def _cell(row: dict, key: str, digits: int) -> str:
    value = row.get(key, float("nan"))
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_real_table(results: dict) -> str:
    """A plain-text table per target f-number of :func:`evaluate_real`'s means (rows: methods;
    PSNR all / in focus / defocused, SSIM all, detail kept in focus / defocused)."""
    labels = {"model": "model", "identity": "identity (input unchanged)",
              "gaussian blur": "best global blur (sigma per photo)", "target": "the target itself"}
    width = max(len(v) for v in labels.values())
    lines = []
    for group, means in results["means"].items():
        count = next(iter(means.values()))["pairs"]
        splits = sorted({r["split"] for r in results["pairs"] if f"f/{r['aperture']:g}" == group})
        lines.append(f"{group} targets, {count} pair(s); in focus / defocused from: {' and '.join(splits)}")
        lines.append(f"  {'method':<{width}} {'PSNR all':>8} {'in focus':>8} {'defocus':>8} {'SSIM':>6} "
                     f"{'detail in focus':>15} {'defocus':>7}")
        for method, row in means.items():
            lines.append(f"  {labels[method]:<{width}} {_cell(row, 'psnr', 2):>8} {_cell(row, 'psnr_in_focus', 2):>8} "
                         f"{_cell(row, 'psnr_defocus', 2):>8} {_cell(row, 'ssim', 3):>6} "
                         f"{_cell(row, 'detail_in_focus', 2):>15} {_cell(row, 'detail_defocus', 2):>7}")
    lines.append("(PSNR dB and SSIM (7x7, skimage's default) after a per-channel affine tone match to the target, at the photos' size; "
                 "detail: local gradient energy over the input's, median over the set; see bokeh.metrics)")
    return "\n".join(lines)
