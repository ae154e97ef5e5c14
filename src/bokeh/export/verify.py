"""Checks on exported models: parity between runtimes, the TFLite op list, latency.

The op list is read from the ``.tflite`` flatbuffer with the TFLite schema bindings that ship with
LiteRT (``ai_edge_litert.schema_py_generated``) and compared with
:data:`bokeh.export.gpu_ops.GPU_DELEGATE_OPS`. TensorFlow's model analyzer is reported too, but
it is not a check: TensorFlow 2.19 says "compatible" for models with TOPK_V2 or Flex ops
(TOOLCHAIN.md).
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from bokeh.export.gpu_ops import GPU_DELEGATE_OPS, REDUCTIONS

DATA_RANGES = {"signed": 2.0, "pixel": 255.0}  # peak-to-peak of each value range, for PSNR


def tflite_ops(path: str | Path) -> Counter:
    """How often each operator occurs in the ``.tflite`` file at ``path``, over all subgraphs.

    Builtin ops by schema name (``CONV_2D``); custom ops as ``CUSTOM:<name>`` (Flex ops, the
    TensorFlow fallback, are custom ops named ``Flex...``).
    """
    from ai_edge_litert import schema_py_generated as schema

    buffer = Path(path).read_bytes()
    if not schema.Model.ModelBufferHasIdentifier(buffer, 0):
        raise ValueError(f"{path} is not a TFLite flatbuffer (no 'TFL3' identifier)")
    model = schema.Model.GetRootAs(buffer, 0)
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        # Codes above 127 live in builtin_code; deprecated_builtin_code holds min(code, 127).
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = names.get(builtin, f"UNKNOWN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode()}"
        codes.append(name)
    counts: Counter = Counter()
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for o in range(subgraph.OperatorsLength()):
            counts[codes[subgraph.Operators(o).OpcodeIndex()]] += 1
    return counts


def gpu_op_problems(ops: Mapping[str, int]) -> list[str]:
    """One line per op in ``ops`` that is not on the GPU-delegate allow-list, saying why; [] if none."""
    problems = []
    for op in sorted(ops):
        if op in GPU_DELEGATE_OPS:
            continue
        if op in REDUCTIONS:
            why = "a reduction: the instance-norm rewrite exists to remove these"
        elif op.startswith("CUSTOM:Flex"):
            why = "a Flex (TensorFlow fallback) op: never runs on the GPU delegate"
        elif op.startswith("CUSTOM:"):
            why = "a custom op"
        else:
            why = "not implemented by the TFLite GPU delegate"
        problems.append(f"{op} x{ops[op]}: {why}")
    return problems


def parity(reference: np.ndarray, candidate: np.ndarray, data_range: float) -> dict[str, float]:
    """Max abs error and PSNR (dB, peak = ``data_range``) of ``candidate`` against ``reference``.

    PSNR as skimage defines it: 10 log10(data_range^2 / MSE) over all values; inf if equal.
    """
    from skimage.metrics import peak_signal_noise_ratio

    if reference.shape != candidate.shape:
        raise ValueError(f"outputs differ in shape: {reference.shape} vs {candidate.shape}")
    reference, candidate = reference.astype(np.float64), candidate.astype(np.float64)
    max_abs = float(np.abs(reference - candidate).max())
    psnr = float("inf") if max_abs == 0 else float(peak_signal_noise_ratio(reference, candidate, data_range=data_range))
    return {"max_abs": max_abs, "psnr_db": psnr}


#: Colour photos that ship with scikit-image, for checks on real pictures.
PHOTOS = ("astronaut", "coffee", "chelsea")


def photo(height: int, width: int, name: str = "astronaut") -> np.ndarray:
    """A scikit-image photo (:data:`PHOTOS`) scaled to cover ``height x width`` and centre-cropped.

    Shape:
        returns ``(height, width, 3)`` float32 in [0, 1].

    Raises:
        ValueError: ``name`` is not one of :data:`PHOTOS`.
    """
    from skimage import data, transform

    if name not in PHOTOS:
        raise ValueError(f"photo {name!r}: expected one of {', '.join(PHOTOS)}")
    image = getattr(data, name)()  # (H, W, 3) uint8, shipped with scikit-image
    scale = max(height / image.shape[0], width / image.shape[1])
    size = (max(height, round(image.shape[0] * scale)), max(width, round(image.shape[1] * scale)))
    image = transform.resize(image, size, order=1, anti_aliasing=scale < 1)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return image[top:top + height, left:left + width].astype(np.float32)


def to_model_range(image01: np.ndarray, value_range: str) -> np.ndarray:
    """``(..., H, W, 3)`` images in [0, 1] -> NHWC in the model's value range (see Deployable)."""
    return image01 * 255.0 if value_range == "pixel" else image01 * 2.0 - 1.0


def sample_images(height: int, width: int, value_range: str, seed: int = 0) -> dict[str, np.ndarray]:
    """The verification inputs: ``photo`` (astronaut) and ``random`` (seeded uniform noise).

    Shape:
        each ``(1, 3, height, width)`` float32 (NCHW), in the model's value range.
    """
    noise = np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)
    images = {"photo": photo(height, width), "random": noise}
    return {name: to_model_range(image, value_range).transpose(2, 0, 1)[None].copy() for name, image in images.items()}


#: The controls the parity checks set besides the defaults: a tap off the centre, f/4 (not f/1.8) and a
#: subject matte (:func:`check_subject`, named here in words: its size is the image's).
CHECK_CONTROLS = {"focus": (0.3, 0.6), "aperture": 4.0, "subject": "a soft disc: 1 at the centre, 0 beyond a third of the short side"}


def check_subject(height: int, width: int) -> np.ndarray:
    """The subject matte of the parity checks: a soft disc, 1 at the centre, falling linearly to 0 at a
    third of the short side. Shape: ``(1, 1, H, W)`` float32 in [0, 1]."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    distance = np.hypot(ys - (height - 1) / 2, xs - (width - 1) / 2) / (min(height, width) / 3)
    return np.clip(1.5 - 1.5 * distance, 0.0, 1.0)[None, None].astype(np.float32)
CONTROLS_SUFFIX = "_controls"


def with_controls(images: dict[str, np.ndarray], controls: tuple[str, ...]) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The verification cases of a model that takes ``controls`` (its ``InputContract.controls``).

    Every image is checked with the default controls (auto focus, f/1.8) under its own name, and
    again with :data:`CHECK_CONTROLS` under ``<name>_controls``; a model without controls keeps
    ``images`` as they are.

    Returns:
        ``(images, controls)``: the cases' inputs, and for each case the keyword arguments of
        :meth:`bokeh.runtimes.Runtime.run` (``{}`` for the defaults).
    """
    cases, settings = dict(images), {name: {} for name in images}
    if controls:
        for name, image in images.items():
            cases[name + CONTROLS_SUFFIX] = image
            settings[name + CONTROLS_SUFFIX] = {key: check_subject(*image.shape[-2:]) if key == "subject" else CHECK_CONTROLS[key]
                                                for key in controls}
    return cases, settings


def calibration_images(value_range: str, seed: int = 0) -> np.ndarray:
    """20 crops of scikit-image photos as onnx2tf's calibration array, float32 (20, 128, 128, 3)."""
    from skimage import data, transform

    rng = np.random.default_rng(seed)
    sources = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    crops = []
    for i in range(20):
        image = sources[i % len(sources)]
        side = int(rng.integers(128, min(image.shape[:2]) + 1))
        top = int(rng.integers(0, image.shape[0] - side + 1))
        left = int(rng.integers(0, image.shape[1] - side + 1))
        crop = transform.resize(image[top:top + side, left:left + side], (128, 128), order=1, anti_aliasing=True)
        crops.append(crop)
    return to_model_range(np.stack(crops).astype(np.float32), value_range).astype(np.float32)


def median_latency(run: Callable[[], object], repeats: int, warmup: int = 1) -> dict[str, float | list[float]]:
    """Median wall-clock seconds of ``run()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "runs_s": times}


def tf_analyzer_verdict(path: str | Path) -> str:
    """What TensorFlow's analyzer says about GPU compatibility: a label, NOT a check (module doc)."""
    import tensorflow as tf

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            tf.lite.experimental.Analyzer.analyze(model_path=str(path), gpu_compatibility=True)
    except Exception as error:  # a label only: its failure must not fail the export
        return f"analyzer failed ({type(error).__name__}: {error})"
    text = buffer.getvalue()
    if "GPU COMPATIBILITY WARNING" in text or "not supported by GPU" in text.lower():
        return "reports GPU incompatibilities"
    if "looks compatible" in text.lower():
        return "says the model looks GPU compatible"
    return "gave no verdict"
