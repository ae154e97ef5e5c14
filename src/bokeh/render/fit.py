"""How a photo of any size meets the network, and how the result comes back at the photo's size.

Glass-Net needs sides that are multiples of 8; exported models (ONNX, TFLite) take exactly one
static size. Every photo goes through the same steps, each undone on the output in reverse order:

1. turn: a photo whose orientation differs from a fixed-size model's (portrait photo, landscape
   model) is turned a quarter turn counter-clockwise, and the result turned back;
2. resize (bicubic, antialiased) to the working size (:class:`Plan`): for a torch model the photo
   itself, or, when its short side is longer than ``short_side``, the photo scaled so that its
   short side is ``short_side`` (the default, :data:`DEFAULT_SHORT_SIDE`); for a fixed-size model
   the largest size of the photo's aspect ratio that fits inside the model's input;
3. pad the bottom and right edges (edge pixels repeated) to the canvas the model sees: the next
   multiples of 8, at least 16 x 16 (:data:`~bokeh.models.glassnet.MIN_SIDE`: instance norm at
   the 1/8 bottleneck needs more than one pixel, so an 8 x 8 photo is padded to 16 x 16), or the
   model's static size; the padding is cut off the output.

Why 1024 on the short side by default: EBB!, the training data, is about 1024 x 1536, so the
network has learned how large the blur is in pixels at that scale (at 4032 x 3024 the same network
would blur about a quarter as much of the picture), and the memory and time of a full-resolution
pass grow with the pixel count (``benchmarks/bench_render.py``; numbers in docs/render.md "Large photos"). The
authors ran their model this way too: at about 1024 on the short side, the result upsampled.
The upsampling alone would soften the in-focus subject's fine detail. A model with a matte
(``OutputContract.matte``) gives its keep weight ``m`` and defocus layer ``B`` at the working size,
and the full-size photo comes through the matte (:mod:`bokeh.composite`): ``B`` upsampled, ``m``
upsampled along the photo's own edges, ``m * photo + (1 - m) * up(B)``, in every runtime's path. For
a model without one (older checkpoints and exports), :func:`restore_detail` puts the photo's own
detail back wherever the model left its input unchanged. ``detail=False`` skips either.

:func:`render_photo` is the one function that runs a model on a photo (every caller: the renderer,
the benchmarks, the training callbacks through :class:`~bokeh.render.backends.GeneratorBackend`,
``pretrained ship``, the demo), and the one place that decides what stays sharp: the subject matte
(``subject="auto"``: MediaPipe's selfie segmenter, :mod:`bokeh.runtimes.segmenter`, where the subject
gate trusts it, :func:`subject_trusted`) with the model's own matte, the subject under a tap, a
user's matte, or the model alone (``subject="off"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from bokeh import composite
from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, to_tensor
from bokeh.models.controls import ControlError, InputContract, OutputContract, PixelPoint  # noqa: F401  (PixelPoint: bokeh.render exports it)
from bokeh.models.glassnet import DOWNSAMPLE, MIN_SIDE

DEFAULT_SHORT_SIDE = 1024  # EBB!'s scale: the short side of its ~1024 x 1536 photos
DETAIL_TOLERANCE = 0.03  # [-1, 1] units: a model output this close to its input counts as "kept in focus"


@dataclass(frozen=True)
class Plan:
    """The geometry of one render; all sizes ``(H, W)``.

    Attributes:
        size: the photo's size, which the output gets back.
        rotate: turn the photo a quarter turn counter-clockwise before the model (and back after).
        work: the size the (turned) photo is resized to; its content fills ``canvas[:h, :w]``.
        canvas: the size the model sees: ``work`` padded at the bottom and right.
    """

    size: tuple[int, int]
    rotate: bool
    work: tuple[int, int]
    canvas: tuple[int, int]

    @property
    def turned(self) -> tuple[int, int]:
        """The photo's size after the optional quarter turn."""
        return self.size[::-1] if self.rotate else self.size

    @property
    def resized(self) -> bool:
        return self.work != self.turned

    def map_point(self, point: tuple[float, float]) -> tuple[float, float]:
        """A point of the photo -> the same point of the canvas the model sees.

        Follows the plan's steps: the quarter turn counter-clockwise (``torch.rot90(.., 1)``: the
        photo's top edge becomes the left edge, its right edge the top: ``(x, y) -> (y, 1 - x)``),
        the resize (fractions of the working size are those of the turned photo) and the padding at
        the bottom and right (fractions shrink by ``work / canvas``).

        Args:
            point: ``(x, y)`` fractions of the photo's width and height, in [0, 1].

        Returns:
            ``(x, y)`` fractions of the canvas's width and height, in [0, 1].
        """
        x, y = (float(v) for v in point)
        if self.rotate:
            x, y = y, 1.0 - x
        return x * self.work[1] / self.canvas[1], y * self.work[0] / self.canvas[0]

    def work_pixel(self, point: tuple[float, float]) -> tuple[int, int]:
        """A point of the photo (``(x, y)`` fractions) -> its ``(row, column)`` pixel in the working-size
        image the model sees (turned as :meth:`map_point` turns it; padding excluded)."""
        x, y = (float(v) for v in point)
        if self.rotate:
            x, y = y, 1.0 - x
        return min(self.work[0] - 1, int(y * self.work[0])), min(self.work[1] - 1, int(x * self.work[1]))


def _next_multiple(value: int, multiple: int = DOWNSAMPLE) -> int:
    return -(-value // multiple) * multiple


def _canvas_side(value: int) -> int:
    """The side the network sees for a working side of ``value`` px: a multiple of 8, at least 16."""
    return max(MIN_SIDE, _next_multiple(value))


def plan_dynamic(size: tuple[int, int], short_side: int | None = DEFAULT_SHORT_SIDE) -> Plan:
    """Plan for a model that takes any multiple of 8 (torch).

    ``short_side=None`` runs at full resolution; otherwise a photo whose short side is longer than
    ``short_side`` is scaled down so that it is exactly ``short_side`` (never scaled up). The
    canvas is the next multiple of 8 per side, and at least :data:`~bokeh.models.glassnet.MIN_SIDE`
    (so photos of any size, down to 1 x 1, render).
    """
    height, width = _check_size(size)
    if short_side is not None and short_side < 1:
        raise ValueError(f"short_side must be a positive number of pixels or None (full resolution), got {short_side}")
    if short_side is None or min(height, width) <= short_side:
        work = (height, width)
    else:
        scale = short_side / min(height, width)
        work = (short_side, max(1, round(width * scale))) if height <= width else (max(1, round(height * scale)), short_side)
    return Plan((height, width), False, work, (_canvas_side(work[0]), _canvas_side(work[1])))


def plan_static(size: tuple[int, int], model_size: tuple[int, int]) -> Plan:
    """Plan for a model with one static input size ``model_size`` (ONNX, TFLite).

    The photo is turned if its orientation differs from the model's (square photos and square
    models are never turned), then scaled (down or up) to the largest size of its own aspect ratio
    that fits inside ``model_size``; the rest of the canvas is edge padding.
    """
    height, width = _check_size(size)
    model_h, model_w = _check_size(model_size)
    rotate = (height > width and model_h < model_w) or (height < width and model_h > model_w)
    h, w = (width, height) if rotate else (height, width)
    scale = min(model_h / h, model_w / w)
    work = (min(model_h, max(1, round(h * scale))), min(model_w, max(1, round(w * scale))))
    return Plan((height, width), rotate, work, (model_h, model_w))


def plan_for(size: tuple[int, int], static_size: tuple[int, int] | None, short_side: int | None = DEFAULT_SHORT_SIDE) -> Plan:
    """:func:`plan_static` for a fixed-size model, else :func:`plan_dynamic` (``short_side`` applies only there)."""
    return plan_static(size, static_size) if static_size is not None else plan_dynamic(size, short_side)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    return height, width


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize with antialiasing when shrinking (as PIL's), values clamped to [-1, 1].

    Shape:
        image: ``(B, C, H, W)`` in [-1, 1]; returns ``(B, C, *size)``; the input itself if equal.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    resized = F.interpolate(image, size=tuple(size), mode="bicubic", align_corners=False, antialias=True)
    return resized.clamp_(-1.0, 1.0)  # bicubic overshoots at edges


def pad_to(image: torch.Tensor, canvas: tuple[int, int]) -> torch.Tensor:
    """Pad the bottom and right edges, repeating the edge pixels, up to ``canvas`` (as
    :func:`bokeh.data.transforms.pad_to_multiple` does, to a given size instead of a multiple).

    Shape:
        image: ``(B, C, h, w)`` with ``h <= canvas[0]``, ``w <= canvas[1]``; returns ``(B, C, *canvas)``.
    """
    pad_h, pad_w = canvas[0] - image.shape[-2], canvas[1] - image.shape[-1]
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f"cannot pad {tuple(image.shape[-2:])} to the smaller canvas {tuple(canvas)}")
    return F.pad(image, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else image


def restore_detail(output: torch.Tensor, photo: torch.Tensor, work_input: torch.Tensor, work_output: torch.Tensor,
                   tolerance: float = DETAIL_TOLERANCE) -> torch.Tensor:
    """Put the photo's own fine detail back where the model kept its (downscaled) input unchanged.

    A render at a working size below the photo's loses the detail finer than the working size, on
    the in-focus subject too. Where the model changed its input by less than ``tolerance`` (mean
    over channels and a 3 x 3 neighbourhood), the pixel is in focus: the detail the downscaling
    removed (``photo - upsampled working input``) is added back in full; where the model blurred,
    the weight falls smoothly (``exp(-(change / tolerance)^2)``) to 0 and the blur stays.

    Shape:
        output, photo: ``(1, 3, H, W)`` in [-1, 1] (the upsampled result and the photo);
        work_input, work_output: ``(1, 3, h, w)``, the model's input and output at the working size.
        Returns ``(1, 3, H, W)``, not clamped.
    """
    change = (work_output - work_input).abs().mean(1, keepdim=True)  # (1, 1, h, w)
    change = F.avg_pool2d(change, 3, stride=1, padding=1, count_include_pad=False)
    kept = torch.exp(-((change / tolerance) ** 2))
    size = tuple(output.shape[-2:])
    kept = F.interpolate(kept, size=size, mode="bilinear", align_corners=False)  # (1, 1, H, W)
    return output + kept * (photo - resize(work_input, size))


def has_matte(backend) -> bool:
    """Whether ``backend``'s model gives a matte (its ``outputs``; stand-ins without one give none)."""
    return getattr(backend, "outputs", OutputContract()).matte


SUBJECT_MODES = ("auto", "person", "off")
#: What each of :data:`SUBJECT_MODES` does, for every command's ``subject=`` option
SUBJECT_HELP = ("auto: a subject matte and the model decide what stays sharp (the default); person: only a matte the "
                "subject gate trusts as a person's; off: the model alone")
#: How the focus decision's working-size matte reaches the photo's size: ``guided``
#: (:func:`bokeh.composite.upsample_matte`, along the photo's own edges) or ``bilinear``.
SUBJECT_UPSAMPLE = "guided"
TAP_REACH = 0.02  # a tap this close to a subject (fraction of the working short side) selects it
#: The subject gate (:func:`subject_trusted`, issue 30): the segmenter's matte decides only where it is
#: evidence of a subject: its confident region (``subject > 0.5``) is confident on average
#: (``confidence``: mean of the matte over that region), and it is either small (at most ``small_area``
#: of the frame) or rises from the frame's bottom edge (covers at least ``bottom`` of the bottom rows).
#: Chosen on the validation splits as a whole (docs/render.md, "The subject gate").
SUBJECT_GATE = {"confidence": 0.96, "small_area": 0.35, "bottom": 0.5}
BOTTOM_ROWS = 0.01  # the frame's bottom edge: this share of the rows (at least one)


@dataclass(frozen=True)
class Rendered:
    """What one pass of a model over a photo gives (:func:`render_photo`).

    Attributes:
        image: the rendered photo, ``(3, H, W)`` float32 in [-1, 1], the photo's size and orientation.
        matte: the matte that was used, ``(1, H, W)`` float32 in [0, 1] (1 = the photo's own pixel),
            or None where none was (``subject="off"`` and a model without a matte).
        layers: the model's outputs at the working size as the model saw the photo (turned where
            ``plan.rotate``; padding cut off): ``image`` ``(1, 3, *plan.work)``, for a model with a
            matte ``matte`` ``(1, 1, *work)`` and ``background`` ``(1, 3, *work)``, and where a subject
            matte was made ``subject`` ``(1, 1, *work)`` (the segmenter's, or the user's matte).
        plan: the geometry of the pass (:class:`Plan`).
        decision: what decided the focus, in words (:data:`DECISIONS`).
    """

    image: torch.Tensor
    matte: torch.Tensor | None
    layers: dict[str, torch.Tensor]
    plan: Plan
    decision: str


DECISIONS = {
    "model": "the model alone (subject=off)",
    "subject": "the subject matte and the model's own matte",
    "untrusted subject": "the model alone: the subject matte is no evidence of a subject (subject_trusted)",
    "tapped subject": "the subject under the tap",
    "tapped model": "the model's tapped matte (the tap is outside every subject)",
    "user": "the matte given",
}


def subject_segmenter(backend):
    """The subject segmenter a render uses: ``backend.segmenter`` where it has one, else the
    package's (:func:`bokeh.runtimes.segmenter.default_segmenter`).

    Raises:
        bokeh.runtimes.segmenter.SegmenterMissing: mediapipe's model is not installed (one sentence,
            with the command that installs it).
    """
    found = getattr(backend, "segmenter", None)
    if found is not None:
        return found
    from bokeh.runtimes.segmenter import default_segmenter

    return default_segmenter()


def subject_evidence(subject: torch.Tensor) -> dict[str, float]:
    """What the gate (:func:`subject_trusted`) reads from a subject matte, upright (as the photo is shown):
    ``confidence``, the mean of the matte over its confident region (``subject > 0.5``; 0 without one);
    ``area``, that region's share of the frame; ``bottom``, its share of the frame's bottom edge
    (:data:`BOTTOM_ROWS` of the rows, at least one). Means and sums over the matte only, at any size:
    a phone computes them from the segmenter's 256 x 256 output as well (``pipeline.json``).

    Shape: subject: ``(1, 1, h, w)`` in [0, 1].
    """
    values = subject[0, 0].float()
    region = values > 0.5
    count = int(region.sum())
    rows = max(1, round(BOTTOM_ROWS * values.shape[0]))
    return {"confidence": float(values[region].mean()) if count else 0.0, "area": count / values.numel(),
            "bottom": float(region[-rows:].float().mean())}


def subject_trusted(subject: torch.Tensor, gate: dict[str, float] | None = None) -> bool:
    """Whether the subject matte (upright, as the photo is shown) is evidence enough of a subject to
    decide what stays sharp (``subject="auto"``, no tap); else the model alone decides.

    A selfie segmenter also marks things that are no subject: on scenes of textured planes and objects
    it marks central objects, or a photo of a person on a wall, that are out of focus. Trusted: a
    confident region (:func:`subject_evidence`'s ``confidence`` at least ``gate["confidence"]``) that is
    small (``area`` at most ``gate["small_area"]``: an object or a person further away) or rises from
    the frame's bottom edge (``bottom`` at least ``gate["bottom"]``: a person near the camera is cut
    by the frame's bottom edge; a large region floating in the frame is a background's). The defaults
    (:data:`SUBJECT_GATE`) and what they score: docs/render.md, "The subject gate".

    Shape: subject: ``(1, 1, h, w)`` in [0, 1].
    """
    gate = SUBJECT_GATE if gate is None else gate
    evidence = subject_evidence(subject)
    return evidence["confidence"] >= gate["confidence"] and (evidence["area"] <= gate["small_area"] or evidence["bottom"] >= gate["bottom"])


def subject_region(subject: torch.Tensor, pixel: tuple[int, int], reach: float = TAP_REACH) -> torch.Tensor | None:
    """The connected subject under a tap: the subject matte kept only on the region (``subject >
    0.5``, 8-connected) that holds ``pixel`` or lies within ``reach`` of the short side of it, its soft
    fringe included (each pixel belongs to its nearest region); None where the tap is outside every
    subject.

    Shape:
        subject: ``(1, 1, h, w)`` in [0, 1]; pixel: ``(row, column)``; returns ``(1, 1, h, w)`` in [0, 1].
    """
    from scipy import ndimage

    values = subject[0, 0].float().cpu().numpy()
    labels, count = ndimage.label(values > 0.5, structure=np.ones((3, 3), bool))
    if count == 0:
        return None
    distance, (rows, cols) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    nearest = labels[rows, cols]  # (h, w): the region each pixel is nearest to
    row, col = pixel
    if distance[row, col] > max(1.0, reach * min(values.shape)):
        return None
    region = np.where(nearest == nearest[row, col], values, 0.0).astype(np.float32)
    return torch.from_numpy(region)[None, None]


def user_matte(matte, size: tuple[int, int]) -> torch.Tensor:
    """A matte given by the user as a ``(1, 1, *size)`` float tensor in [0, 1] (1 = keep the photo).

    Args:
        matte: ``(H, W)`` (or ``(1, H, W)``, ``(1, 1, H, W)``) values: ``uint8`` (255 = keep) or floats
            in [0, 1]; another size than ``size`` is resized (bilinear).

    Raises:
        ValueError: not a 2-D plane, or float values outside [0, 1] (one sentence).
    """
    plane = matte if isinstance(matte, torch.Tensor) else torch.from_numpy(np.array(matte))  # a copy: the caller's array stays theirs
    while plane.ndim > 2 and plane.shape[0] == 1:
        plane = plane[0]
    if plane.ndim != 2:
        raise ValueError(f"a matte is one gray plane (H, W); got shape {tuple(plane.shape)}")
    plane = plane.float() / 255.0 if plane.dtype == torch.uint8 else plane.float()
    if not bool(torch.isfinite(plane).all()) or float(plane.min()) < 0.0 or float(plane.max()) > 1.0:
        raise ValueError("a matte's values must lie in [0, 1] (or 0-255 as 8-bit gray)")
    plane = plane[None, None]
    if tuple(plane.shape[-2:]) != tuple(size):
        plane = F.interpolate(plane, size=tuple(size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)
    return plane


def _upsample_keep(keep: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """A working-size keep weight at the photo's size (:data:`SUBJECT_UPSAMPLE`). Shape: ``(1, 1, h, w)`` -> ``(1, 1, H, W)``."""
    if SUBJECT_UPSAMPLE == "guided":
        return composite.upsample_matte(keep, photo)
    return composite.upsample_background(keep, tuple(photo.shape[-2:])).clamp(0.0, 1.0)


def _run_model(backend, work: torch.Tensor, plan: Plan, focus, aperture, subject: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """The model's outputs for the working-size photo ``work``, padding cut off (``subject``: its
    subject plane, given only to a model whose contract takes one)."""
    controls = {}
    if focus is not None:
        controls["focus"] = plan.map_point(focus)
    if aperture is not None:
        controls["aperture"] = aperture
    if subject is not None:
        controls["subject"] = pad_to(subject, plan.canvas)
    canvas = pad_to(work, plan.canvas)  # (1, 3, *canvas)
    if has_matte(backend):
        return {k: unpad(v, plan.work) for k, v in backend.layers(canvas, **controls).items()}
    return {"image": unpad(backend(canvas, **controls), plan.work)}  # (1, 3, *work)


def render_photo(image: np.ndarray, backend, *, focus=None, aperture=None, subject: str = "auto", matte=None,
                 short_side: int | str | None = "auto", detail: bool = True) -> Rendered:
    """Run ``backend``'s model on one photo: the one road every caller takes (``bokeh.render``, the
    real-pair and portrait benchmarks, the training callbacks, ``pretrained ship``, the demo).

    Plan (resize, turn, pad), map the tap, run the model once at the working size, decide what
    stays sharp, and bring the result to the photo's size through the matte.

    The focus decision:

    * ``subject="off"``: the model alone, the paper's prior-free BGGAN (exactly as before the subject
      matte): a model with a matte composites ``m * photo + (1 - m) * up(B)`` with its own ``m``
      upsampled along the photo's edges; one without restores the in-focus detail.
    * ``subject="auto"`` (default), no tap: the subject segmenter's matte of the working-size photo
      (:func:`subject_segmenter`) and the model's own matte decide together: ``max(subject, model)``;
      composited at full size over ``up(B)`` (``B``: the model's background layer; for a model
      without a matte, its own full-size render). Any subject the segmenter marks (a person, and
      often an animal, a statue, a flower) is kept sharp.
    * ``subject="person"``, no tap: the same, but only where the subject gate trusts the matte as a
      person's (:func:`subject_trusted`); else the model alone, exactly as ``subject="off"`` renders.
      Taps and a user's matte work as with ``auto``.
    * a tap (``focus``): the connected subject under it (:func:`subject_region`), or, where it is
      outside every subject, the model's tapped matte. The model runs tapped either way.
    * ``matte``: the user's own matte (:func:`user_matte`), used as it is over ``B`` (the model runs
      on auto focus); no segmenter runs.

    A model whose contract takes a subject plane (``contract.subject``) gets the subject matte at
    the working size as that input (zeros with ``subject="off"``).

    Args:
        image: ``(H, W, 3)`` ``uint8``, e.g. from :func:`bokeh.images.read_rgb` (EXIF orientation applied).
        backend: a :class:`~bokeh.render.Backend` (its ``static_size`` picks the plan).
        focus: ``(x, y)`` fractions of the photo's width and height, or a :class:`PixelPoint`; None: auto.
        aperture: the f-number to render; None: f/1.8. Only for a model that takes it.
        subject: ``auto``, ``person`` or ``off`` (:data:`SUBJECT_MODES`).
        matte: the user's matte (``(H, W)`` uint8 or floats in [0, 1]); not with ``focus``.
        short_side: working resolution for models that take any size (:func:`plan_dynamic`);
            ``None``: full resolution; ``"auto"``: :func:`working_short_side`.
        detail: bring the photo's own detail back at full size (through the matte, or
            :func:`restore_detail`); ``False``: the working-size result, resized.

    Returns:
        :class:`Rendered`: the image, the matte used, the working-size layers, the plan, the decision.

    Raises:
        ControlError: (before any work) a control the model does not take, a point outside the
            photo, a bad f-number, or both a tap and a matte.
        ValueError: an unknown ``subject``, a bad ``matte``.
        bokeh.runtimes.segmenter.SegmenterMissing: ``subject="auto"`` without the segmenter's model.
    """
    if subject not in SUBJECT_MODES:
        raise ValueError(f"subject={subject!r}: auto (a subject matte and the model decide what stays sharp), person (only a "
                         f"confident person's matte: the subject gate) or off (the model alone)")
    contract = getattr(backend, "contract", InputContract())
    contract.check_taken(*(name for name, value in (("focus", focus), ("aperture", aperture)) if value is not None))
    if matte is not None and focus is not None:
        raise ControlError("give either a point to focus on or a matte, not both")
    if isinstance(focus, PixelPoint):
        focus = focus.fractions(image.shape[:2])
    focus, aperture = contract.check(focus, aperture)
    plan = plan_for(image.shape[:2], backend.static_size, working_short_side(backend, short_side))
    photo = to_tensor(image)[None]  # (1, 3, H, W)
    turned = torch.rot90(photo, 1, dims=(2, 3)) if plan.rotate else photo  # (1, 3, *turned)
    work = resize(turned, plan.work)  # (1, 3, *work)
    given = None
    if matte is not None:
        given = user_matte(matte, plan.size)  # (1, 1, H, W)
        given = torch.rot90(given, 1, dims=(2, 3)) if plan.rotate else given  # (1, 1, *turned)
        subject_work = F.interpolate(given, size=plan.work, mode="bilinear", align_corners=False, antialias=True).clamp(0.0, 1.0)
    elif subject != "off":
        subject_work = subject_segmenter(backend).matte(work).float().clamp(0.0, 1.0)  # (1, 1, *work)
    else:
        subject_work = None
    plane = None
    if getattr(contract, "subject", False):  # a model that takes the subject matte as an input plane
        plane = subject_work if subject_work is not None else work.new_zeros(1, 1, *plan.work)
    layers = _run_model(backend, work, plan, focus, aperture, plane)
    if subject_work is not None:
        layers["subject"] = subject_work

    keep = None  # the working-size keep weight the decision chose (None: the model alone)
    if given is not None:
        decision = "user"
    elif subject_work is None:
        decision = "model"
    elif focus is None:
        upright = torch.rot90(subject_work, -1, dims=(2, 3)) if plan.rotate else subject_work
        decision = "subject" if subject == "auto" or subject_trusted(upright) else "untrusted subject"
        if decision == "subject":
            keep = subject_work if "matte" not in layers else torch.maximum(subject_work, layers["matte"])
    else:
        keep = subject_region(subject_work, plan.work_pixel(focus))
        decision = "tapped subject" if keep is not None else "tapped model"
        if keep is None:
            keep = layers.get("matte")
            if keep is None:  # a model without a matte: its own render, everywhere
                keep = work.new_zeros(1, 1, *plan.work)

    if decision in ("model", "untrusted subject"):
        y, matte_used = _model_alone(turned, work, layers, plan, detail)
        if matte_used is None and decision == "untrusted subject":  # a model without a matte: its own render, everywhere
            matte_used = turned.new_zeros(1, 1, *plan.turned)
    else:
        if "background" in layers:  # the model's defocus layer at the photo's size
            background = composite.upsample_background(layers["background"], plan.turned) if detail else None
        else:  # a model without a matte: its own render is the background
            background = _model_alone(turned, work, layers, plan, detail)[0] if detail else None
        if detail:
            matte_used = given if given is not None else _upsample_keep(keep, turned)  # (1, 1, *turned)
            y = composite.composite(turned, matte_used, background)
        else:
            keep_work = keep if keep is not None else subject_work
            back_work = layers.get("background", layers["image"])
            y = resize(composite.composite(work, keep_work, back_work), plan.turned)
            matte_used = given if given is not None else _upsample_keep(keep_work, turned)
    if plan.rotate:
        y = torch.rot90(y, -1, dims=(2, 3))  # (1, 3, H, W)
        matte_used = None if matte_used is None else torch.rot90(matte_used, -1, dims=(2, 3))
    return Rendered(y[0].clamp(-1.0, 1.0), None if matte_used is None else matte_used[0].clamp(0.0, 1.0), layers, plan, decision)


def _model_alone(turned: torch.Tensor, work: torch.Tensor, layers: dict[str, torch.Tensor], plan: Plan,
                 detail: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's own render at the turned photo's size (``subject="off"``) and its matte there (or None).

    Shape:
        turned: ``(1, 3, *plan.turned)``; work: ``(1, 3, *plan.work)``; returns ``(1, 3, *turned)`` and
        ``(1, 1, *turned)`` or None.
    """
    matte = None
    if "matte" in layers:
        y, matte = composite.full_size(turned, layers["matte"], layers["background"])  # (1, 3 | 1, *turned)
        if not detail:
            y = resize(layers["image"], plan.turned)
    else:
        y = resize(layers["image"], plan.turned)  # (1, 3, *turned)
        if detail and plan.work[0] * plan.work[1] < plan.turned[0] * plan.turned[1]:
            y = restore_detail(y, turned, work, layers["image"])
    return y, matte


def working_short_side(backend, short_side: int | str | None = "auto") -> int | None:
    """The short side a torch model runs photos at: ``short_side`` itself, or for ``"auto"`` the
    scale the model was trained at where it says so (a shipped model's ``short_side``, e.g. 256 for
    ``reference``: its blur radii are those of 256-pixel photos), else :data:`DEFAULT_SHORT_SIDE`."""
    if short_side == "auto":
        return getattr(backend, "short_side", None) or DEFAULT_SHORT_SIDE
    return short_side


def render_layers(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                  focus=None, aperture=None, subject: str = "auto") -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`render_photo`'s image ``(3, H, W)`` in [-1, 1] and the matte used ``(1, H, W)`` in [0, 1]
    (or None); arguments and errors as there."""
    rendered = render_photo(image, backend, focus=focus, aperture=aperture, subject=subject, short_side=short_side, detail=detail)
    return rendered.image, rendered.matte


def render_image(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                 focus=None, aperture=None, subject: str = "auto") -> torch.Tensor:
    """:func:`render_photo`'s image, as floats (before rounding to 8 bits); arguments and errors as there.

    Shape:
        image: ``(H, W, 3)`` ``uint8``; returns ``(3, H, W)`` ``float32`` in [-1, 1].
    """
    return render_layers(image, backend, short_side, detail, focus, aperture, subject)[0]


def render_to_uint8(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                    focus=None, aperture=None, subject: str = "auto") -> np.ndarray:
    """:func:`render_image` rounded to an image. Shape: ``(H, W, 3)`` ``uint8`` -> the same."""
    return from_tensor(render_image(image, backend, short_side, detail, focus, aperture, subject))


def matte_to_uint8(matte: torch.Tensor) -> np.ndarray:
    """A matte in [0, 1] as an 8-bit gray image (255 = the photo's own pixel).

    Shape: ``(1, H, W)`` -> ``(H, W)`` ``uint8``.
    """
    return (matte[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
