"""The matte loss: teaches Glass-Net's keep weight m where each pair knows what stays sharp.

A pair knows its in-focus region exactly from its blur radii (synthetic scenes, photo pairs: radius
below 1 px) or from a subject mask (portraits, salient objects, real pairs with ``focal/``); its
matte target (:func:`bokeh.data.focus.matte_target`) is 1 there, 0 elsewhere, and ``-1`` (unknown)
on every pixel of a pair that knows neither, which then adds nothing: m stays free where the data
is silent. Forms:

* ``bce``: binary cross-entropy of the logit against the target, averaged over known pixels.
* ``dice``: 1 - soft Dice (Milletari et al. 2016, V-Net, eq. 1) per image over known pixels, mean
  over the images that know any; indifferent to how large the region is.
* ``bce_dice``: their sum.

Pure torch: no I/O, no Lightning, no Hydra.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

MatteForm = Literal["bce", "dice", "bce_dice"]
MATTE_FORMS = ("bce", "dice", "bce_dice")


def matte_loss(logit: torch.Tensor, target: torch.Tensor, form: MatteForm = "bce") -> torch.Tensor:
    """The matte loss of ``form`` (module docstring) over the pixels whose target is known.

    Shape:
        logit: ``(B, 1, H, W)`` the keep weight's logit (m = sigmoid(logit)); target: ``(B, 1, H, W)``
        in {0, 1}, negative where unknown. Returns a scalar >= 0; exactly 0 (still attached to the
        graph, with zero gradient) when no pixel is known.

    Raises:
        ValueError: shapes that differ or an unknown ``form``.
    """
    if logit.shape != target.shape or logit.ndim != 4 or logit.shape[1] != 1:
        raise ValueError(f"matte_loss needs (B, 1, H, W) logit and target of one shape, got {tuple(logit.shape)} and {tuple(target.shape)}")
    if form not in MATTE_FORMS:
        raise ValueError(f"loss.matte.form must be one of {MATTE_FORMS}, got {form!r}")
    logit = logit.float()
    known = (target >= 0).to(logit.dtype)
    wanted = target.clamp(min=0.0).to(logit.dtype)
    total = logit.sum() * 0.0  # keeps the graph when nothing is known
    if form in ("bce", "bce_dice"):
        per_pixel = F.binary_cross_entropy_with_logits(logit, wanted, reduction="none")
        total = total + (per_pixel * known).sum() / known.sum().clamp(min=1.0)
    if form in ("dice", "bce_dice"):
        m = torch.sigmoid(logit) * known
        wanted = wanted * known
        counts = known.flatten(1).sum(1)  # (B,)
        overlap = (m * wanted).flatten(1).sum(1)
        sizes = m.flatten(1).sum(1) + wanted.flatten(1).sum(1)
        dice = 1.0 - (2.0 * overlap + 1.0) / (sizes + 1.0)  # (B,), smoothed: an empty region with m = 0 scores 0
        has = (counts > 0).to(logit.dtype)
        total = total + (dice * has).sum() / has.sum().clamp(min=1.0)
    return total
