"""Training pairs from real photos and their human segmentations, rendered by the thin-lens optics.

    python -m bokeh.data.photo_pairs src=/path/to/BSDS500 out=DIR [seed=0] [n=all] [workers=1]
    python -m bokeh.data.photo_pairs src=/path/to/portraits out=DIR     # images/ + masks/ (one subject mask each)
    python -m bokeh.data.photo_pairs src=/path/to/BSDS500 masks=/path/to/sod out=DIR

A photo (all in focus) and its human segmentations become a scene of flat layers at depths
(:func:`make_photo_pair`):

1. **Size.** The photo is resized so its short side is ``short_side`` (256: BSDS500's 321 x 481
   gives 256 x 384) and centre-cropped to multiples of 8; blur radii are those of that size.
2. **Subject** (:func:`choose_subject`): over every annotator's segmentation, the segment that is
   compact, central, 4-45 % of the frame, touches the frame's top and sides little, and that the
   other annotators agree on (their best overlap with it); enclosed segments join it. It stands at
   the focus distance: radius 0, identical in the input and the target.
3. **Depth of the rest** (:func:`layout_depth`), as a camera on the ground sees it: a ground plane
   whose depth grows row by row towards a horizon, passing through the subject's lowest row at
   the focus distance. A segment that touches the bottom of the frame and spans it widely is
   that ground (per-row depth), or else a backdrop behind the subject; one that touches the top
   and ends above the horizon is far (sky); any other stands on the ground at its lowest row
   (lower in the frame = nearer, higher = farther), and no nearer than the backdrop when it
   rises out of the frame's top (trees, walls). Sometimes one segment at a side or the bottom is a foreground occluder nearer than
   the focus distance.
4. **Render** (:func:`render_depth`): the depth map is cut into the radius bins of
   :func:`bokeh.data.optics.radius_grid`; each bin is a layer that also covers everything nearer
   (an underlay), whose hidden colours are filled by normalized convolution from that bin and
   farther ones only (a push-pull pyramid of ``image * m`` over ``m``), so a subject's colours
   never leak into the blurred background. The bins are blurred with disc kernels in the
   ``display ** 4`` working space and composited far to near by :mod:`bokeh.data.optics`; the
   brightest background pixels are boosted 1.5-3x as lights, so highlights make discs.
5. **Lens.** EBB!'s camera (50 mm, APS-C 22.3 mm): the target at an f-number drawn per pair
   (``f_number``, log-uniform, with a share ``wide_open`` at exactly its lower end), the input
   the same scene stopped down to ``input_f_number`` (f/16) or more: its aperture diameter is a
   uniform fraction in ``[0, f_target / 16]`` of the target's. Radii are capped at
   ``max_radius * width`` as in the synthetic scenes.

A photo with a subject mask instead (a portrait and its person mask, a salient-object mask) is
the same scene with that mask as the subject and the rest one background segment (a ground plane
or a backdrop behind it); such photos are kept even where their background is already soft.

Photos whose background is already blurred (a portrait lens: the background's detail energy far
below the subject's) and photos with no acceptable subject are skipped (:class:`PhotoSkipped`).

The writer lays the pairs out as EBB! does (:mod:`bokeh.data.layout`): ``original/<name>.jpg``,
``bokeh/<name>.jpg``, ``coc/<name>.png`` (the blur radius rendered in the target),
``focal/<name>.png`` (the subject mask, 0/255) and ``f_numbers.json`` (name -> target f-number),
then ``meta.json`` last (its presence marks a finished set). Names are ``bsds-<split>-<id>``.
Other keys: ``quality=95`` (JPEG), ``overwrite=false`` (``true`` replaces an earlier set of ours:
exactly the files its ``meta.json`` lists; a folder holding other files where the pairs go is
refused). Every value and input (``seed``, the masks' sizes, pair names that would collide or be too
long) is checked before the first file is touched. Pair ``i`` (the ``i``-th photo of the
sorted list) of set ``seed`` is the same on every machine: its random stream is
``SeedSequence([seed, i])``.
"""

from __future__ import annotations

import json
import os
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from bokeh.data.layout import COC_DIR, FOCAL_DIR, INPUT_DIR, TARGET_DIR
from bokeh.data.optics import Slice, ThinLens, radius_grid, render, to_working
from bokeh.data.synthetic import add_noise, pair_rng
from bokeh.images import float_to_uint8

#: Bump when a change to the layout or renderer changes the pixels of a given seed/index.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class PhotoPairConfig:
    """Ranges a photo pair draws from (uniform, or log-uniform where marked)."""

    short_side: int = 256  # the photo is resized to this short side (then cropped to multiples of 8)
    focal_mm: float = 50.0  # EBB!'s lens and sensor
    sensor_width_mm: float = 22.3
    focus_m: tuple[float, float] = (0.8, 4.0)  # log-uniform
    f_number: tuple[float, float] = (1.8, 11.0)  # the target's, log-uniform
    wide_open: float = 0.4  # the share of pairs at exactly f_number[0]
    input_f_number: float = 16.0  # the input is this f-number or narrower
    max_radius: float = 0.03  # CoC radius cap, as a fraction of the width
    gamma: float = 4.0  # the renderer's working space: display ** gamma
    background_m: tuple[float, float] = (8.0, 80.0)  # log-uniform: sky and far segments
    horizon: tuple[float, float] = (0.2, 0.55)  # the horizon's row, fraction of the height (lower if the subject needs it)
    ground: float = 0.85  # probability that wide segments at the bottom are a ground plane (else a backdrop)
    near: float = 0.25  # probability of a foreground occluder
    lights: tuple[float, float] = (1.5, 3.0)  # boost of the brightest background pixels, in linear light
    noise: float = 0.01  # largest std of the noise added to each image (in [0, 1] units)
    subject_area: tuple[float, float] = (0.04, 0.45)  # fraction of the frame
    subject_border: float = 0.12  # most of the frame's top and sides (and a quarter of its bottom) it may touch
    subject_agreement: float = 0.4  # least mean best-overlap (IoU) with the other annotators' segments
    blurred_background: float = 0.1  # skip when the background's detail energy is below this x the subject's


class PhotoSkipped(ValueError):
    """A photo that gives no pair; ``reason`` is ``"no subject"`` or ``"blurred background"``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}{': ' + detail if detail else ''}")
        self.reason = reason


@dataclass
class PhotoPair:
    """One rendered pair.

    Shape:
        sharp, bokeh: ``(H, W, 3)`` ``uint8`` RGB. subject: ``(H, W)`` ``bool`` (the in-focus
        subject). depth: ``(H, W)`` ``float32`` metres. blur_radius: ``(H, W)`` ``float32`` the
        radius in pixels of the disc rendered at each pixel of the target (|CoC| of its bin, capped).
    """

    sharp: np.ndarray
    bokeh: np.ndarray
    subject: np.ndarray
    depth: np.ndarray
    blur_radius: np.ndarray
    f_number: float
    focus_m: float
    input_aperture: float


# ----------------------------------------------------------------------------- the photo


def frame_size(height: int, width: int, short_side: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(resized (h, w), cropped (h, w))``: the short side scaled to ``short_side``, then both sides
    cut down to multiples of 8 (a centred crop of a few pixels)."""
    scale = short_side / min(height, width)
    resized = (max(8, round(height * scale)), max(8, round(width * scale)))
    return resized, (resized[0] // 8 * 8, resized[1] // 8 * 8)


def resize_photo(image: np.ndarray, segmentations: list[np.ndarray], short_side: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The photo (bicubic) and its label images (nearest) at the frame size of :func:`frame_size`.

    Shape:
        image: ``(H, W, 3)`` ``uint8``; segmentations: ``(H, W)`` integer labels. Returns
        ``(h, w, 3)`` ``float32`` in [0, 1] and ``(h, w)`` ``int32`` labels.
    """
    (rh, rw), (h, w) = frame_size(*image.shape[:2], short_side)
    y0, x0 = (rh - h) // 2, (rw - w) // 2
    resized = np.asarray(Image.fromarray(image).resize((rw, rh), Image.BICUBIC), np.float32) / 255.0
    labels = [np.asarray(Image.fromarray(s.astype(np.int32)).resize((rw, rh), Image.NEAREST))[y0 : y0 + h, x0 : x0 + w] for s in segmentations]
    return np.clip(resized[y0 : y0 + h, x0 : x0 + w], 0.0, 1.0), [np.ascontiguousarray(s, np.int32) for s in labels]


# ----------------------------------------------------------------------------- the subject


def _best_overlaps(mask: np.ndarray, others: list[np.ndarray]) -> float:
    """Mean over ``others`` (label images) of the best IoU of ``mask`` with one of their segments."""
    if not others:
        return 1.0
    area = mask.sum()
    ious = []
    for labels in others:
        sizes = np.bincount(labels.ravel())
        inside = np.bincount(labels[mask], minlength=len(sizes))
        ious.append(float((inside / np.maximum(area + sizes - inside, 1)).max()))
    return float(np.mean(ious))


_BORDER_BAND = 4  # pixels from the frame's edge that count as touching it (annotations stop short of it)


def choose_subject(segmentations: list[np.ndarray], config: PhotoPairConfig = PhotoPairConfig()) -> tuple[int, np.ndarray] | None:
    """The subject: ``(annotator, mask)``, or ``None`` when no segment qualifies.

    A candidate is a segment of one annotator's label image with ``subject_area`` of the frame,
    touching the frame's top and sides (within 4 px) for at most ``subject_border`` of their
    length (the bottom counts a quarter: a person cut off by the frame's bottom is a subject),
    filling at least 30 % of its bounding box and at most 85 % of the frame's width, and agreed on by the other annotators (mean best IoU at
    least ``subject_agreement``). The best scores agreement, then centrality. Segments the
    chosen one encloses join it (a face drawn inside a body).

    Shape:
        segmentations: ``(h, w)`` integer label images; the mask is ``(h, w)`` ``bool``.
    """
    height, width = segmentations[0].shape
    perimeter = 2 * (height + width)
    best, best_score = None, -np.inf
    for k, labels in enumerate(segmentations):
        others = segmentations[:k] + segmentations[k + 1 :]
        sizes = np.bincount(labels.ravel())
        for label in np.nonzero(sizes)[0]:
            area = sizes[label] / (height * width)
            if not config.subject_area[0] <= area <= config.subject_area[1]:
                continue
            mask = labels == label
            band = _BORDER_BAND
            top, bottom = mask[:band].any(0).sum(), mask[-band:].any(0).sum()
            left, right = mask[:, :band].any(1).sum(), mask[:, -band:].any(1).sum()
            border = (top + left + right + 0.25 * bottom) / perimeter
            if border > config.subject_border:
                continue
            rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
            box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
            if sizes[label] < 0.3 * box_h * box_w or box_w > 0.85 * width:
                continue
            agreement = _best_overlaps(mask, others)
            if agreement < config.subject_agreement:
                continue
            ys, xs = np.nonzero(mask)
            off_centre = math.hypot(ys.mean() / height - 0.5, xs.mean() / width - 0.5) / math.hypot(0.5, 0.5)
            score = agreement - 0.6 * off_centre - 2.0 * border
            if score > best_score:
                best, best_score = (k, mask), score
    if best is None:
        return None
    k, mask = best
    return k, ndimage.binary_fill_holes(mask)


def detail_ratio(image: np.ndarray, subject: np.ndarray) -> float:
    """The background's detail energy over the subject's: mean squared high-pass (image minus a
    Gaussian of 1.5 px) of the gray image outside the subject (dilated 4 px) and inside it (eroded
    2 px). About 1 for an all-in-focus photo, far below for a photo with a blurred background."""
    gray = image.mean(2)
    high = (gray - ndimage.gaussian_filter(gray, 1.5)) ** 2
    inside = ndimage.binary_erosion(subject, iterations=2)
    outside = ~ndimage.binary_dilation(subject, iterations=4)
    if inside.sum() < 16 or outside.sum() < 16:
        return 1.0
    return float(high[outside].mean() / max(high[inside].mean(), 1e-12))


# ----------------------------------------------------------------------------- depth


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def layout_depth(labels: np.ndarray, subject: np.ndarray, lens: ThinLens, rng: np.random.Generator, config: PhotoPairConfig = PhotoPairConfig()) -> np.ndarray:
    """Depth in metres of every pixel (see the module docstring, step 3).

    Shape:
        labels: ``(h, w)`` integer segments; subject: ``(h, w)`` ``bool``; returns ``(h, w)``
        ``float32``, ``lens.focus_m`` on the subject, in ``[near, far]`` elsewhere.
    """
    height, width = labels.shape
    focus = lens.focus_m
    far = max(_log_uniform(rng, config.background_m), 2.5 * focus)
    nearest = max(0.3 * focus, 2.0 * lens.focal_mm / 1000.0)
    rows = np.nonzero(subject.any(1))[0]
    contact = rows[-1] + 1.0  # the subject's lowest row stands on the ground at the focus distance
    if rows[-1] >= height - 1:  # cut off by the frame: its feet are below it
        contact = height + rng.uniform(0.0, 0.4) * (rows[-1] - rows[0] + 1)
    horizon = min(rng.uniform(*config.horizon) * height, contact - 0.15 * height)
    scale = focus * (contact - horizon)  # ground depth of row y: scale / (y - horizon)

    def ground(y: np.ndarray | float) -> np.ndarray:
        y = np.asarray(y, np.float64)
        return np.clip(np.where(y > horizon, scale / np.maximum(y - horizon, 1e-6), far), nearest, far)

    row_depth = ground(np.arange(height) + 0.5)
    backdrop = min(focus * rng.uniform(1.5, 5.0), far)
    plane = rng.uniform() < config.ground
    depth = np.full(labels.shape, far, np.float32)
    rest = np.where(subject, -1, labels)
    segments = [s for s in np.unique(rest) if s >= 0]
    occluders = []
    for segment in segments:
        mask = rest == segment
        seg_rows = np.nonzero(mask.any(1))[0]
        seg_cols = np.nonzero(mask.any(0))[0]
        bottom, top = seg_rows[-1], seg_rows[0]
        wide = mask[-1].sum() > 0.25 * width or seg_cols[-1] - seg_cols[0] > 0.5 * width
        if bottom == height - 1 and wide:
            if plane:
                depth[mask] = np.broadcast_to(row_depth[:, None], labels.shape)[mask]
            else:  # a backdrop (a wall) behind the subject
                depth[mask] = backdrop
            continue
        if top == 0 and bottom + 1 <= horizon:
            depth[mask] = far
            continue
        standing = float(ground(bottom + 1.0)) * math.exp(rng.normal(0.0, 0.1))
        if top == 0:  # rises above the subject out of the frame: usually behind it (trees, walls)
            standing = max(standing, backdrop)
        depth[mask] = float(np.clip(standing, nearest, far))
        touches_side = mask[:, 0].any() or mask[:, -1].any() or mask[-1].any()
        if touches_side and 0.02 <= mask.mean() <= 0.3:
            occluders.append(mask)
    if occluders and rng.uniform() < config.near:
        mask = occluders[int(rng.integers(len(occluders)))]
        depth[mask] = max(focus * rng.uniform(0.3, 0.7), nearest)
    depth[subject] = focus
    return depth


# ----------------------------------------------------------------------------- rendering


def fill_hidden(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` where ``known``, elsewhere a normalized convolution of its known pixels: a push-pull
    pyramid of ``(image * known, known)`` halved until every cell has support, each level's
    ``image * known / known`` blended with the smoothly enlarged coarser level by its support.

    Shape:
        image: ``(h, w, C)`` ``float32``; known: ``(h, w)`` ``bool``; returns ``(h, w, C)``. With
        no known pixel at all, zeros.
    """
    if known.all():
        return image.copy()
    if not known.any():
        return np.zeros_like(image)
    weight = known.astype(np.float32)
    levels = [(image * weight[..., None], weight)]
    while levels[-1][1].min() <= 0 and min(levels[-1][1].shape) > 1:
        colour, weight = levels[-1]
        h, w = weight.shape
        if h % 2 or w % 2:  # pad odd sides with zero support
            colour = np.pad(colour, ((0, h % 2), (0, w % 2), (0, 0)))
            weight = np.pad(weight, ((0, h % 2), (0, w % 2)))
        h, w = weight.shape
        colour = colour.reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3))
        weight = weight.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        levels.append((colour, weight))
    colour, weight = levels[-1]
    filled = colour / np.maximum(weight, 1e-6)[..., None]
    if weight.min() <= 0:  # a 1-pixel level without support everywhere: its mean
        filled[weight <= 0] = (colour.sum((0, 1)) / max(weight.sum(), 1e-6))
    for colour, weight in reversed(levels[:-1]):
        h, w = weight.shape
        up = np.repeat(np.repeat(filled, 2, 0), 2, 1)[:h, :w]
        up = ndimage.uniform_filter(up, size=(3, 3, 1), mode="nearest")
        support = np.minimum(weight * 4.0, 1.0)[..., None]  # a quarter of a cell known: trust it
        own = colour / np.maximum(weight, 1e-6)[..., None]
        filled = support * own + (1.0 - support) * up
    return np.where(known[..., None], image, filled).astype(np.float32)


def radius_bins(radius: np.ndarray, max_radius: float) -> tuple[np.ndarray, np.ndarray]:
    """``(grid, index)``: the radius grid of :func:`bokeh.data.optics.radius_grid` and the nearest
    bin of each pixel's signed radius (larger index = farther)."""
    grid = radius_grid(max_radius)
    clipped = np.clip(radius, -max_radius, max_radius)
    return grid, np.searchsorted((grid[1:] + grid[:-1]) / 2, clipped).astype(np.int32)


def render_depth(image: np.ndarray, radius: np.ndarray, apertures: tuple[float, ...], max_radius: float, gamma: float = 4.0,
                 surfaces: np.ndarray | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """Render a photo whose pixels have signed CoC radii, through the lens at each aperture.

    The frame is padded by reflection (a margin of the largest radius) so blur near the edges has
    content to draw from. Each radius bin is a layer covering itself and everything nearer; its
    hidden part is filled (:func:`fill_hidden`) from that bin and farther ones only, leaving out
    a 2-pixel band along nearer edges (annotations are not pixel exact), so nearer colours never
    spread behind; except where the nearer pixels belong to a surface (``surfaces``: a label per
    pixel, e.g. the segments) that also lies in the bin: a ground plane continues under its own
    nearer rows, as :func:`bokeh.data.optics.slice_layer`'s underlay does, so no seam shows. The bins are blurred and composited far to near (:func:`bokeh.data.optics.render`).

    Shape:
        image: ``(h, w, 3)`` ``float32`` display values >= 0 (above 1: lights); radius: ``(h, w)``
        signed px (> 0 behind the focal plane). Returns one ``(h, w, 3)`` ``float32`` image in
        [0, 1] per aperture (the fraction of the lens's diameter; 0 is a pinhole), and the
        ``(h, w)`` radius actually rendered at each pixel at aperture 1 (its bin's |radius|).
    """
    height, width = radius.shape
    margin = int(math.ceil(max_radius)) + 2
    grid, index = radius_bins(radius, max_radius)
    padded_index = np.pad(index, margin, mode="reflect")
    padded_image = np.pad(image, ((margin, margin), (margin, margin), (0, 0)), mode="reflect")
    padded_surfaces = np.pad(surfaces, margin, mode="reflect") if surfaces is not None else None
    canvas = padded_index.shape
    slices = []
    for b in np.unique(padded_index)[::-1]:  # far to near
        own = padded_index == b
        cover = padded_index <= b
        nearer = padded_index < b
        if padded_surfaces is not None and nearer.any():
            same = np.isin(padded_surfaces, np.unique(padded_surfaces[own])) & nearer  # the bin's surfaces, continued
            nearer = nearer & ~same
            known = ((padded_index >= b) | same) & ~ndimage.binary_dilation(nearer, iterations=2)
        else:
            known = (padded_index >= b) & ~ndimage.binary_dilation(nearer, iterations=2) if nearer.any() else own
        if not known.any():
            known = padded_index >= b
        colour = fill_hidden(padded_image, known) if not known[cover].all() else padded_image
        rows, cols = np.nonzero(cover.any(1))[0], np.nonzero(cover.any(0))[0]
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        alpha = cover[y0:y1, x0:x1].astype(np.float32)
        working = to_working(colour[y0:y1, x0:x1], gamma) * alpha[..., None]
        stack = np.concatenate([np.moveaxis(working, 2, 0), alpha[None]]).astype(np.float32)
        slices.append(Slice(stack, float(grid[b]), float(b), int(y0), int(x0)))
    images = [render(slices, canvas, gamma, aperture=a)[margin : margin + height, margin : margin + width] for a in apertures]
    return images, np.abs(grid[index]).astype(np.float32)


# ----------------------------------------------------------------------------- one pair


def boost_lights(image: np.ndarray, subject: np.ndarray, factor: float, gamma: float = 4.0) -> np.ndarray:
    """The brightest background pixels (max channel above 0.85, fully from 0.95) made ``factor``
    times brighter in linear light (``display * factor ** (1 / gamma)``), as lights brighter than
    white; the subject is left as it is. Shape: ``(h, w, 3)`` -> ``(h, w, 3)`` ``float32``."""
    ramp = np.clip((image.max(2) - 0.85) / 0.1, 0.0, 1.0) * ~subject
    return (image * (1.0 + (factor ** (1.0 / gamma) - 1.0) * ramp)[..., None]).astype(np.float32)


def make_photo_pair(image: np.ndarray, segmentations: list[np.ndarray], index: int, seed: int = 0, config: PhotoPairConfig = PhotoPairConfig(),
                    subject_given: bool = False) -> PhotoPair:
    """Pair ``index`` of set ``seed`` from one photo and its human segmentations.

    With ``subject_given`` the one segmentation is a subject mask (label 1 = the subject: a person
    mask, a salient-object mask): it is the subject as it is, the rest one background segment, and
    a photo whose background is already soft is kept (keep the subject, blur the rest more).

    Shape:
        image: ``(H, W, 3)`` ``uint8``; segmentations: ``(H, W)`` integer label images (one per
        annotator, at least one). The pair is at the frame size of :func:`frame_size`.

    Raises:
        PhotoSkipped: no acceptable subject, or the background is already blurred.
        ValueError: the segmentations do not match the photo's size.
    """
    if not segmentations:
        raise ValueError("a photo pair needs at least one segmentation of the photo")
    if image.ndim != 3 or image.shape[2] != 3 or any(s.shape != image.shape[:2] for s in segmentations):
        raise ValueError(f"the segmentations ({[s.shape for s in segmentations]}) must be label images of the photo's size {image.shape[:2]}")
    rng = pair_rng(seed, index)
    photo, labels = resize_photo(image, segmentations, config.short_side)
    if subject_given:
        annotator, subject = 0, labels[0] > 0
        area = float(subject.mean())
        if not 0.01 <= area <= 0.9:
            raise PhotoSkipped("no subject", f"its mask covers {area:.0%} of the frame")
        labels = [subject.astype(np.int32)]
    else:
        chosen = choose_subject(labels, config)
        if chosen is None:
            raise PhotoSkipped("no subject", "no compact, central segment that the annotators agree on")
        annotator, subject = chosen
    ratio = detail_ratio(photo, subject)
    if not subject_given and ratio < config.blurred_background:
        raise PhotoSkipped("blurred background", f"its detail energy is {ratio:.2f} x the subject's")
    height, width = subject.shape
    wide_open = rng.uniform() < config.wide_open
    f_number = config.f_number[0] if wide_open else _log_uniform(rng, config.f_number)
    lens = ThinLens(config.focal_mm, f_number, _log_uniform(rng, config.focus_m), config.sensor_width_mm)
    depth = layout_depth(labels[annotator], subject, lens, rng, config)
    scene = boost_lights(photo, subject, float(rng.uniform(*config.lights)), config.gamma)
    input_aperture = float(rng.uniform(0.0, f_number / config.input_f_number))
    max_radius = config.max_radius * width
    radius = np.asarray(lens.coc_radius(depth, width), np.float32)
    surfaces = np.where(subject, -1, labels[annotator])
    (sharp, bokeh), rendered = render_depth(scene, radius, (input_aperture, 1.0), max_radius, config.gamma, surfaces)
    sharp, bokeh = add_noise([sharp, bokeh], rng, config.noise)
    return PhotoPair(float_to_uint8(sharp), float_to_uint8(bokeh), subject, depth, rendered, float(f_number), lens.focus_m, input_aperture)


# ----------------------------------------------------------------------------- files


@dataclass(frozen=True)
class PhotoSource:
    """One photo of a source folder: its pair's name, the image and its segmentations file (a
    BSDS500 ``.mat``) or its subject mask (an image, white = the subject)."""

    name: str
    image: Path
    segmentations: Path

    @property
    def is_mask(self) -> bool:
        return self.segmentations.suffix.lower() != ".mat"


SOURCE_LAYOUT = ("expected a BSDS500 folder (images/<split>/<id>.jpg with groundTruth/<split>/<id>.mat beside them), "
                 "or a folder of photos with one subject mask each (images/<name>.jpg with masks/<name>.png; or masks=DIR)")
from bokeh.images import IMAGE_SUFFIXES as PHOTO_SUFFIXES  # noqa: E402  (every reader takes the same image types)


def find_masked_photos(src: str | Path, masks: str | Path | None = None) -> list[PhotoSource]:
    """The photos under ``src/images`` (any depth) that have a subject mask ``<masks>/<stem>.png``
    (``masks`` default ``src/masks``), sorted by name; pair names are ``<folder name>-<stem>``.
    Photos without a mask are left out (a mask set may cover only some photos, as SOD does BSDS500).

    Raises:
        ValueError: no ``images/`` or masks folder, or no photo with a mask.
    """
    from bokeh.images import SameStemError, images_by_stem

    src = Path(src)
    setting = "masks" if masks is not None else "src"
    masks = Path(masks) if masks is not None else src / "masks"
    if os.path.lexists(masks) and not masks.is_dir():
        raise ValueError(f"{setting}={masks if setting == 'masks' else src}: {masks} is a file, not a folder of subject masks; {SOURCE_LAYOUT}")
    if not (src / "images").is_dir() or not masks.is_dir():
        raise ValueError(f"src={src} with masks={masks}: no images/ folder or no masks folder; {SOURCE_LAYOUT}")
    try:
        by_stem = images_by_stem(masks, known=False)  # every image type read here; two masks of one name refused
    except SameStemError as error:
        raise ValueError(f"{setting}=: {error}") from None
    photos = [PhotoSource(f"{src.resolve().name}-{image.stem}", image, by_stem[image.stem])
              for image in sorted((src / "images").rglob("*"), key=lambda p: (p.stem, str(p)))
              if image.suffix.lower() in PHOTO_SUFFIXES and image.stem in by_stem]
    if not photos:
        raise ValueError(f"src={src}: no photo under images/ has a mask <name>.png in {masks}; {SOURCE_LAYOUT}")
    return photos


def find_photos(src: str | Path, masks: str | Path | None = None) -> list[PhotoSource]:
    """The photos under ``src`` (``images/<split>/<id>.jpg``, sorted by split then id), each with
    its ``groundTruth/<split>/<id>.mat``; pair names are ``bsds-<split>-<id>``. With ``masks`` (a
    folder of subject masks), or where ``src`` has a ``masks/`` folder and no ``groundTruth/``: the
    photos with a subject mask each (:func:`find_masked_photos`).

    Raises:
        ValueError: ``src`` is not such a folder, holds no photo, or a photo has no segmentations file.
    """
    src = Path(src)
    if not src.is_dir():
        raise ValueError(f"src={src} is not a folder; {SOURCE_LAYOUT}")
    if masks is not None or ((src / "masks").is_dir() and not (src / "groundTruth").is_dir()):
        return find_masked_photos(src, masks)
    found = sorted((src / "images").glob("*/*.jpg"))
    if not found:
        raise ValueError(f"src={src} holds no photo; {SOURCE_LAYOUT}")
    photos = []
    for image in found:
        truth = src / "groundTruth" / image.parent.name / f"{image.stem}.mat"
        if not truth.is_file():
            raise ValueError(f"{image} has no segmentations file {truth}; {SOURCE_LAYOUT}")
        photos.append(PhotoSource(f"bsds-{image.parent.name}-{image.stem}", image, truth))
    return photos


def read_segmentations(path: str | Path) -> list[np.ndarray]:
    """The human segmentations in a BSDS500 ``.mat`` file: one ``(H, W)`` integer label image each.

    Raises:
        ValueError: the file cannot be read or holds no ``groundTruth`` segmentations (naming it).
    """
    from scipy import io

    try:
        truth = io.loadmat(str(path))["groundTruth"]
        return [np.asarray(truth[0, k]["Segmentation"][0, 0]) for k in range(truth.shape[1])]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{path}: cannot read its BSDS500 segmentations ({error}); {SOURCE_LAYOUT}") from None


def upright(image: np.ndarray, segmentations: list[np.ndarray]) -> np.ndarray:
    """``image`` turned to match its segmentations: the BSDS500 copy stores 63 portrait photos
    turned a quarter clockwise (481 x 321 segmentations of a 321 x 481 JPEG, matched by the
    image's edges); those are turned back counter-clockwise. Others are returned as they are.

    Raises:
        ValueError: the segmentations fit neither the photo nor the photo turned.
    """
    shape, wanted = image.shape[:2], segmentations[0].shape
    if wanted == shape:
        return image
    if wanted == shape[::-1]:
        return np.ascontiguousarray(np.rot90(image, 1))
    raise ValueError(f"the segmentations are {wanted[0]} x {wanted[1]} but the photo is {shape[0]} x {shape[1]}")


def read_photo(source: PhotoSource) -> tuple[np.ndarray, list[np.ndarray]]:
    """The photo of ``source`` (upright, :func:`upright`) and its segmentations.

    Raises:
        ValueError: an unreadable photo or segmentations file, or sizes that do not match (naming the files).
    """
    from bokeh.images import ImageError, read_rgb

    if source.is_mask:
        try:
            segmentations = [(read_rgb(source.segmentations).max(-1) > 127).astype(np.int32)]
        except (OSError, ValueError) as error:
            raise ValueError(f"{source.segmentations}: cannot read this subject mask ({error}); {SOURCE_LAYOUT}") from None
    else:
        segmentations = read_segmentations(source.segmentations)
    try:
        return upright(read_rgb(source.image), segmentations), segmentations
    except ImageError:
        raise  # a damaged photo: skipped by the writer (one among many), not the whole set stopped
    except ValueError as error:
        raise ValueError(f"{source.image}: {error} ({source.segmentations}); {SOURCE_LAYOUT}") from None


def pair_config(overrides: dict | None = None) -> PhotoPairConfig:
    """:class:`PhotoPairConfig` with ``overrides`` (lists become tuples).

    Raises:
        ValueError: an unknown key, naming the known ones.
    """
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(PhotoPairConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown photo-pair setting(s) {sorted(unknown)}; known: {sorted(PhotoPairConfig.__dataclass_fields__)}")
    return PhotoPairConfig(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in overrides.items()})


#: The files of one pair: (folder, suffix) in the EBB! layout (:mod:`bokeh.data.layout`)
PAIR_FILES = ((FOCAL_DIR, ".png"), (COC_DIR, ".png"), (TARGET_DIR, ".jpg"), (INPUT_DIR, ".jpg"))


def check_sources(photos: list[PhotoSource], setting: str = "masks") -> None:
    """Every photo decodes (a truncated or empty file is found now, not half-way through the set),
    and each subject mask decodes and has its photo's size (or the size turned a quarter, as
    :func:`upright` accepts), before any pair is written. Decoding is a few milliseconds a photo, a
    small part of rendering its pair.

    Raises:
        ValueError: a photo or mask that cannot be read (saying so: empty, truncated, ...) or a mask
            of another size, naming the file and the option that chose it (``src=``; ``setting``
            for the masks).
    """
    from bokeh.images import read_rgb

    def shape(path: Path, option: str) -> tuple[int, int]:
        try:
            return read_rgb(path).shape[:2]
        except (OSError, ValueError) as error:  # ImageError names the file
            reason = f"{path} is empty (0 bytes)" if path.is_file() and path.stat().st_size == 0 else str(error)
            raise ValueError(f"{option}=: {reason}; replace or remove it (nothing was written)") from None

    for source in photos:
        ih, iw = shape(source.image, "src")
        if not source.is_mask:
            continue
        mh, mw = shape(source.segmentations, setting)
        if (mw, mh) not in ((iw, ih), (ih, iw)):
            raise ValueError(f"{setting}=: the mask {source.segmentations} is {mw} x {mh} px but its photo {source.image} is "
                             f"{iw} x {ih} px: a subject mask must be its photo's size; fix or remove it")


def check_not_inside(out: str | Path, src: str | Path, masks: str | Path | None) -> None:
    """``out`` is neither the source folder nor one of its photo or mask folders (``ValueError``)."""
    target = Path(out).expanduser().resolve()
    for setting, folder in (("src", src), ("masks", masks)):
        if folder is None:
            continue
        folder = Path(folder).expanduser().resolve()
        if target == folder or folder in target.parents and target.relative_to(folder).parts[0] in ("images", "masks", "groundTruth"):
            where = "" if target == folder else "inside "
            raise ValueError(f"out={out} is {where}{setting}={folder}: the pairs would be written among the photos; choose another out= folder")


def _write_one(out: Path, index: int, source: PhotoSource, seed: int, quality: int, config: dict) -> tuple[float | None, str]:
    """Write pair ``index`` from ``source``; ``(f_number, "")``, or ``(None, reason)`` when skipped."""
    from bokeh.data.coc import write_coc
    from bokeh.data.layout import COC_DIR, FOCAL_DIR, INPUT_DIR, TARGET_DIR
    from bokeh.images import write_image

    from bokeh.images import ImageError

    try:
        pair = make_photo_pair(*read_photo(source), index, seed, pair_config(config), subject_given=source.is_mask)
    except PhotoSkipped as skipped:
        return None, skipped.reason
    except ImageError as error:  # truncated, corrupt, empty: this photo only
        return None, f"unreadable photo ({error.reason})"
    write_image(out / FOCAL_DIR / f"{source.name}.png", np.where(pair.subject, 255, 0).astype(np.uint8))
    write_coc(out / COC_DIR / f"{source.name}.png", pair.blur_radius)
    write_image(out / TARGET_DIR / f"{source.name}.jpg", pair.bokeh, quality)
    write_image(out / INPUT_DIR / f"{source.name}.jpg", pair.sharp, quality)  # last: a pair is complete when its input is there
    return pair.f_number, ""


def write_photo_pairs(
    out: str | Path,
    src: str | Path,
    seed: int = 0,
    n: int | None = None,
    quality: int = 95,
    workers: int = 1,
    overwrite: bool = False,
    config: dict | None = None,
    written: dict | None = None,
    masks: str | Path | None = None,
) -> Path:
    """Write the pairs of the first ``n`` photos (all when ``None``) of ``src`` under ``out``.

    ``config``: :class:`PhotoPairConfig` overrides. ``masks``: a folder of subject masks for the
    photos of ``src`` (:func:`find_photos`). ``written`` (optional) receives
    ``name: f_number`` (``None`` for a skipped photo) as each photo is done. ``f_numbers.json``
    and then ``meta.json`` (with the skipped photos and why) are written last.

    Raises:
        ValueError: a bad ``src`` (:func:`find_photos`), setting or segmentations file.
        FileExistsError: ``out`` exists, is not empty, and ``overwrite`` is false.
    """
    from bokeh.data.folders import check_seed, check_set_folder, finish_folder, plain, prepare_folder, run_jobs
    from bokeh.data.layout import COC_DIR, F_NUMBERS, FOCAL_DIR, INPUT_DIR, TARGET_DIR
    from bokeh.cli import json_text
    from bokeh.files import check_planned, write_text_atomic

    # every value and every input is checked before the first file is touched; a folder that is refused
    # as it stands first, before any probe inside it
    check_set_folder(out, overwrite, (INPUT_DIR, TARGET_DIR, COC_DIR, FOCAL_DIR))
    check_seed(seed)
    photos = find_photos(src, masks)[:n]
    config = dict(config or {})
    pair_config(config)  # unknown keys fail now, not in a worker
    check_sources(photos, "masks" if masks is not None else "src")
    check_not_inside(out, src, masks)
    planned = {source.name: [f"{folder}/{source.name}{suffix}" for folder, suffix in PAIR_FILES] for source in photos}
    check_planned(((Path(out) / name, f"the pair of {source.image}") for source in photos for name in planned[source.name]), "out",
                  remedy="two photos of one name (in different folders, or .jpg and .png) make one pair name; rename one")
    written = {} if written is None else written
    reasons: dict[str, str] = {}
    out = prepare_folder(out, overwrite, (INPUT_DIR, TARGET_DIR, COC_DIR, FOCAL_DIR), [f for files in planned.values() for f in files])
    jobs = {source.name: (out, index, source, seed, quality, config) for index, source in enumerate(photos)}

    def done(name: str, result: tuple[float | None, str]) -> None:
        written[name] = result[0]
        if result[0] is None:
            reasons[name] = result[1]

    run_jobs(_write_one, jobs, workers, done)
    f_numbers = {name: written[name] for name in sorted(written) if written[name] is not None}
    write_text_atomic(out / F_NUMBERS, json_text(f_numbers, indent=1) + "\n")
    skipped = {name: reasons[name] for name in sorted(reasons)}
    counts = {reason: sum(r == reason for r in skipped.values()) for reason in sorted(set(skipped.values()))}
    finish_folder(out, {"generator": "bokeh.data.photo_pairs", "version": GENERATOR_VERSION, "src": str(Path(src).resolve()),
                        "masks": str(Path(masks).resolve()) if masks is not None else None, "n": n, "seed": seed, "quality": quality, "config": plain(config), "photos": len(photos), "pairs": len(f_numbers), "skipped_counts": counts, "skipped": skipped},
                  [F_NUMBERS, *(f for name in f_numbers for f in planned[name])])
    return out


def ensure_photo_pairs(folder: str | Path, **settings) -> Path:
    """``folder`` holding the pairs described by ``settings`` (:func:`write_photo_pairs`'s keys:
    ``src`` required, ``seed``, ``n``, ``quality``, ``config``, ``workers``), made once: a folder whose
    ``meta.json`` matches is reused, otherwise the set is written to a temporary sibling and renamed
    into place (:func:`bokeh.data.folders.ensure_folder`).

    Raises:
        ValueError: a bad ``src`` or setting, before anything is written.
        FileExistsError: ``folder`` exists but holds another set.
    """
    from bokeh.data.folders import ensure_folder

    settings = {"seed": 0, "n": None, "quality": 95, "config": None, "workers": 1, "masks": None, **settings}
    find_photos(settings["src"], settings["masks"])
    pair_config(settings["config"])
    masks = str(Path(settings["masks"]).resolve()) if settings["masks"] is not None else None
    wanted = {"version": GENERATOR_VERSION, "src": str(Path(settings["src"]).resolve()), "masks": masks, "n": settings["n"], "seed": settings["seed"],
              "quality": settings["quality"], "config": dict(settings["config"] or {})}
    return ensure_folder(folder, wanted, lambda temporary: write_photo_pairs(temporary, **settings), "photo-pair set")


USAGE = ("usage: python -m bokeh.data.photo_pairs src=PHOTOS out=DIR [masks=DIR] [short_side=256] [seed=0] [n=all] [quality=95] "
         "[workers=1] [overwrite=false]")


def options():
    """The options of ``bokeh.data.photo_pairs``, each declared once (:mod:`bokeh.options`)."""
    from bokeh.options import REQUIRED, Option, boolean, integer, path

    return (
        Option("src", path, REQUIRED, "the photos: a BSDS500 folder with images/ and groundTruth/, or a folder of photos with masks="),
        Option("out", path, REQUIRED, "the folder to write the pairs into"),
        Option("masks", path, None, "a folder of subject masks, one per photo"),
        Option("short_side", integer(16, 4096), None, "scale each photo to this short side (px)"),
        Option("seed", integer(0, 2**32 - 1), 0, "the set: pair i of set s is the same on every machine"),
        Option("n", integer(1, words={"all": None}), None, "photos to use (default all)"),
        Option("quality", integer(1, 100), 95, "JPEG quality"),
        Option("workers", integer(1, 256), 1, "processes"),
        Option("overwrite", boolean, False, "write into a non-empty folder"),
    )


def parse_args(argv: list[str]) -> dict:
    """``key=value`` arguments into typed settings, each checked (:mod:`bokeh.options`); one
    ``ValueError`` sentence for anything wrong."""
    from bokeh.options import parse

    settings = parse(argv, options(), USAGE)[0]
    short_side = settings.pop("short_side")
    if short_side is not None:
        settings["config"] = {"short_side": short_side}
    return settings


def main(argv: list[str] | None = None) -> int:
    from bokeh.cli import EXIT_SETTINGS, interruptible
    from bokeh.files import OutputFolderError, check_output_folder

    from bokeh.options import help_text, wants_help

    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(__doc__.strip() + "\n\n" + help_text(USAGE, options()))
        return 0
    written: dict = {}
    try:
        settings = parse_args(argv)
        from bokeh.data.folders import check_set_folder
        from bokeh.data.layout import COC_DIR, FOCAL_DIR, INPUT_DIR, TARGET_DIR

        check_set_folder(settings["out"], settings["overwrite"], (INPUT_DIR, TARGET_DIR, COC_DIR, FOCAL_DIR))  # before any probe
        photos = len(find_photos(settings["src"], settings["masks"])[: settings["n"]])
        check_output_folder(settings["out"], "out", keep=False)
        started = time.perf_counter()
        with interruptible("bokeh.data.photo_pairs", lambda: (
                f"{len(written)} of {photos} photos done in {settings['out']} (each pair complete); no meta.json, "
                f"so it is not a finished set: rerun with overwrite=true")):
            out = write_photo_pairs(**settings, written=written)
    except (ValueError, FileExistsError, OutputFolderError) as error:
        print(f"bokeh.data.photo_pairs: {error}", file=sys.stderr)
        return EXIT_SETTINGS
    except SystemExit as exit_:  # interrupted: the line is printed
        return int(exit_.code)
    seconds = time.perf_counter() - started
    meta = json.loads((out / "meta.json").read_text())
    for name, reason in meta["skipped"].items():
        if reason.startswith("unreadable photo"):  # a damaged file among the sources: named, the others are made
            print(f"  {name}: skipped: {reason}", file=sys.stderr)
    skipped = ", ".join(f"{count} {reason}" for reason, count in meta["skipped_counts"].items()) or "none"
    print(f"wrote {meta['pairs']} pairs from {photos} photos to {out} in {seconds:.1f} s ({seconds / max(photos, 1):.2f} s a photo, "
          f"{settings['workers']} workers); skipped: {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
