"""The TFLite ops this project accepts in a model meant for the TFLite GPU delegate.

Source: ``CheckGpuDelegateCompatibility(const OpSignature&)`` in TensorFlow's
``tensorflow/lite/tools/versioning/gpu_compatibility.cc`` (commit 057f8c812fb0 of
github.com/tensorflow/tensorflow). That switch is the GPU delegate's own list of the builtin ops it
implements; its comment says the checks "used to be in TFLiteOperationParser:IsSupported() of
tensorflow/lite/delegates/gpu/common/model_builder.cc but they're all migrated into here". An op
outside that switch is refused with "Not supported op"; the ops inside it can still be refused for
their parameters (e.g. ADD_N with more than 2 inputs), which no op-name list can see.

Left out on purpose, although that switch lists them:

* every reduction (MEAN, SUM, REDUCE_MAX, REDUCE_MIN, REDUCE_PROD, CUMSUM): the point of BGGAN's
  instance-norm rewrite (SPEC.md) is that the phone GPUs the paper measured ran no MEAN (the model
  with plain IN "did not run at all on the Snapdragon chips"); the delegate's reduction kernels are
  also restricted to constant int32 axes. A model for this project must hold none of them.
* CUSTOM: the delegate knows a handful of MediaPipe custom ops by name; Glass-Net needs none, and
  Flex (TensorFlow fallback) ops are CUSTOM ops the delegate never runs.

DEQUANTIZE stays: float16 ``.tflite`` files keep fp16 weights behind DEQUANTIZE ops, which the
delegate folds away (``BuildModelEnforceIO`` in model_builder.cc skips "Fp16 Dequantize nodes").
"""

from __future__ import annotations

# Builtin op names as in the TFLite schema's BuiltinOperator enum.
GPU_DELEGATE_OPS: frozenset[str] = frozenset({
    # convolution, pooling, matrix products
    "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL",
    "AVERAGE_POOL_2D", "MAX_POOL_2D",
    # activations
    "RELU", "RELU6", "RELU_N1_TO_1", "LEAKY_RELU", "PRELU", "HARD_SWISH", "LOGISTIC", "TANH", "ELU",
    "GELU", "SOFTMAX",
    # one-input elementwise
    "ABS", "COS", "EXP", "FLOOR", "LOG", "NEG", "RSQRT", "SIGN", "SIN", "SQRT", "SQUARE",
    # two-input elementwise
    "ADD", "ADD_N", "SUB", "MUL", "DIV", "POW", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE",
    "FLOOR_DIV", "FLOOR_MOD", "EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS",
    "LESS_EQUAL", "LOGICAL_AND", "SELECT", "SELECT_V2",
    # layout and data movement
    "CONCATENATION", "RESHAPE", "TRANSPOSE", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "PACK",
    "TILE", "GATHER", "ONE_HOT", "PAD", "PADV2", "MIRROR_PAD", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
    "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "CAST", "DENSIFY",
    # quantization (DEQUANTIZE: fp16 weights)
    "DEQUANTIZE", "QUANTIZE",
    # recurrent
    "LSTM",
})

# Listed by the delegate but excluded here (see the module docstring).
EXCLUDED_REDUCTIONS: frozenset[str] = frozenset({
    "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "CUMSUM",
})

# TFLite reductions the delegate does not list at all; named so error messages can say "reduction".
OTHER_REDUCTIONS: frozenset[str] = frozenset({"REDUCE_ANY", "REDUCE_ALL", "ARG_MAX", "ARG_MIN"})

REDUCTIONS: frozenset[str] = EXCLUDED_REDUCTIONS | OTHER_REDUCTIONS

assert not GPU_DELEGATE_OPS & REDUCTIONS, "the allow-list must hold no reduction"
