"""The full-size photo through the matte: ``output = m * photo + (1 - m) * B`` at any photo size.

A model with a matte (Glass-Net's ``blend``; :class:`~bokeh.models.controls.OutputContract`) gives,
at its working size, the keep weight ``m`` in [0, 1] (1 = the photo's own pixel) and the rendered
defocus layer ``B``. The photo itself is usually larger. Every render path (torch, ONNX Runtime,
LiteRT on the CPU and the GPU: :func:`bokeh.render.fit.render_photo`) brings both to the photo's
size here:

* ``B`` is blurred already: bilinear upsampling loses nothing it has (:func:`upsample_background`).
* ``m`` must follow the photo's own outlines (hair, the edge of a face), which the working size
  cannot hold: bilinear upsampling, then a guided filter (He et al. 2010; kornia's
  ``guided_blur``) with the full-size photo as guidance (:func:`upsample_matte`): inside each
  window the matte becomes an affine function of the photo's colours, so a step in the photo
  becomes a step in the matte, while flat stretches of the matte stay flat. The filter runs in its
  fast form (He and Sun 2015, ``subsample``): its window statistics at about the working size,
  the affine coefficients upsampled and applied to the full-size photo.

The guidance is the photo's luma (Rec. 601 weights): a colour guidance (3 x 3 covariances and a
solve per pixel) took 7 s against 1 s for luma at 12 MP on 2 cores (``subsample=2``), more than
the whole render's time budget. Parameters (``benchmarks/composite_params.py``: the hand-labelled
person masks of ``portraits/`` made perfect mattes at a working size 4x below the photo; and a step
edge):

* :data:`RADIUS` working pixels: the window is ``2 * round(RADIUS * factor) + 1`` photo pixels, so
  it spans the same part of the picture at every upsampling factor and reaches across a bilinear
  matte's edge to both sides of the photo's edge; wider windows smear the matte along the outline
  (outline-band error 0.097 at 1, 0.125 at 2, 0.172 at 4 working pixels);
* :data:`EPS` (squared [0, 1] luma units): an edge in the photo stronger than about ``sqrt(EPS)``
  (0.01) steers the matte; larger values leave a softer, more bilinear edge (0.097, 0.104, 0.123
  for 1e-4, 1e-3, 1e-2).

Measured, honestly: against those hand-drawn masks the guided matte is a little further off than
the bilinear one (IoU 0.994 against 0.996, error in the outline band 0.097 against 0.069): the
drawn outlines do not follow the photo's edges to the pixel, and the fast filter's subsampled
statistics cost some accuracy. At a step edge of the photo (4x upsampling) the guided matte
steps 3x more steeply than the bilinear one, exactly at the photo's edge (``tests/test_composite.py``),
which is what keeps outlines crisp when the matte is right; the guided filter's own soft tails,
about a window wide on either side, remain.

Pure torch (and kornia): no I/O, no runtime, no model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from kornia.filters import guided_blur

RADIUS = 1.0  # working pixels; scaled by the upsampling factor
EPS = 1e-4  # squared [0, 1] luma units
LUMA = (0.299, 0.587, 0.114)  # Rec. 601: the guidance
SNAP = 1e-5  # matte values this close to 0 or 1 are exactly 0 or 1: float rounding of the filter's window means


def upsample_background(background: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The defocus layer at ``size``: bilinear (antialiased when shrinking).

    Shape:
        background: ``(B, 3, h, w)``; returns ``(B, 3, *size)`` (the input itself at its own size).
    """
    if tuple(background.shape[-2:]) == tuple(size):
        return background
    shrink = size[0] < background.shape[-2] or size[1] < background.shape[-1]
    return F.interpolate(background, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)


def upsample_matte(matte: torch.Tensor, photo: torch.Tensor, radius: float = RADIUS, eps: float = EPS) -> torch.Tensor:
    """The matte at the photo's size, its edges where the photo's are.

    Bilinear to the photo's size, then (when that enlarged it) kornia's guided filter with the photo's
    luma (in [0, 1]) as guidance: window ``2 * round(radius * factor) + 1`` photo pixels, ``eps``,
    subsampled by ``floor(factor)`` (the fast guided filter), for the upsampling ``factor``; then
    clamped to [0, 1], values within :data:`SNAP` of 0 or 1 made exact (so a matte of 1 returns the
    photo exactly, one of 0 the background). A photo smaller than the matte (a fixed-size model
    given a small photo) gets the matte resized down, nothing else.

    Args:
        matte: keep weights in [0, 1].
        photo: the full-size photo in [-1, 1].
        radius: the guided filter's radius in working pixels (:data:`RADIUS`).
        eps: its regularisation, in squared [0, 1] luma units (:data:`EPS`).

    Shape:
        matte: ``(B, 1, h, w)``; photo: ``(B, 3, H, W)``; returns ``(B, 1, H, W)`` in [0, 1].
    """
    size = tuple(photo.shape[-2:])
    factor = max(size[0] / matte.shape[-2], size[1] / matte.shape[-1])
    up = upsample_background(matte, size)
    window = 2 * max(1, round(radius * factor)) + 1
    if factor > 1.0 and min(size) >= 2 * window:  # a photo thinner than two windows (a 1-px strip) stays bilinear
        weights = torch.tensor(LUMA, dtype=up.dtype, device=up.device).view(1, 3, 1, 1) * 0.5
        guidance = (photo.to(up.dtype) * weights).sum(1, keepdim=True) + 0.5  # (B, 1, H, W) luma in [0, 1]
        subsample = max(1, math.floor(factor))
        # reflection needs more pixels than the window reaches at the subsampled size: else repeat the edge
        border = "reflect" if min(size) // subsample > window else "replicate"
        up = guided_blur(guidance, up, window, eps, border_type=border, subsample=subsample)
    up = up.clamp(0.0, 1.0)
    return torch.where(up > 1.0 - SNAP, 1.0, torch.where(up < SNAP, 0.0, up))


def composite(photo: torch.Tensor, matte: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """``matte * photo + (1 - matte) * background``, all at one size.

    Shape:
        photo, background: ``(B, 3, H, W)`` in [-1, 1]; matte: ``(B, 1, H, W)`` in [0, 1]; returns
        ``(B, 3, H, W)`` in [-1, 1] (clamped: in bf16 the blend can round past the range).
    """
    return torch.lerp(background, photo, matte).clamp(-1.0, 1.0)


def full_size(photo: torch.Tensor, matte: torch.Tensor, background: torch.Tensor,
              radius: float = RADIUS, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """The bokeh image at the photo's size from a model's matte and defocus layer at its working size.

    Args:
        photo: the photo in [-1, 1], at its own size (and orientation as the model saw it).
        matte, background: the model's outputs for the photo resized to the working size, padding cut off.
        radius, eps: the guided filter's (:func:`upsample_matte`).

    Shape:
        photo: ``(B, 3, H, W)``; matte: ``(B, 1, h, w)``; background: ``(B, 3, h, w)``. Returns the image
        ``(B, 3, H, W)`` and the matte ``(B, 1, H, W)`` in [0, 1], both at the photo's size.
    """
    matte_up = upsample_matte(matte, photo, radius, eps)
    return composite(photo, matte_up, upsample_background(background, tuple(photo.shape[-2:]))), matte_up
