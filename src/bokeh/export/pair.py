"""The phone pipeline's second model: the subject segmenter beside the Glass-Net, and the description
of how the two files work together (``pipeline.json``, also stored inside each Glass-Net ``.tflite``).

``python -m bokeh.export`` copies MediaPipe's selfie segmenter from the installed mediapipe wheel
(:func:`bokeh.runtimes.segmenter.segmenter_model_path`; never downloaded) into the export as
:data:`SEGMENTER_FILE`, checks it on LiteRT's CPU interpreter and, where there is an adapter, on the
GPU accelerator (fully accelerated, close to the CPU), and writes :data:`PIPELINE_FILE`: which output
feeds which input, the sizes, value ranges and the composite.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bokeh.render.fit import BOTTOM_ROWS, SUBJECT_GATE
from bokeh.runtimes import NotFullyAccelerated
from bokeh.runtimes.segmenter import LICENCE, PIN, SOURCE, SubjectSegmenter, segmenter_model_path

SEGMENTER_FILE = "segmenter.tflite"
PIPELINE_FILE = "pipeline.json"
PIPELINE_FORMAT = "bokeh.pipeline/1"
LICENCE_URL = "https://www.apache.org/licenses/LICENSE-2.0"
REPOSITORY = "https://github.com/google-ai-edge/mediapipe"
#: matte-to-matte IoU (regions > 0.5) the GPU accelerator's segmenter must reach against the CPU's
MIN_GPU_IOU = 0.99


def copy_segmenter(folder: Path) -> Path:
    """Copy the installed segmenter into ``folder`` as :data:`SEGMENTER_FILE`; its path.

    Raises:
        SegmenterMissing: mediapipe or its model file is missing (one sentence with the fix).
    """
    target = Path(folder) / SEGMENTER_FILE
    shutil.copyfile(segmenter_model_path(), target)
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def iou(a: torch.Tensor, b: torch.Tensor, threshold: float = 0.5) -> float:
    """IoU of the regions above ``threshold`` of two mattes; 1.0 when both are empty."""
    a, b = a > threshold, b > threshold
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def segmenter_checks(report, path: Path, images: dict[str, np.ndarray], value_range: str, gpu: str | None,
                     tolerances: dict[str, float], required: bool) -> None:
    """The checks of the exported segmenter, into ``report`` (a :class:`bokeh.export.pipeline.Report`).

    ``segmenter_cpu``: the copy is the installed model (same SHA-256) and LiteRT's interpreter runs it
    (a ``(1, 1, H, W)`` matte in [0, 1] for each image). With ``gpu`` None (an adapter is there):
    ``segmenter_gpu_fully_accelerated``, then ``segmenter_gpu_vs_cpu`` (fp16 arithmetic, max abs
    error within ``tolerances["gpu"]`` and IoU of the > 0.5 regions at least :data:`MIN_GPU_IOU`) and
    ``segmenter_gpu_f32_vs_cpu`` (``enforce_f32``, within ``tolerances["gpu_f32"]``); else each is
    recorded as not run, with the reason ``gpu`` (failing the export only if ``required``).

    Shape: images: NCHW in the Glass-Net's value range (``signed`` [-1, 1] or ``pixel`` [0, 255]).
    """
    signed = {k: torch.from_numpy(np.asarray(x, np.float32) / 127.5 - 1.0 if value_range == "pixel" else np.asarray(x, np.float32))
              for k, x in images.items()}
    source = segmenter_model_path()
    cpu = SubjectSegmenter(path, "cpu")
    mattes = {k: cpu.matte(x) for k, x in signed.items()}
    ranges_ok = all(m.shape == (1, 1, *x.shape[-2:]) and 0.0 <= float(m.min()) and float(m.max()) <= 1.0
                    for m, x in zip(mattes.values(), signed.values()))
    same = _sha256(path) == _sha256(source)
    report.check("segmenter_cpu", same and ranges_ok,
                 f"{SEGMENTER_FILE}: {'the' if same else 'NOT the'} installed model ({source.name}, {path.stat().st_size} bytes); "
                 f"LiteRT's interpreter gives {'(1, 1, H, W) mattes in [0, 1]' if ranges_ok else 'mattes of the wrong shape or range'}")
    report.runtimes["segmenter_cpu"] = cpu.describe().to_dict()
    if gpu is not None:
        for name in ("segmenter_gpu_fully_accelerated", "segmenter_gpu_vs_cpu", "segmenter_gpu_f32_vs_cpu"):
            report.not_run(name, f"not run: {gpu}", required)
        return
    for run, enforce_f32 in (("gpu", False), ("gpu_f32", True)):
        try:
            segmenter = SubjectSegmenter(path, "gpu", enforce_f32=enforce_f32)
        except NotFullyAccelerated as error:
            report.check("segmenter_gpu_fully_accelerated", False, str(error))
            return
        try:
            if not enforce_f32:
                report.check("segmenter_gpu_fully_accelerated", segmenter.model.fully_accelerated is True,
                             f"compiled for LiteRT's GPU accelerator alone on {segmenter.model.adapter}")
            errors = {}
            for k, x in signed.items():
                matte = segmenter.matte(x)
                errors[k] = {"max_abs": float((matte - mattes[k]).abs().max()), "mean_abs": float((matte - mattes[k]).abs().mean()),
                             "iou": iou(matte, mattes[k])}
            report.errors[f"segmenter_{run}"] = errors
            worst, lowest = max(e["max_abs"] for e in errors.values()), min(e["iou"] for e in errors.values())
            limit = tolerances[run]
            passed = worst < limit and (enforce_f32 or lowest >= MIN_GPU_IOU)
            report.check(f"segmenter_{run}_vs_cpu", passed, f"matte max abs error {worst:.3g} (limit {limit:g}), "
                         f"IoU of the > 0.5 regions {lowest:.4f}" + ("" if enforce_f32 else f" (at least {MIN_GPU_IOU})"),
                         required=required)
            report.runtimes[f"segmenter_{run}"] = segmenter.describe().to_dict()
        finally:
            segmenter.close()


def _image_range(value_range: str) -> list[float]:
    return [0.0, 255.0] if value_range == "pixel" else [-1.0, 1.0]


def describe_pipeline(glassnet_files: list[str], size: tuple[int, int], value_range: str, inputs: list[str],
                      outputs: list[str], segmenter: Path) -> dict[str, Any]:
    """The two-model pipeline as plain data (``pipeline.json``): what feeds what, sizes, value ranges,
    the composite, and where the segmenter comes from and under which licence.

    Args:
        glassnet_files: the exported Glass-Net ``.tflite`` names (any one of them runs the pipeline).
        size: the Glass-Net's static input ``(H, W)``.
        inputs, outputs: its ONNX/TFLite names (``image[, focus][, aperture][, subject]``; ``bokeh[, matte, background]``).
        segmenter: the exported segmenter file (its shapes are read from it).
    """
    model = SubjectSegmenter(segmenter, "cpu")
    (seg_in, seg_in_shape), = model.model.input_shapes.items()
    (seg_out, seg_out_shape), = model.model.output_shapes.items()
    height, width = size
    image_range = _image_range(value_range)
    glass_inputs = {"image": {"shape": [1, height, width, 3], "layout": "NHWC", "dtype": "float32", "range": image_range,
                              "from": "the photo, RGB, turned a quarter turn when its orientation differs from the model's, "
                                      "resized (bicubic, antialiased) to fit inside H x W keeping its aspect ratio, edge-padded "
                                      "at the bottom and right"}}
    if "focus" in inputs:
        glass_inputs["focus"] = {"shape": [1, 2], "dtype": "float32", "range": [0.0, 1.0],
                                 "meaning": "(x, y) tap point as fractions of the padded input's width and height; (-1, -1) = auto"}
    if "aperture" in inputs:
        glass_inputs["aperture"] = {"shape": [1, 1], "dtype": "float32", "range": [1.8, 64.0],
                                    "meaning": "f-number (default 1.8)"}
    if "subject" in inputs:
        glass_inputs["subject"] = {"shape": [1, height, width, 1], "layout": "NHWC", "dtype": "float32", "range": [0.0, 1.0],
                                   "from": "the segmenter's matte m of the photo, fitted to H x W as the image is (the same turn, "
                                           "resize and edge-padding); all zeros = no subject prior (subject=off)"}
    glass_outputs = {"bokeh": {"shape": [1, height, width, 3], "range": image_range, "meaning": "the rendered image"}}
    if "matte" in outputs:
        glass_outputs["matte"] = {"shape": [1, height, width, 1], "range": [0.0, 1.0],
                                  "meaning": "Glass-Net's own keep weight (1 = the input pixel stays sharp)"}
        glass_outputs["background"] = {"shape": [1, height, width, 3], "range": image_range,
                                       "meaning": "the rendered defocus layer B"}
    layer = "background" if "matte" in outputs else "bokeh"
    return {
        "format": PIPELINE_FORMAT,
        "models": {
            "segmenter": {
                "file": segmenter.name, "bytes": segmenter.stat().st_size, "sha256": _sha256(segmenter),
                "what": "MediaPipe selfie segmentation: a person/subject matte", "source": SOURCE, "package": PIN,
                "package_path": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
                "licence": LICENCE, "licence_url": LICENCE_URL, "repository": REPOSITORY, "author": "Google",
                "inputs": {seg_in: {"shape": list(seg_in_shape), "layout": "NHWC", "dtype": "float32", "range": [0.0, 1.0],
                                    "from": f"the photo, RGB, resized (bilinear, antialiased) to {seg_in_shape[1]} x {seg_in_shape[2]}, "
                                            f"values / 255"}},
                "outputs": {seg_out: {"shape": list(seg_out_shape), "range": [0.0, 1.0],
                                      "meaning": "subject matte (1 = subject), resized bilinearly to the photo's size: m"}},
            },
            "glassnet": {"files": list(glassnet_files), "inputs": glass_inputs, "outputs": glass_outputs},
        },
        "steps": [
            f"s = segmenter({seg_in} = photo at {seg_in_shape[1]} x {seg_in_shape[2]} in [0, 1]).{seg_out}, in [0, 1]",
            f"B = glassnet(image = photo fitted to {height} x {width}"
            + "".join(f", {name}" for name in inputs if name != "image") + f").{layer}"
            + (", and its matte" if "matte" in outputs else ""),
            "g = 1 (subject=auto, the default); with subject=person, the subject gate of s turned upright as the photo is "
            "shown (subject_gate): 1 (trust the subject matte as a person's) or 0",
            ("k = max(g * s, matte)" if "matte" in outputs else "k = g * s")
            + ", with s resized bilinearly to the photo's part of the Glass-Net input (turned as the model saw it)",
            "m = k with the padding cut off, turned back and brought to the photo's size along the photo's edges "
            "(bilinear, then a guided filter with the photo's luma: bokeh.composite.upsample_matte), clamped to [0, 1]",
            f"up(B): B with the padding cut off, turned back, resized bilinearly to the photo's size"
            + (", mapped from [0, 255] to the photo's range" if value_range == "pixel" else ""),
            "out = m * photo + (1 - m) * up(B)",
        ],
        "subject_gate": {
            **SUBJECT_GATE, "bottom_rows": BOTTOM_ROWS,
            "rule": "on s (any size; its fractions do not depend on it): region = s > 0.5; g = 1 when mean(s over region) "
                    ">= confidence and (area = count(region) / count(s) <= small_area or bottom = region's share of the "
                    "last max(1, round(bottom_rows * rows)) rows >= bottom), else 0 (an empty region: 0)",
            "applies": "subject=person only (bokeh.render subject=person); subject=auto trusts every subject matte",
            "why": "a selfie segmenter also marks out-of-focus objects and pictures of people; only a confident region that is "
                   "small or rises from the frame's bottom edge is trusted as a person (bokeh.render.fit.subject_trusted)",
        },
        "composite": "m * photo + (1 - m) * up(B)",
        "composite_terms": {
            "m": "the focus matte in [0, 1] at the photo's size: the segmenter's subject matte (with subject=person only "
                 "where the subject gate trusts it) with Glass-Net's own matte upsampled along the photo's edges (max of the "
                 "two); where the gate does not, Glass-Net's matte alone (bokeh.render.fit.render_photo)",
            "photo": "the full-size photo, in the same range as up(B)",
            "B": f"Glass-Net's '{layer}' output",
        },
        "value_ranges": {"photo_for_segmenter": [0.0, 1.0], "glassnet_image": image_range, "mattes": [0.0, 1.0]},
    }
