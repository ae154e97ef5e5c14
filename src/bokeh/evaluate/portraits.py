"""The portrait benchmark: photos with a subject mask and no target. Does the model keep the person and blur the rest?

A folder holds ``images/<name>.jpg`` and ``masks/<name>.png`` (white = the person; :mod:`bokeh.data.portraits`).
Each photo is rendered by the model at f/1.8 (``aperture=``, for a model with an aperture input)
twice: on its own guess (auto) and, for a model with a focus input, tapped at the point deepest
inside the mask (:func:`bokeh.data.focus.interior_point`). Per photo and run:

* ``matte_iou``: the matte the render used ``m > 0.5`` (:attr:`bokeh.render.Rendered.matte`: with
  ``subject=auto``, the default, the subject matte and the model's together; with ``subject=off``
  the model's own) against the mask (:func:`bokeh.metrics.matte_iou`), at the size the matte comes
  at (the photo's; a smaller matte is scored against the mask area-reduced to it and thresholded at
  half). A model without a matte rendered with ``subject=off`` has none: said once, and left out.
* ``detail_subject``, ``detail_background``: at the photo's full size, as ``bokeh.render`` renders
  it, how much of the photo's local detail the render keeps (:func:`bokeh.metrics.portrait_detail`:
  the output's local gradient energy over the photo's, median over the set): inside the person
  (the mask shrunk by 2 % of the short side) and on the textured background (beyond the mask grown
  by 2 %, where the photo's local RMS gradient is at least 5/255 per px). 1.0 keeps everything; a
  portrait mode wants about 1 on the person and little on the background.

The table gives the mean and the median over the photos of each number, auto and tapped.

    python -m bokeh.evaluate ckpt=reference portraits=path/to/portraits [out=metrics.json]
"""

from __future__ import annotations

import math
import sys
import statistics
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bokeh import metrics
from bokeh.data.focus import interior_point
from bokeh.data.portraits import Portrait, read_portrait
from bokeh.images import to_tensor

Focus = tuple[float, float] | None
# photo (H, W, 3) uint8, focus, aperture -> (the full-size render (H, W, 3) uint8, the matte (h, w) in [0, 1] or None)
PortraitRender = Callable[[np.ndarray, Focus, float | None], tuple[np.ndarray, torch.Tensor | None]]
PORTRAIT_APERTURE = 1.8  # f-number rendered: the lens of the training targets, a phone's portrait mode
KEYS = ("matte_iou", "detail_subject", "detail_background")
RUNS = ("auto", "tapped")


def _unit(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(1, 3, H, W)`` float in [0, 1]."""
    return metrics.to_unit_range(to_tensor(image))[None]


def backend_render(backend, *, subject: str = "auto") -> tuple[PortraitRender, bool]:
    """A :data:`PortraitRender` for a ``bokeh.render`` backend: each photo rendered at its own size
    exactly as ``python -m bokeh.render`` renders it (:func:`bokeh.render.render_photo`, one pass),
    with the matte that render used ``(H, W)`` at the photo's size; and whether there is one (a
    model with a matte, or ``subject="auto"``: the subject matte)."""
    from bokeh.images import from_tensor
    from bokeh.render.fit import has_matte, render_photo

    def render(image: np.ndarray, focus: Focus, aperture: float | None) -> tuple[np.ndarray, torch.Tensor | None]:
        rendered = render_photo(image, backend, focus=focus, aperture=aperture, subject=subject)
        return from_tensor(rendered.image), None if rendered.matte is None else rendered.matte[0]

    return render, has_matte(backend) or subject != "off"


def mask_at(mask: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The ``(H, W)`` bool mask at ``size`` ``(h, w)``: area-averaged, then > 0.5; ``(1, 1, h, w)`` float {0, 1}."""
    region = torch.from_numpy(mask).float()[None, None]
    if tuple(region.shape[-2:]) != tuple(size):
        region = (F.interpolate(region, size=tuple(size), mode="area") > 0.5).float()
    return region


def score_portrait(portrait: Portrait, render: PortraitRender, *, tapped: bool = True,
                   aperture: float | None = None) -> dict:
    """One photo's rows: ``{"name", "size", "focus", "auto": {key: value}, "tapped": {...}}`` (``tapped``
    only when asked), keys :data:`KEYS` plus ``fraction_subject``, ``fraction_background``; NaN for
    a number the photo or model does not give (no matte, no textured background).

    Raises:
        ValueError: an unreadable photo or mask, a mask whose size differs from its photo's, or a
            render that is not an image of the photo's size.
    """
    image, mask = read_portrait(portrait)
    point = interior_point(mask)
    image_t, mask_t = _unit(image), torch.from_numpy(mask)[None, None]
    row: dict = {"name": portrait.name, "size": list(image.shape[:2]), "focus": point}
    for run in RUNS if tapped else RUNS[:1]:
        with torch.inference_mode():
            output, matte = render(image, point if run == "tapped" else None, aperture)
            if output.shape != image.shape or output.dtype != np.uint8:
                raise ValueError(f"render returned {output.dtype} {output.shape} for a {image.shape} uint8 photo "
                                 f"({portrait.image}): it must return an image of the photo's size")
            scores = {key: float(value[0]) for key, value in metrics.portrait_detail(_unit(output), image_t, mask_t).items()}
            iou = float("nan")
            if matte is not None:
                iou = float(metrics.matte_iou(matte[None, None], mask_at(mask, tuple(matte.shape)))[0])
        row[run] = {"matte_iou": iou, **scores}
    return row


def summarize(rows: Sequence[dict], run: str) -> dict[str, dict[str, float]]:
    """``{key: {"mean", "median", "photos"}}`` over the ``rows`` of ``run``, each key over the photos
    where it is a number (``photos``: how many; mean and median NaN where none is)."""
    summary = {}
    for key in (*KEYS, "fraction_subject", "fraction_background"):
        values = [r[run][key] for r in rows if run in r and not math.isnan(r[run][key])]
        summary[key] = {"mean": statistics.fmean(values) if values else float("nan"),
                        "median": statistics.median(values) if values else float("nan"), "photos": len(values)}
    return summary


def evaluate_portraits(portraits: Sequence[Portrait], render: PortraitRender, *, tapped: bool = True,
                       aperture: float | None = None, progress: Callable[[dict], None] | None = None,
                       skipped: Callable[[str], None] | None = None) -> dict:
    """:func:`score_portrait` for every photo, and the summary of each run.

    Returns:
        ``{"photos": [rows], "summary": {"auto": {key: {"mean", "median", "photos"}}, "tapped": ...}}``.

    Raises:
        ValueError: no photos, or as :func:`score_portrait`.
    """
    if not portraits:
        raise ValueError("no portraits to score")
    say = skipped or (lambda line: print(line, file=sys.stderr, flush=True))
    rows, left_out = [], {}
    for portrait in portraits:
        row = score_portrait(portrait, render, tapped=tapped, aperture=aperture)
        # the person's detail is what every portrait gives; a subject without texture (a uniform photo) measures nothing
        reason = "; ".join(f"{run}: {why}" for run in RUNS if run in row for why in [metrics.unscorable(row[run], ("detail_subject",))] if why)
        if reason:
            left_out[portrait.name] = reason
            say(metrics.unscorable_line(portrait.image, reason))
            continue
        rows.append(row)
        if progress is not None:
            progress(rows[-1])
    if not rows:
        raise ValueError(f"no portrait could be scored: every photo's scores are not finite (e.g. {portraits[0].image}: "
                         f"{left_out[portraits[0].name]}); give photos whose subject has texture")
    return {"photos": rows, "summary": {run: summarize(rows, run) for run in RUNS if run in rows[0]}, "skipped": left_out}


def _cell(value: float, digits: int = 3) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_portrait_table(results: dict, matte: bool = True) -> str:
    """A plain-text table of :func:`evaluate_portraits`'s summary: rows auto / tapped, columns mean
    and median of each number, then a line saying what each means."""
    labels = {"matte_iou": "matte IoU", "detail_subject": "detail kept: person", "detail_background": "textured background"}
    lines = [f"{'run':<7} " + " ".join(f"{labels[k]:>21}" for k in KEYS),
             f"{'':<7} " + " ".join(f"{'mean':>10} {'median':>10}" for _ in KEYS)]
    for run, summary in results["summary"].items():
        lines.append(f"{run:<7} " + " ".join(f"{_cell(summary[k]['mean']):>10} {_cell(summary[k]['median']):>10}" for k in KEYS))
    count = len(results["photos"])
    band = f"{metrics.PORTRAIT_BAND:.0%}"
    lines.append(f"({count} photo(s); matte IoU: the matte the render used > 0.5 against the mask at the matte's size (the photo's)"
                 + ("" if matte else ": none, this model has no matte and subject=off") + "; detail kept: local gradient energy of the full-size "
                 f"render over the photo's, median over the person (mask shrunk by {band} of the short side) and over the textured "
                 f"background (beyond the mask grown by {band}, local RMS gradient >= {metrics.FLAT_GRADIENT * 255:g}/255 per px); "
                 f"tapped: at the point deepest inside the mask; see bokeh.metrics)")
    return "\n".join(lines)
