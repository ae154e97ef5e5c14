"""The portrait benchmark: photos with a subject mask and no target. Does the model keep the person and blur the rest?

A folder holds ``images/<name>.jpg`` and ``masks/<name>.png`` (white = the person; :mod:`bokeh.data.portraits`).
Each photo is rendered by the model at f/1.8 (``aperture=``, for a model with an aperture input)
twice: on its own guess (auto) and, for a model with a focus input, tapped at the point deepest
inside the mask (:func:`bokeh.data.focus.interior_point`). Per photo and run:

* ``matte_iou``: the model's matte ``m > 0.5`` against the mask (:func:`bokeh.metrics.matte_iou`),
  at the size the matte comes at (today the working size: the mask is area-reduced to it and
  thresholded at half). A model without a matte has none: said once, and left out.
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


def full_size(image: np.ndarray, backend, focus: Focus, aperture: float | None) -> np.ndarray:
    """The photo rendered at its own size, exactly as ``python -m bokeh.render`` renders it by default.

    The one line to change when the full-size compositor of the matte replaces
    :func:`bokeh.render.fit.restore_detail` in the render path.
    """
    from bokeh.render import render_to_uint8

    return render_to_uint8(image, backend, focus=focus, aperture=aperture)


def working_matte(backend) -> Callable[[np.ndarray, Focus, float | None], torch.Tensor] | None:
    """A function giving ``backend``'s matte ``(h, w)`` in [0, 1] at the working size ``bokeh.render``
    runs the photo at (same resize, padding, focus mapping and network, in the runtime's precision),
    or None for a model without one: a torch Glass-Net without ``blend``, or an exported model (until
    the runtimes return their ``matte`` output)."""
    from bokeh.data.transforms import unpad
    from bokeh.inference import DTYPES, model_precision
    from bokeh.render.fit import pad_to, plan_for, resize, working_short_side
    from bokeh.runtimes.base import control_inputs

    model = getattr(getattr(backend, "runtime", None), "model", None)
    if not getattr(model, "blend", False) or not hasattr(model, "layers"):
        return None

    def matte(image: np.ndarray, focus: Focus, aperture: float | None) -> torch.Tensor:
        plan = plan_for(image.shape[:2], backend.static_size, working_short_side(backend, "auto"))
        work = resize(to_tensor(image)[None], plan.work)  # (1, 3, *work)
        x = pad_to(work, plan.canvas).to(DTYPES[model_precision(model)]).contiguous(memory_format=torch.channels_last)
        controls = control_inputs(backend.contract, 1, plan.map_point(focus) if focus is not None else None, aperture)
        with torch.inference_mode():
            layers = model.layers(x, **{k: torch.from_numpy(v).to(x.dtype) for k, v in controls.items()})
        return unpad(layers.matte.float(), plan.work)[0, 0]  # (h, w)

    return matte


def backend_render(backend) -> tuple[PortraitRender, bool]:
    """A :data:`PortraitRender` for a ``bokeh.render`` backend (:func:`full_size` and
    :func:`working_matte`), and whether it gives a matte."""
    matte_of = working_matte(backend)

    def render(image: np.ndarray, focus: Focus, aperture: float | None) -> tuple[np.ndarray, torch.Tensor | None]:
        output = full_size(image, backend, focus, aperture)
        return output, matte_of(image, focus, aperture) if matte_of is not None else None

    return render, matte_of is not None


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
                       aperture: float | None = None, progress: Callable[[dict], None] | None = None) -> dict:
    """:func:`score_portrait` for every photo, and the summary of each run.

    Returns:
        ``{"photos": [rows], "summary": {"auto": {key: {"mean", "median", "photos"}}, "tapped": ...}}``.

    Raises:
        ValueError: no photos, or as :func:`score_portrait`.
    """
    if not portraits:
        raise ValueError("no portraits to score")
    rows = []
    for portrait in portraits:
        rows.append(score_portrait(portrait, render, tapped=tapped, aperture=aperture))
        if progress is not None:
            progress(rows[-1])
    return {"photos": rows, "summary": {run: summarize(rows, run) for run in RUNS if run in rows[0]}}


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
    lines.append(f"({count} photo(s); matte IoU: the model's matte > 0.5 against the mask at the matte's size (the working size)"
                 + ("" if matte else ": none, this model has no matte") + "; detail kept: local gradient energy of the full-size "
                 f"render over the photo's, median over the person (mask shrunk by {band} of the short side) and over the textured "
                 f"background (beyond the mask grown by {band}, local RMS gradient >= {metrics.FLAT_GRADIENT * 255:g}/255 per px); "
                 f"tapped: at the point deepest inside the mask; see bokeh.metrics)")
    return "\n".join(lines)
