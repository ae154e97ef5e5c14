"""The subject matte: MediaPipe's selfie segmenter, read from the installed ``mediapipe`` wheel.

``mediapipe`` 0.10.21 (pinned) ships ``mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite``
(249,505 bytes; 1 x 256 x 256 x 3 float RGB in [0, 1] -> 1 x 256 x 256 x 1 in [0, 1], 1 = person;
Apache-2.0, Google) and a landscape variant (144 x 256). The file is found with
``importlib.util.find_spec`` without importing mediapipe, and never downloaded (later mediapipe
releases download their models at run time). It runs on our own runtimes, LiteRT's CPU interpreter or
its GPU accelerator (:class:`~bokeh.runtimes.tflite_tensors.TfliteTensors`), not through mediapipe.
"""

from __future__ import annotations

import functools
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bokeh.runtimes.base import Description, RuntimeUnavailable
from bokeh.runtimes.tflite_tensors import DEVICES, TfliteTensors

PACKAGE = "mediapipe"
PIN = "mediapipe==0.10.21"
VARIANTS = {"square": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
FOLDER = ("modules", "selfie_segmentation")
LICENCE = "Apache-2.0"
SOURCE = "MediaPipe selfie segmentation (Google), bundled in the mediapipe 0.10.21 wheel"
INSTALL = f"`make venv` installs it (or `pip install {PIN}`; later releases no longer bundle the model)"


class SegmenterMissing(RuntimeUnavailable):
    """The segmenter's model file (or the mediapipe package holding it) is missing; the message is one
    sentence naming the file or package and the command that installs it."""


def segmenter_model_path(variant: str = "square") -> Path:
    """The selfie segmenter's ``.tflite`` inside the installed mediapipe wheel (never downloaded).

    Args:
        variant: ``square`` (256 x 256 input) or ``landscape`` (144 x 256).

    Raises:
        ValueError: an unknown variant.
        SegmenterMissing: mediapipe is not installed, or its wheel lacks the file.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r}: expected one of {', '.join(VARIANTS)}")
    spec = find_spec(PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    if not folders:
        raise SegmenterMissing(f"the subject matte needs MediaPipe's selfie segmenter, but the {PACKAGE} package is not "
                               f"installed: {INSTALL}")
    for folder in folders:
        path = Path(folder, *FOLDER, VARIANTS[variant])
        if path.is_file():
            return path
    raise SegmenterMissing(f"the subject matte needs {Path(folders[0], *FOLDER, VARIANTS[variant])}, which the installed "
                           f"{PACKAGE} does not have: {INSTALL}")


class SubjectSegmenter:
    """A subject matte from MediaPipe's selfie segmenter, on LiteRT's CPU interpreter or GPU accelerator.

    Args:
        path: the segmenter's ``.tflite`` (one float32 NHWC RGB input in [0, 1], one ``(1, h, w, 1)``
            output in [0, 1]); None: the square model in the installed mediapipe
            (:func:`segmenter_model_path`).
        device: ``cpu`` (LiteRT's interpreter) or ``gpu`` (LiteRT's GPU accelerator alone, fp16
            arithmetic: fully accelerated or it raises).
        enforce_f32: ``gpu`` only: compute in float32 (for comparisons; phones compute in fp16).

    Attributes:
        size: the model's input ``(H, W)``, (256, 256) for the square model.

    Raises:
        SegmenterMissing: ``path`` is None and the model is not installed.
        ValueError: an unknown device, or a model that is not one image in and one plane out.
        RuntimeUnavailable: LiteRT, or (``gpu``) its accelerator or a Vulkan adapter, is missing.
        NotFullyAccelerated: (``gpu``) the model has ops the accelerator does not run.
    """

    def __init__(self, path: str | Path | None = None, device: str = "cpu", *, enforce_f32: bool = False) -> None:
        self.path = segmenter_model_path() if path is None else Path(path)
        if path is not None and not self.path.is_file():
            raise SegmenterMissing(f"segmenter model {self.path} does not exist: export it again with `make tflite` "
                                   f"(it is copied from the installed {PACKAGE}), or pass no path to use that one")
        self.device = device
        self.model = TfliteTensors(self.path, device, enforce_f32=enforce_f32)
        shapes = list(self.model.input_shapes.values()), list(self.model.output_shapes.values())
        if len(shapes[0]) != 1 or len(shapes[1]) != 1 or len(shapes[0][0]) != 4 or shapes[0][0][0] != 1 \
                or shapes[0][0][3] != 3 or shapes[1][0] != (*shapes[0][0][:3], 1):
            raise ValueError(f"{self.path}: inputs {self.model.input_shapes} and outputs {self.model.output_shapes} are not "
                             f"a segmenter's (one (1, h, w, 3) image in, one (1, h, w, 1) matte out)")
        self.input_name, self.output_name = self.model.input_names[0], self.model.output_names[0]
        self.size: tuple[int, int] = (int(shapes[0][0][1]), int(shapes[0][0][2]))

    def matte(self, image: torch.Tensor) -> torch.Tensor:
        """The subject matte of each image, at the image's size. Deterministic.

        Each image is mapped to [0, 1], resized to :attr:`size` (bilinear, antialiased), run, and its
        matte resized back bilinearly and clamped to [0, 1].

        Shape:
            ``(B, 3, H, W)`` in [-1, 1] (any float dtype) -> ``(B, 1, H, W)`` float32 in [0, 1], 1 = subject.

        Raises:
            ValueError: not a ``(B, 3, H, W)`` tensor.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"the segmenter takes a (B, 3, H, W) image in [-1, 1]; got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        x = ((image.detach().float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)  # (B, 3, h, w)
        mattes = []
        for sample in x.permute(0, 2, 3, 1).numpy():  # (h, w, 3) each
            out = self.model.run({self.input_name: sample[None]})[self.output_name]  # (1, h, w, 1)
            mattes.append(torch.from_numpy(np.ascontiguousarray(out[0, :, :, 0])))
        m = torch.stack(mattes)[:, None]  # (B, 1, h, w)
        m = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)  # (B, 1, H, W)
        return m.clamp(0.0, 1.0).contiguous()

    def describe(self) -> Description:
        """The runtime's description, with the model, its licence and source in ``extra``."""
        described = self.model.describe()
        extra = {**described.extra, "model": "MediaPipe selfie segmentation", "input_size": list(self.size),
                 "licence": LICENCE, "source": SOURCE}
        return Description(described.runtime, described.device, described.precision, described.threads,
                           described.software_adapter, extra)

    def close(self) -> None:
        """Release the GPU resources (nothing on the CPU); idempotent."""
        self.model.close()


@functools.lru_cache(maxsize=None)
def _default(device: str) -> SubjectSegmenter:
    return SubjectSegmenter(None, device)


def default_segmenter(device: str = "cpu") -> SubjectSegmenter:
    """One cached :class:`SubjectSegmenter` of the installed square model per device (``cpu``, ``gpu``).

    Raises:
        ValueError: an unknown device. Otherwise as :class:`SubjectSegmenter` (nothing is cached then).
    """
    if device not in DEVICES:
        raise ValueError(f"device={device!r}: expected one of {', '.join(DEVICES)}")
    return _default(device)
