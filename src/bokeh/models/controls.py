"""Tap to focus and an aperture: the optional control inputs of Glass-Net, and the one input contract.

A phone's portrait mode lets a person tap the subject and slide an aperture; a Glass-Net built with
``focus_input`` / ``aperture_input`` takes the same two controls beside the image:

* ``focus``: the point to focus on, ``(x, y)`` as fractions of the image's width and height (0 = left
  or top edge, 1 = right or bottom edge). The in-focus depth is that point's depth; the network
  sees it as a Gaussian plane (peak 1 at the point, standard deviation :data:`FOCUS_SIGMA` of the
  image's short side). No point ("auto", :data:`NO_FOCUS`) gives an all-zero plane: the network
  decides where the focus is, as a model without controls does.
* ``aperture``: the f-number N of the wide-aperture shot to render. The network sees a constant
  plane of ``REFERENCE_F_NUMBER / N``: the aperture diameter relative to the lens the training
  targets were shot or rendered with (EBB!'s f/1.8), which is the factor every circle-of-confusion
  radius scales by (thin lens: radius proportional to f / N). f/1.8 -> 1.0, f/2.8 -> 0.64,
  f/8 -> 0.225. Without a value, :data:`REFERENCE_F_NUMBER`.
* ``subject``: a subject matte ``(1, H, W)`` in [0, 1] (1 = the subject: a person or the central
  object, as a segmenter such as MediaPipe's selfie segmenter finds it), at the image's size. The
  network sees it as it is, one plane. Without one, all zeros: no subject prior, the network decides
  alone (as a model without this input does).

:class:`InputContract` names every input of a model with its shape, range and default; the
renderer, the evaluation, the export and every runtime read a model's inputs from it (the names
``image``, ``focus``, ``aperture``, ``subject`` are the ONNX and TFLite input names too), so none of them knows
the controls on its own. A control given to a model that does not take it is refused
(:class:`ControlError`), never ignored.

Pure torch: no I/O, no Lightning, no Hydra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

REFERENCE_F_NUMBER = 1.8  # EBB!'s f/1.8 targets; the synthetic scenes' default lens
TRAINED_F_NUMBERS = (1.8, 11.0)  # the range the shipped data renders (bokeh.data: SceneConfig.f_number)
#: The widest aperture taken: the model never saw a wider one (f/1.4 blurred no more than f/1.8 and
#: brightened the photo), so a wider one is refused rather than rendered wrong.
MIN_F_NUMBER = TRAINED_F_NUMBERS[0]
MAX_F_NUMBER = 64.0  # narrower than f/11 is less blur, which the model does render
FOCUS_SIGMA = 0.08  # Gaussian tap plane: standard deviation as a fraction of the image's short side
NO_FOCUS = (-1.0, -1.0)  # the "auto" point: far enough outside the frame that its plane is 0 everywhere
CONTROL_NAMES = ("focus", "aperture", "subject")


class ControlError(ValueError):
    """A control value that cannot be used (outside the photo, f/0, NaN, not taken by the model)."""


@dataclass(frozen=True)
class InputSpec:
    """One named input of a model.

    Attributes:
        name: ``image``, ``focus``, ``aperture`` or ``subject`` (the ONNX / TFLite input name too).
        shape: per-sample shape in the torch layout (``("3", "H", "W")``, ``(2,)``, ``(1,)``, ``(1, "H", "W")``).
        range: the valid values, in words.
        default: what a caller that gives nothing gets, in words.
    """

    name: str
    shape: tuple
    range: str
    default: str


IMAGE_SPEC = InputSpec("image", (3, "H", "W"), "[-1, 1] RGB (sRGB values scaled), H and W multiples of 8", "required")
FOCUS_SPEC = InputSpec("focus", (2,), "(x, y) fractions of width and height in [0, 1]; (-1, -1) = auto", "auto: the model decides")
APERTURE_SPEC = InputSpec("aperture", (1,), f"f-number in [{MIN_F_NUMBER:g}, {MAX_F_NUMBER:g}]", f"f/{REFERENCE_F_NUMBER:g}")
SUBJECT_SPEC = InputSpec("subject", (1, "H", "W"), "subject matte in [0, 1] at the image's size (1 = subject)",
                         "all zeros: no subject prior")


@dataclass(frozen=True)
class InputContract:
    """The inputs a model takes, in order: always ``image``, then the controls it was built with
    (``focus``, ``aperture``, ``subject``, in this order)."""

    focus: bool = False
    aperture: bool = False
    subject: bool = False

    @classmethod
    def from_settings(cls, settings: dict) -> "InputContract":
        """The contract of a Glass-Net with these constructor settings (``focus_input``,
        ``aperture_input``, ``subject_input``)."""
        return cls(bool(settings.get("focus_input", False)), bool(settings.get("aperture_input", False)),
                   bool(settings.get("subject_input", False)))

    @property
    def specs(self) -> tuple[InputSpec, ...]:
        return ((IMAGE_SPEC,) + ((FOCUS_SPEC,) if self.focus else ()) + ((APERTURE_SPEC,) if self.aperture else ())
                + ((SUBJECT_SPEC,) if self.subject else ()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    @property
    def controls(self) -> tuple[str, ...]:
        """The control names this model takes (a subset of :data:`CONTROL_NAMES`)."""
        return self.names[1:]

    @property
    def plane_count(self) -> int:
        """Extra input planes the network concatenates to its image inputs."""
        return int(self.focus) + int(self.aperture) + int(self.subject)

    def describe(self) -> str:
        """One line per input: ``name shape range (default ...)``."""
        return "\n".join(f"{s.name} {s.shape}: {s.range} (default: {s.default})" for s in self.specs)

    def check_taken(self, *given: str) -> None:
        """Raise :class:`ControlError` for the first control named in ``given`` that this model does not take."""
        for name in given:
            if name not in self.controls:
                what = {"focus": "tap-to-focus point", "aperture": "f-number", "subject": "subject matte"}.get(name, "such input")
                raise ControlError(
                    f"{name}= was given, but this model takes no {what} (its inputs: {', '.join(self.names)}): "
                    f"leave {name} out, or use a model trained with it (e.g. ckpt=reference)"
                )

    def check(self, focus=None, aperture=None) -> tuple[tuple[float, float] | None, float | None]:
        """Validate user controls against this contract; returns them as plain floats.

        Args:
            focus: ``None`` (auto) or ``(x, y)`` fractions in [0, 1].
            aperture: ``None`` (f/1.8) or an f-number.

        Raises:
            ControlError: a control this model was not trained with, a point outside the photo, an
                f-number that is not a finite number in [:data:`MIN_F_NUMBER`, :data:`MAX_F_NUMBER`].
        """
        self.check_taken(*(name for name, value in (("focus", focus), ("aperture", aperture)) if value is not None))
        return (check_focus(focus) if focus is not None else None), (check_aperture(aperture) if aperture is not None else None)


MATTE_NAME = "matte"
BACKGROUND_NAME = "background"
#: The image output's name in ONNX and TFLite files: ONNX names every value once, so an output cannot
#: share the input's name ``image``; files exported before the matte name their one output so too.
IMAGE_FILE_NAME = "bokeh"


@dataclass(frozen=True)
class OutputSpec:
    """One named output of a model.

    Attributes:
        name: ``image``, ``matte`` or ``background`` (the keys of every runtime's ``run_layers``).
        shape: per-sample shape in the torch layout.
        range: the values, in words.
        file_name: the ONNX / TFLite output name, where it differs from ``name``.
    """

    name: str
    shape: tuple
    range: str
    file_name: str = ""

    @property
    def exported_name(self) -> str:
        """The output's name in ONNX and TFLite files."""
        return self.file_name or self.name


IMAGE_OUTPUT = OutputSpec("image", (3, "H", "W"), "the bokeh image m * I + (1 - m) * B, in the input's value range",
                          IMAGE_FILE_NAME)
MATTE_OUTPUT = OutputSpec(MATTE_NAME, (1, "H", "W"), "keep weight m in [0, 1]: 1 = the photo's own pixel stays (in focus)")
BACKGROUND_OUTPUT = OutputSpec(BACKGROUND_NAME, (3, "H", "W"), "the rendered defocus layer B, in the input's value range")


@dataclass(frozen=True)
class OutputContract:
    """The outputs a model gives, in order: always ``image``; a model with a matte (Glass-Net's
    ``blend``) also gives ``matte`` (m) and ``background`` (B), so a caller can composite the
    full-size photo as ``m * photo + (1 - m) * B`` (:mod:`bokeh.composite`)."""

    matte: bool = False

    @classmethod
    def from_settings(cls, settings: dict) -> "OutputContract":
        """The contract of a Glass-Net with these constructor settings (``blend``)."""
        return cls(bool(settings.get("blend", False)))

    @classmethod
    def from_names(cls, names) -> "OutputContract":
        """The contract of an exported model from its output names (:attr:`file_names`; one output,
        whatever its name: image only, as files exported before the matte).

        Raises:
            ValueError: several names that are not ``bokeh``, ``matte`` and ``background``.
        """
        names = tuple(names)
        if len(names) <= 1:
            return cls()
        if sorted(names) != sorted(cls(True).file_names):
            raise ValueError(f"outputs {list(names)} are not a Glass-Net's (one image output, or "
                             f"{', '.join(cls(True).file_names)})")
        return cls(True)

    @property
    def specs(self) -> tuple[OutputSpec, ...]:
        return (IMAGE_OUTPUT,) + ((MATTE_OUTPUT, BACKGROUND_OUTPUT) if self.matte else ())

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    @property
    def file_names(self) -> tuple[str, ...]:
        """The ONNX / TFLite output names, in order (:attr:`OutputSpec.exported_name`)."""
        return tuple(spec.exported_name for spec in self.specs)

    def name_of(self, file_name: str) -> str:
        """The contract name (``image``, ``matte``, ``background``) of a file's output name."""
        return next((spec.name for spec in self.specs if spec.exported_name == file_name), IMAGE_OUTPUT.name)

    def describe(self) -> str:
        """One line per output: ``name shape range``."""
        return "\n".join(f"{s.name} {s.shape}: {s.range}" for s in self.specs)


def _typed(value) -> str:
    """A control value as a user would type it: ``0.5,0.4`` for a pair, the text itself for text."""
    if isinstance(value, str):
        return value
    try:
        return ",".join(f"{float(v):g}" for v in value)
    except (TypeError, ValueError):
        return str(value)


def check_focus(focus, typed: str | None = None) -> tuple[float, float]:
    """``focus`` as ``(x, y)`` floats in [0, 1]; raises :class:`ControlError` naming what is wrong
    (``focus=<typed>``: the text the user gave, else the value written as ``x,y``)."""
    typed = _typed(focus) if typed is None else typed
    try:
        x, y = (float(v) for v in focus)
    except (TypeError, ValueError):
        raise ControlError(f"focus={typed} is not a point: give x,y as fractions of the width and height, e.g. focus=0.5,0.4") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ControlError(f"focus={typed} is not a finite point: give x,y as fractions in [0, 1], e.g. focus=0.5,0.4")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ControlError(f"focus={typed} lies outside the photo: x and y are fractions of the width and height in [0, 1]")
    return x, y


def check_aperture(aperture, typed: str | None = None) -> float:
    """``aperture`` as a float f-number; raises :class:`ControlError` for f/0, negatives, NaN, text,
    and f-numbers wider than the model was trained with (below :data:`MIN_F_NUMBER`). The message
    names ``aperture=<typed>`` (the text the user gave, else the value)."""
    typed = str(aperture) if typed is None else typed
    try:
        value = float(aperture)
    except (TypeError, ValueError):
        raise ControlError(f"aperture={typed} is not an f-number: give a number such as aperture=2.8") from None
    if math.isfinite(value) and 0 < value < MIN_F_NUMBER:
        raise ControlError(
            f"aperture={typed} is wider than the model was trained for (f/{TRAINED_F_NUMBERS[0]:g} to f/{TRAINED_F_NUMBERS[1]:g}) "
            f"and would blur no more than f/{MIN_F_NUMBER:g}: give {MIN_F_NUMBER:g} or more"
        )
    if not math.isfinite(value) or not MIN_F_NUMBER <= value <= MAX_F_NUMBER:
        raise ControlError(
            f"aperture={typed} is not a usable f-number: give a finite number from {MIN_F_NUMBER:g} to {MAX_F_NUMBER:g}, "
            f"e.g. 1.8 (the widest the model was trained with) or 8"
        )
    return value


@dataclass(frozen=True)
class PixelPoint:
    """A point to focus on in pixels of the photo (as it is shown: EXIF orientation applied), from
    its top-left corner: ``x`` to the right, ``y`` down; ``python -m bokeh.render focus=640px,480px``."""

    x: float
    y: float

    def fractions(self, size: tuple[int, int]) -> tuple[float, float]:
        """``(x / W, y / H)`` for a photo of ``size`` ``(H, W)``.

        Raises:
            ControlError: the point lies outside the photo (x not in [0, W] or y not in [0, H]).
        """
        height, width = size
        if not (0 <= self.x <= width and 0 <= self.y <= height):
            raise ControlError(f"focus={self.x:g}px,{self.y:g}px lies outside the photo ({width} x {height} px): give "
                               f"pixels from its top-left corner, x up to {width} and y up to {height}")
        return self.x / width, self.y / height


# ----------------------------------------------------------------------------- the controls as typed on a command line
def parse_focus(text: str) -> tuple[float, float] | PixelPoint:
    """``"0.5,0.4"`` -> fractions ``(0.5, 0.4)`` (checked: in [0, 1]); ``"640px,480px"`` -> a
    :class:`PixelPoint` (checked against each photo's size later, before any work).

    Raises:
        ControlError: not two numbers, mixed units, or a fraction outside [0, 1]; the message shows
            ``focus=`` as typed.
    """
    typed = str(text)
    parts = [part.strip().lower() for part in typed.split(",")]
    pixels = [part.endswith("px") for part in parts]
    if len(parts) == 2 and all(pixels):
        try:
            x, y = (float(part[:-2]) for part in parts)
        except ValueError:
            x = y = math.nan
        if math.isfinite(x) and math.isfinite(y):
            return PixelPoint(x, y)
    elif len(parts) == 2 and not any(pixels):
        return check_focus(parts, typed)
    raise ControlError(f"focus={typed} is not a point: give x,y as fractions of the photo's width and height "
                       f"(focus=0.5,0.4) or as pixels from its top-left corner (focus=640px,480px)")


def parse_aperture(text: str) -> float:
    """``"2.8"`` or ``"f/2.8"`` -> 2.8 (:func:`check_aperture`: ``ControlError`` for f/0, negatives,
    NaN, text; the message shows ``aperture=`` as typed)."""
    import re

    value = str(text).strip()
    match = re.fullmatch(r"[fF]/?(\d.*)", value)
    return check_aperture(match.group(1) if match else value, str(text))


parse_focus.describe = "x,y as fractions of the width and height (0.5,0.4) or pixels (640px,480px)"  # type: ignore[attr-defined]
parse_aperture.describe = f"an f-number from {MIN_F_NUMBER:g} to {MAX_F_NUMBER:g} (2.8 or f/2.8)"  # type: ignore[attr-defined]


def control_tensors(batch: int, focus=None, aperture=None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``focus`` ``(B, 2)`` and ``aperture`` ``(B, 1)`` float32 tensors for checked values
    (``None``: :data:`NO_FOCUS`, :data:`REFERENCE_F_NUMBER`), one row per sample."""
    point = NO_FOCUS if focus is None else focus
    f_number = REFERENCE_F_NUMBER if aperture is None else aperture
    return (torch.tensor([point], dtype=torch.float32, device=device).expand(batch, 2).contiguous(),
            torch.full((batch, 1), float(f_number), dtype=torch.float32, device=device))


def focus_grid(height: int, width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """Pixel-centre coordinates as fractions of width and height: ``(1, 2, H, W)``, channel 0 = x."""
    ys = (torch.arange(height, dtype=dtype, device=device) + 0.5) / height
    xs = (torch.arange(width, dtype=dtype, device=device) + 0.5) / width
    return torch.stack([xs.expand(height, width), ys[:, None].expand(height, width)])[None]


def focus_weights(height: int, width: int, sigma: float = FOCUS_SIGMA, dtype=torch.float32, device=None) -> torch.Tensor:
    """``(1, 2, 1, 1)`` weights ``-(side / short)^2 / (2 sigma^2)``: squared fraction offsets in x and y
    times these, summed, give ``-d^2 / (2 sigma^2)`` with ``d`` in short sides."""
    short = min(height, width)
    return torch.tensor([-((width / short) ** 2), -((height / short) ** 2)], dtype=dtype, device=device).view(1, 2, 1, 1) / (2 * sigma**2)


def focus_plane(focus: torch.Tensor, grid: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The tap plane: a Gaussian of peak 1 at ``focus`` (0 everywhere for :data:`NO_FOCUS`).

    Only element-wise ops and a 1 x 1 convolution, so the exported graph runs on a phone GPU.

    Shape:
        focus: ``(B, 2)`` fractions; grid: ``(1, 2, H, W)`` (:func:`focus_grid`); weights:
        ``(1, 2, 1, 1)`` (:func:`focus_weights`). Returns ``(B, 1, H, W)`` in [0, 1].
    """
    offset = grid - focus[:, :, None, None]  # (B, 2, H, W)
    exponent = torch.nn.functional.conv2d(offset * offset, weights.view(1, 2, 1, 1))  # (B, 1, H, W)
    return torch.exp(exponent)


def aperture_plane(aperture: torch.Tensor, ones: torch.Tensor) -> torch.Tensor:
    """The aperture plane: ``REFERENCE_F_NUMBER / N`` everywhere.

    Shape:
        aperture: ``(B, 1)`` f-numbers; ones: ``(1, 1, H, W)``. Returns ``(B, 1, H, W)``.
    """
    return (REFERENCE_F_NUMBER / aperture)[:, :, None, None] * ones


def relative_aperture(f_number: float) -> float:
    """``REFERENCE_F_NUMBER / f_number``: the factor circle-of-confusion radii scale by."""
    return REFERENCE_F_NUMBER / float(f_number)
