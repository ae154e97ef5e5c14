"""Post-training int8 quantization of the TFLite model, calibrated on the project's synthetic pairs.

``python -m bokeh.export export.int8.enabled=true`` (``make tflite INT8=true``) writes ``bokeh_int8.tflite``
beside the float32 and float16 files, verified like them (parity with torch on a photo and on
noise, op list, latency).

The scheme: full-integer post-training quantization, as onnx2tf's ``-oiqt`` ("integer_quant")
file, through the same TensorFlow Lite converter (onnx2tf 1.29.24 calls
``TFLiteConverter`` with ``Optimize.DEFAULT``, a ``representative_dataset`` and
``TFLITE_BUILTINS_INT8``; here the converter runs on the concrete function of
:mod:`bokeh.export.tflite` instead of onnx2tf's SavedModel, and without its ``SELECT_TF_OPS``):

* weights int8, symmetric, one scale per output channel (the converter's default, onnx2tf's
  ``-qt per-channel``): a convolution's channels differ in range by orders of magnitude, one scale
  per tensor would crush the small ones;
* activations int8, asymmetric, one scale and zero point per tensor, from the min / max each
  tensor reaches while the float model runs the representative images (the converter's
  calibration; XNNPACK's QS8 kernels take per-tensor activations);
* input and output float32 (one QUANTIZE after the input, one DEQUANTIZE before the output), so the
  file is a drop-in replacement for the float ones (same signature, same value range);
* only builtin int8 ops: an op without an int8 kernel fails the conversion instead of staying
  float behind hidden QUANTIZE / DEQUANTIZE pairs.

Why not the alternatives: dynamic-range quantization (int8 weights, float activations quantized
on the fly inside each op) needs no calibration and loses less accuracy, but it keeps float
activations between ops and is what "int8 weights" means, not an int8 model; int16 activations with
int8 weights (``EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8``) is closer still but
has no XNNPACK kernels (LiteRT's reference kernels: many times slower than float). Per-tensor
weight scales (onnx2tf's ``-qt per-tensor``) are what older integer-only accelerators need; XNNPACK
and the GPU take per-channel ones. ``benchmarks/int8_layers.py`` measures all of these against each other, and where the error comes
from layer by layer (docs/export.md "An int8 model" has the figures).

On a phone's GPU a quantized model brings a smaller file, not faster arithmetic: the GPU delegate
dequantizes the weights once and computes in float (TensorFlow Lite's GPU delegate documentation,
"quantized models"); QUANTIZE and DEQUANTIZE are on its op list (:mod:`bokeh.export.gpu_ops`).

Calibration data: the sharp halves of the synthetic pairs (:func:`bokeh.data.synthetic.make_pair`)
rendered at the export size: the inputs the model was trained on, at the size it will run at.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bokeh.export.verify import to_model_range

#: Default calibration set: this many pairs of this synthetic set (training's default set, seed 0).
CALIBRATION_COUNT = 16
CALIBRATION_SEED = 0
SCHEME = ("full-integer PTQ: int8 weights (symmetric, per output channel), int8 activations (asymmetric, "
          "per tensor, calibrated min/max), float32 input and output")


def representative_images(height: int, width: int, value_range: str = "signed", count: int = CALIBRATION_COUNT,
                          seed: int = CALIBRATION_SEED) -> Iterator[np.ndarray]:
    """The calibration inputs: the sharp images of synthetic pairs ``0 .. count - 1`` of set ``seed``.

    Rendered one at a time (at 1024 x 1536 a pair takes seconds and 18 MiB as float32), so the
    set never sits in memory at once.

    Shape:
        yields ``(1, height, width, 3)`` float32 NHWC in the model's ``value_range``.

    Raises:
        ValueError: ``count`` < 1.
    """
    from bokeh.data.synthetic import make_pair

    if count < 1:
        raise ValueError(f"the int8 calibration needs at least one image, got count={count}")
    for index in range(count):
        sharp = make_pair(index, seed=seed, size=(height, width)).sharp  # (H, W, 3) uint8
        yield to_model_range(sharp.astype(np.float32) / 255.0, value_range)[None].astype(np.float32)


def configure_int8(converter, images) -> None:
    """Set a ``tf.lite.TFLiteConverter`` up for the scheme of this module (see its docstring).

    Args:
        converter: a TFLiteConverter (any ``from_*`` constructor).
        images: a callable returning an iterable of NHWC float32 inputs, called by the converter
            (e.g. ``lambda: representative_images(h, w)``).
    """
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image] for image in images())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
