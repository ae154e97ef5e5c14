"""MediaPipe's selfie segmenter (the subject matte), run by LiteRT on the CPU.

A stand-in with the API of branch ``segmenter`` (issue 30 item 1), so the v4 work can train before
that branch lands; on merge, that branch's module replaces this one.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bokeh.runtimes.base import Description, RuntimeUnavailable

MODEL_FILES = {"square": "selfie_segmentation.tflite", "landscape": "selfie_segmentation_landscape.tflite"}
INSTALL = "`make venv` installs mediapipe==0.10.21 (pinned in pyproject.toml)"


class SegmenterMissing(RuntimeUnavailable):
    """The segmenter's model file or its runtime is not installed."""


def segmenter_model_path(variant: str = "square") -> Path:
    """The ``.tflite`` inside the installed ``mediapipe`` wheel, found without importing mediapipe.

    Raises:
        SegmenterMissing: mediapipe is not installed, or its wheel holds no such model.
    """
    if variant not in MODEL_FILES:
        raise ValueError(f"segmenter variant must be one of {sorted(MODEL_FILES)}, got {variant!r}")
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise SegmenterMissing(f"the subject segmenter needs the mediapipe package, which is not installed: {INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / "modules" / "selfie_segmentation" / MODEL_FILES[variant]
    if not path.is_file():
        raise SegmenterMissing(f"{path} is missing (mediapipe releases after 0.10.21 no longer ship it): {INSTALL}")
    return path


class SubjectSegmenter:
    """The selfie segmenter on LiteRT's CPU interpreter.

    Shape:
        :meth:`matte`: ``(B, 3, H, W)`` in [-1, 1] -> ``(B, 1, H, W)`` float32 in [0, 1] (1 = subject).
    """

    def __init__(self, path: str | Path | None = None, device: str = "cpu") -> None:
        if device != "cpu":
            raise SegmenterMissing(f"device={device!r}: this build runs the segmenter on the CPU only")
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as error:
            raise SegmenterMissing(f"LiteRT is not installed ({error}); `make venv` installs ai-edge-litert") from error
        self.path = Path(path) if path is not None else segmenter_model_path()
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=1)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        height, width = (int(v) for v in self.input_details["shape"][1:3])
        self.size = (height, width)

    def matte(self, image: torch.Tensor) -> torch.Tensor:
        """The subject matte of each image, at the input's size (resized to :attr:`size` with
        antialiasing, run, resized back bilinearly, clamped to [0, 1])."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"the segmenter takes a (B, 3, H, W) batch in [-1, 1], got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        small = F.interpolate(image.detach().float().cpu(), size=self.size, mode="bilinear", antialias=True, align_corners=False)
        small = ((small + 1.0) / 2.0).clamp(0.0, 1.0).permute(0, 2, 3, 1).contiguous().numpy()  # (B, h, w, 3) in [0, 1]
        mattes = []
        for sample in small:
            self.interpreter.set_tensor(self.input_details["index"], np.ascontiguousarray(sample[None]))
            self.interpreter.invoke()
            mattes.append(self.interpreter.get_tensor(self.output_details["index"]).copy())
        matte = torch.from_numpy(np.concatenate(mattes)).permute(0, 3, 1, 2)  # (B, 1, h, w)
        return F.interpolate(matte, size=(height, width), mode="bilinear", align_corners=False).clamp(0.0, 1.0).to(image.device)

    def describe(self) -> Description:
        from bokeh.runtimes.base import library_version

        return Description(f"LiteRT {library_version('ai-edge-litert')}", "cpu", "float32", 1, None,
                           {"file": str(self.path)})


@lru_cache(maxsize=None)
def default_segmenter(device: str = "cpu") -> SubjectSegmenter:
    """One cached :class:`SubjectSegmenter` per device (per process)."""
    return SubjectSegmenter(device=device)
