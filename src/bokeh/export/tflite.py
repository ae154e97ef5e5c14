"""ONNX -> TFLite with onnx2tf (LiteRT runs the result: :mod:`bokeh.runtimes`).

:func:`convert` runs onnx2tf 1.29.24 in this process (see the import below) with
``disable_model_save=True``: onnx2tf builds the Keras model (NCHW -> NHWC, its per-op accuracy
checks on real calibration images included) and returns it, and the TFLite files are written here
from a concrete function. onnx2tf's own TFLite step goes through three SavedModel saves of the Keras
model, whose serialisation copies every weight as nested Python lists: 550 of 580 s for Glass-Net
16/32 at 256 x 384 in a profile on this machine, against about 15 s for the concrete-function
route. Only TFLite builtin ops are allowed (no SELECT_TF_OPS): a TensorFlow op without a builtin
fails the conversion instead of sneaking in as a Flex op.

Silent wrong results (TOOLCHAIN.md) and their fix: onnx2tf 1.29.24's Add has a "rescue guard" that
transposes an Add of two 4D tensors to NCHW whenever the NHWC result's shape differs from the ONNX
(NCHW) one, which is every residual Add of Glass-Net; downstream ops then see a mix of NCHW and
NHWC tensors, and Concat picks the transposition for the NHWC input by shape alone. When the
channel count equals the feature map's height or width (8c = H/8 or W/8: c = 16 at H = 1024, c = 24
at W = 1536, c = 4 or 6 at 256 x 384) two transpositions fit the shape, it takes the wrong one and
the TFLite output is garbage (max error 1.08 at 1024 x 1536 for 16/32) without any error.
:func:`residual_add_replacements` writes an onnx2tf parameter-replacement file that transposes each
such Add's output back to NHWC, so every tensor stays NHWC and Concat has nothing to guess (it also
removes the 6 TRANSPOSE ops onnx2tf otherwise adds around the trunk concats).

Traps handled here (found by this project's toolchain checks): onnx2tf downloads calibration images for 3-channel
4D inputs (no network here): :func:`convert` hands it ``calibration`` instead; onnx2tf rewrites the
input ``.onnx`` in place: a copy is converted; onnxsim is switched off explicitly (the dynamo
exporter's graph needs no simplifying), so the result no longer depends on what is on ``PATH``.
"""

from __future__ import annotations

# Import order: triton (pulled in by torch._dynamo) crashes the process when it is imported after
# TensorFlow (TOOLCHAIN.md). Importing it here, before onnx2tf/TensorFlow, makes the conversion
# safe to run in the same process as torch.
import torch._dynamo  # noqa: F401, I001

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bokeh.export.onnx import INPUT_NAME, OUTPUT_NAME
from bokeh.export.quantize import configure_int8

CALIBRATION_SHAPE = (20, 128, 128, 3)  # what onnx2tf's download_test_image_data() returns (NHWC)


#: The TFLite files :func:`convert` can write, ``<stem>_<kind>.tflite``.
KINDS = ("float32", "float16", "int8")


@dataclass(frozen=True)
class Converted:
    """Paths of the converted models and the seconds each step took."""

    float32: Path
    float16: Path | None
    onnx2tf_s: float
    tflite_s: float
    int8: Path | None = None
    int8_s: float = 0.0  # of tflite_s: the int8 conversion, calibration included


def residual_add_replacements(onnx_path: str | Path) -> dict:
    """onnx2tf parameter replacements that keep every 4D + 4D Add's output NHWC (module docstring).

    One entry per Add whose two inputs are computed (not constant) 4D tensors of the same shape
    ``(N, C, H, W)``: Glass-Net's residual additions. Skipped when C == H == W, where onnx2tf sees no
    shape mismatch and does not transpose (a post-transpose would then be wrong).
    """
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_path)))
    graph = model.graph
    constants = {init.name for init in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    shapes = {
        info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in [*graph.value_info, *graph.input, *graph.output]
    }
    operations = []
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2 or set(node.input) & constants:
            continue
        first, second = (shapes.get(name, []) for name in node.input)
        if len(first) != 4 or first != second or first[1] == first[2] == first[3]:
            continue
        operations.append({
            "op_name": node.name,
            "param_target": "outputs",
            "param_name": node.output[0],
            "post_process_transpose_perm": [0, 2, 3, 1],  # NCHW -> NHWC
        })
    return {"format_version": 1, "operations": operations}


@contextlib.contextmanager
def _offline_calibration(calibration: np.ndarray) -> Iterator[None]:
    """Make onnx2tf use ``calibration`` instead of downloading its sample images."""
    import onnx2tf.onnx2tf as onnx2tf_main

    if calibration.shape != CALIBRATION_SHAPE or calibration.dtype != np.float32:
        raise ValueError(
            f"onnx2tf calibration images must be float32 {CALIBRATION_SHAPE}, "
            f"got {calibration.dtype} {calibration.shape}"
        )
    if not hasattr(onnx2tf_main, "download_test_image_data"):
        raise RuntimeError(
            "onnx2tf.onnx2tf.download_test_image_data is gone: this onnx2tf is not the pinned 1.29.24, "
            "and it may try to download calibration data; install the version in pyproject.toml"
        )
    original = onnx2tf_main.download_test_image_data
    onnx2tf_main.download_test_image_data = lambda: calibration.copy()
    try:
        yield
    finally:
        onnx2tf_main.download_test_image_data = original


def onnx_to_keras(onnx_path: Path, work_dir: Path, calibration: np.ndarray, replacement_json: Path):
    """The tf_keras model onnx2tf builds from a copy of ``onnx_path`` (NHWC input and output)."""
    import onnx2tf

    work_dir.mkdir(parents=True, exist_ok=True)
    copy = work_dir / onnx_path.name  # onnx2tf rewrites its input file in place
    shutil.copyfile(onnx_path, copy)
    with _offline_calibration(calibration):
        model = onnx2tf.convert(
            input_onnx_file_path=str(copy),
            output_folder_path=str(work_dir),
            disable_model_save=True,  # return the Keras model, write nothing (see module docstring)
            not_use_onnxsim=True,
            keep_ncw_or_nchw_or_ncdhw_input_names=None,  # NHWC input, as TFLite users expect
            optimization_for_gpu_delegate=True,
            param_replacement_file=str(replacement_json),
            disable_strict_mode=False,  # keep onnx2tf's per-op accuracy corrections
            non_verbose=True,
        )
    if model is None:
        raise RuntimeError(f"onnx2tf returned no model for {onnx_path}; rerun with non_verbose=False to see why")
    return model


def keras_to_tflite(model, kind: str = "float32", representative: Callable[[], Iterable[np.ndarray]] | None = None,
                    output_names: Iterable[str] = (OUTPUT_NAME,)) -> bytes:
    """A TFLite flatbuffer with one ``serving_default`` signature ``image [, focus][, aperture][, subject] -> bokeh
    [, matte, background]`` (the inputs named as in the ONNX model: onnx2tf keeps them; a model with
    one input has ``image``; the outputs named ``output_names``, the ONNX model's in its order).

    Args:
        kind: ``float32``; ``float16``: fp16 weights behind DEQUANTIZE ops, float32 input/output and
            arithmetic on CPU; ``int8``: full-integer quantization (:mod:`bokeh.export.quantize`),
            float32 input/output.
        representative: ``int8`` only: returns the calibration inputs, NHWC float32 ``(1, H, W, 3)``
            (models with one input: :func:`bokeh.export.pipeline.run` refuses int8 for a model with controls).

    Raises:
        ValueError: unknown ``kind``, or ``int8`` without ``representative``.
    """
    import tensorflow as tf

    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}: expected one of {KINDS}")
    if kind == "int8" and representative is None:
        raise ValueError("an int8 model needs representative (calibration) images")

    names = [keras_input.name.split(":")[0] for keras_input in model.inputs]  # the ONNX input names
    if len(names) == 1:
        names = [INPUT_NAME]
    specs = [tf.TensorSpec(keras_input.shape, keras_input.dtype, name=name) for keras_input, name in zip(model.inputs, names)]

    output_names = list(output_names)
    if len(output_names) != len(model.outputs):
        raise ValueError(f"the Keras model has {len(model.outputs)} output(s), the ONNX model {output_names}")

    @tf.function(input_signature=specs)
    def serve(*inputs):
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(output_names, outputs))  # onnx2tf keeps the ONNX output order

    # A light trackable (not the Keras model, whose SavedModel serialisation is the slow part)
    # makes the converter keep the signature, so LiteRT's signature runner knows the names.
    holder = tf.Module()
    holder.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if kind == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif kind == "int8":
        configure_int8(converter, representative)
    return name_io_tensors(converter.convert(), names, output_names)


def name_io_tensors(flatbuffer: bytes, inputs: Sequence[str], outputs: Sequence[str]) -> bytes:
    """The model with its input and output tensors named as its signature names them, in the ONNX
    model's order (``inputs``, ``outputs``), in the subgraph and in the signature.

    TensorFlow's converter names them after the concrete function (``serving_default_image:0``,
    ``PartitionedCall:0..2``, outputs in the order of their sorted names), so an app reading tensors
    by index or name without the signature would see those. onnx2tf does the same rewrite
    (``copy_onnx_input_output_names_to_tflite``, with flatc) on the files it writes itself; ours come
    from :func:`keras_to_tflite`, so it is done here with the schema bindings that ship with LiteRT.

    Raises:
        ValueError: the model does not have one signature whose names are exactly ``inputs`` and ``outputs``.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    if len(model.signatureDefs or []) != 1:
        raise ValueError(f"expected one signature in the converted model, found {len(model.signatureDefs or [])}")
    signature = model.signatureDefs[0]
    subgraph = model.subgraphs[signature.subgraphIndex]
    for kind, order in (("inputs", list(inputs)), ("outputs", list(outputs))):
        maps = {_text(tensor_map.name): tensor_map for tensor_map in getattr(signature, kind)}
        if sorted(maps) != sorted(order):
            raise ValueError(f"the converted model's signature {kind} are {sorted(maps)}, the ONNX model's {order}")
        ordered = [maps[name] for name in order]
        for tensor_map in ordered:
            subgraph.tensors[tensor_map.tensorIndex].name = tensor_map.name
        setattr(signature, kind, ordered)
        setattr(subgraph, kind, [tensor_map.tensorIndex for tensor_map in ordered])
    builder = flatbuffers.Builder(len(flatbuffer) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _text(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name


def convert(
    onnx_path: str | Path,
    out_dir: str | Path,
    calibration: np.ndarray,
    stem: str = "bokeh",
    float16: bool = True,
    int8_images: Callable[[], Iterable[np.ndarray]] | None = None,
) -> Converted:
    """Convert ``onnx_path`` to ``<stem>_float32.tflite`` (and ``_float16``, ``_int8``) in ``out_dir``.

    Also writes ``onnx2tf_replacements.json``, the parameter-replacement file it applied.

    Args:
        calibration: float32 ``(20, 128, 128, 3)`` images in the model's input range; onnx2tf
            resizes them to the input size for its accuracy checks during conversion.
        int8_images: also write ``<stem>_int8.tflite``, calibrated on what this returns (NHWC
            float32 ``(1, H, W, 3)`` at the model's size, e.g. :func:`bokeh.export.quantize.representative_images`).
    """
    import onnx

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    output_names = [output.name for output in onnx.load(str(onnx_path), load_external_data=False).graph.output]
    replacement_json = out_dir / "onnx2tf_replacements.json"
    replacement_json.write_text(json.dumps(residual_add_replacements(onnx_path), indent=1) + "\n")
    start = time.perf_counter()
    model = onnx_to_keras(onnx_path, out_dir / "onnx2tf", calibration, replacement_json)
    onnx2tf_s = time.perf_counter() - start
    start = time.perf_counter()
    paths, int8_s = {}, 0.0
    kinds = ("float32",) + (("float16",) if float16 else ()) + (("int8",) if int8_images is not None else ())
    for kind in kinds:
        kind_start = time.perf_counter()
        paths[kind] = out_dir / f"{stem}_{kind}.tflite"
        paths[kind].write_bytes(keras_to_tflite(model, kind, int8_images, output_names))
        if kind == "int8":
            int8_s = time.perf_counter() - kind_start
    shutil.rmtree(out_dir / "onnx2tf", ignore_errors=True)
    return Converted(paths["float32"], paths.get("float16"), onnx2tf_s, time.perf_counter() - start,
                     paths.get("int8"), int8_s)
