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
pass grow with the pixel count (``benchmarks/bench_render.py``; numbers in the README). The
authors ran their model this way too: at about 1024 on the short side, the result upsampled.
The upsampling alone would soften the in-focus subject's fine detail. A model with a matte
(``OutputContract.matte``) gives its keep weight ``m`` and defocus layer ``B`` at the working size,
and the full-size photo comes through the matte (:mod:`bokeh.composite`): ``B`` upsampled, ``m``
upsampled along the photo's own edges, ``m * photo + (1 - m) * up(B)``, in every runtime's path. For
a model without one (older checkpoints and exports), :func:`restore_detail` puts the photo's own
detail back wherever the model left its input unchanged. ``detail=False`` skips either.
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


def render_layers_tensor(image: torch.Tensor, model, plan: Plan, detail: bool = True, focus=None,
                         aperture=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``model`` on ``image`` following ``plan``: the bokeh image and, for a model with a matte, the
    matte, both with the image's size and orientation.

    Args:
        model: maps ``(1, 3, *plan.canvas)`` in [-1, 1] to the same shape (a :class:`~bokeh.render.Backend`);
            a model with a matte (``outputs.matte``) gives its layers (``model.layers``).
        detail: give the photo's own detail back at full size: for a model with a matte, the photo
            through the matte (:func:`bokeh.composite.full_size`, at every size); without one, where
            the photo is larger than the working size, the in-focus parts' detail
            (:func:`restore_detail`). ``False``: the model's own image, resized.
        focus: ``(x, y)`` fractions of the image's width and height (mapped to the canvas with
            :meth:`Plan.map_point`), or None (auto); aperture: an f-number, or None (f/1.8). Only
            for a model that takes them (checked by the model's runtime).

    Shape:
        image: ``(1, 3, H, W)`` in [-1, 1], ``(H, W) == plan.size``; returns ``(1, 3, H, W)`` in
        [-1, 1] and the matte ``(1, 1, H, W)`` in [0, 1] (1 = the photo's own pixel), or None.
    """
    if tuple(image.shape[-2:]) != plan.size:
        raise ValueError(f"plan is for a {plan.size} image, got {tuple(image.shape[-2:])}")
    turned = torch.rot90(image, 1, dims=(2, 3)) if plan.rotate else image  # (1, 3, *turned)
    work = resize(turned, plan.work)  # (1, 3, *work)
    controls = {}
    if focus is not None:
        controls["focus"] = plan.map_point(focus)
    if aperture is not None:
        controls["aperture"] = aperture
    matte = None
    if has_matte(model):
        layers = {k: unpad(v, plan.work) for k, v in model.layers(pad_to(work, plan.canvas), **controls).items()}
        y, matte = composite.full_size(turned, layers["matte"], layers["background"])  # (1, 3 | 1, *turned)
        if not detail:
            y = resize(layers["image"], plan.turned)
    else:
        y_work = unpad(model(pad_to(work, plan.canvas), **controls), plan.work)  # (1, 3, *work)
        y = resize(y_work, plan.turned)  # (1, 3, *turned)
        if detail and plan.work[0] * plan.work[1] < plan.turned[0] * plan.turned[1]:
            y = restore_detail(y, turned, work, y_work)
    if plan.rotate:
        y = torch.rot90(y, -1, dims=(2, 3))  # (1, 3, H, W)
        matte = None if matte is None else torch.rot90(matte, -1, dims=(2, 3))
    return y.clamp(-1.0, 1.0), matte


def render_tensor(image: torch.Tensor, model, plan: Plan, detail: bool = True, focus=None, aperture=None) -> torch.Tensor:
    """The bokeh image of :func:`render_layers_tensor` (arguments and shapes as there)."""
    return render_layers_tensor(image, model, plan, detail, focus, aperture)[0]


def working_short_side(backend, short_side: int | str | None = "auto") -> int | None:
    """The short side a torch model runs photos at: ``short_side`` itself, or for ``"auto"`` the
    scale the model was trained at where it says so (a shipped model's ``short_side``, e.g. 256 for
    ``reference``: its blur radii are those of 256-pixel photos), else :data:`DEFAULT_SHORT_SIDE`."""
    if short_side == "auto":
        return getattr(backend, "short_side", None) or DEFAULT_SHORT_SIDE
    return short_side


def render_layers(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                  focus=None, aperture=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The bokeh rendering of one photo and, for a model with a matte, its matte, as floats.

    Args:
        image: the photo, e.g. from :func:`bokeh.images.read_rgb` (EXIF orientation applied).
        backend: a :class:`~bokeh.render.Backend` (its ``static_size`` picks the plan).
        short_side: working resolution for models that take any size (see :func:`plan_dynamic`);
            ``None``: full resolution; ``"auto"``: :func:`working_short_side`. Ignored for fixed-size models.
        detail: bring the photo's own detail back at full size (:func:`render_layers_tensor`).
        focus: the point to focus on, ``(x, y)`` fractions of the photo's width and height (0 = left
            or top edge, 1 = right or bottom edge), or a :class:`PixelPoint`; None: the model decides (auto).
        aperture: the f-number to render (e.g. 2.8; larger = less blur); None: f/1.8, the lens of
            the training targets.

    Shape:
        image: ``(H, W, 3)`` ``uint8``; returns ``(3, H, W)`` ``float32`` in [-1, 1], and the matte
        ``(1, H, W)`` in [0, 1] (1 = the photo's own pixel) or None for a model without one.

    Raises:
        ControlError: (before any work) a control the backend's model does not take, a point outside
            the photo, an f-number that is not a finite number from 0.5 to 64.
    """
    contract = getattr(backend, "contract", InputContract())
    contract.check_taken(*(name for name, value in (("focus", focus), ("aperture", aperture)) if value is not None))
    if isinstance(focus, PixelPoint):
        focus = focus.fractions(image.shape[:2])
    focus, aperture = contract.check(focus, aperture)
    plan = plan_for(image.shape[:2], backend.static_size, working_short_side(backend, short_side))
    bokeh, matte = render_layers_tensor(to_tensor(image)[None], backend, plan, detail, focus, aperture)
    return bokeh[0], None if matte is None else matte[0]


def render_image(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                 focus=None, aperture=None) -> torch.Tensor:
    """The bokeh rendering of one photo, as floats (before rounding to 8 bits); arguments and errors
    as :func:`render_layers`.

    Shape:
        image: ``(H, W, 3)`` ``uint8``; returns ``(3, H, W)`` ``float32`` in [-1, 1].
    """
    return render_layers(image, backend, short_side, detail, focus, aperture)[0]


def render_to_uint8(image: np.ndarray, backend, short_side: int | str | None = "auto", detail: bool = True,
                    focus=None, aperture=None) -> np.ndarray:
    """:func:`render_image` rounded to an image. Shape: ``(H, W, 3)`` ``uint8`` -> the same."""
    return from_tensor(render_image(image, backend, short_side, detail, focus, aperture))


def matte_to_uint8(matte: torch.Tensor) -> np.ndarray:
    """A matte in [0, 1] as an 8-bit gray image (255 = the photo's own pixel).

    Shape: ``(1, H, W)`` -> ``(H, W)`` ``uint8``.
    """
    return (matte[0].clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).numpy()
