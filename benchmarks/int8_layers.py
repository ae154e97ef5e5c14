"""Where int8 loses accuracy in Glass-Net, and what keeping chosen layers in float costs and gives.

    python benchmarks/int8_layers.py [ckpt=<.ckpt>] [size=256x384] [calibration=16] [threads=2] [runs=3]

Converts the checkpoint (default: random Glass-Net 16/32/9) once at ``size`` (per-layer error does
not depend much on the size; 256 x 384 keeps TensorFlow's debugger, which holds every tensor of
both models, within a few GB) and prints:

1. per quantized layer (TensorFlow's ``QuantizationDebugger`` on the calibration images): the RMS
   error of the int8 tensor against the float model's, in quantization steps (``rmse / scale``;
   about 0.29 is plain rounding), grouped by Glass-Net part (stage, encoder / trunk / decoder) and
   by op, the worst layers by name;
2. one row per quantization variant, interleaved in one process (labelled a busy-machine ratio
   when other jobs run): the float32 model, full int8 (``bokeh.export.quantize``), full int8 with
   the instance-norm and residual-add ops kept float, full int8 with per-tensor weight scales,
   dynamic-range (int8 weights, float activations) and int16 activations with int8 weights; each with its size, XNNPACK
   latency over float32's, and PSNR / max abs error against torch on scikit-image's photos.
"""

from __future__ import annotations

import torch._dynamo  # noqa: F401, I001  (import order: before TensorFlow, TOOLCHAIN.md)

import argparse
import csv
import io
import json
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from bokeh.checkpoint import load_generator
from bokeh.export import onnx as onnx_export
from bokeh.export import quantize, tflite, verify
from bokeh.models.glassnet import GlassNet
from bokeh.runtimes import LiteRTCpuRuntime

NORM_OPS = ("AVERAGE_POOL_2D", "SUB", "MUL", "RSQRT", "ADD")  # the pool-form instance norm (and residual ADD)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="int8_layers.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="")
    parser.add_argument("--size", default="256x384")
    parser.add_argument("--calibration", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args([arg if arg.startswith("-") else f"--{arg}" for arg in argv])
    args.hw = tuple(int(side) for side in args.size.lower().split("x"))
    return args


def keras_model(generator, height: int, width: int, work: Path):
    """The checkpoint's Glass-Net (pool-form IN) as onnx2tf's Keras model, as the export builds it."""
    module = onnx_export.deployable(generator, height, width, "pool", "signed")
    example = torch.from_numpy(verify.sample_images(height, width, "signed")["random"])
    onnx_path = onnx_export.export_onnx(module, example, work / "bokeh.onnx")
    replacements = work / "replacements.json"
    replacements.write_text(json.dumps(tflite.residual_add_replacements(onnx_path)))
    return tflite.onnx_to_keras(onnx_path, work / "onnx2tf", verify.calibration_images("signed"), replacements)


def converter_for(model):
    """A TFLiteConverter on the model's concrete function (signature ``image -> bokeh``, as the export)."""
    import tensorflow as tf

    (keras_input,) = model.inputs
    spec = tf.TensorSpec(keras_input.shape, keras_input.dtype, name=onnx_export.INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(image):
        return {onnx_export.OUTPUT_NAME: model(image)}

    holder = tf.Module()
    holder.serve = serve
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def where(tensor_name: str, blocks: int) -> str:
    """Which instance norm an onnx2tf tensor belongs to, when its name says (``tf.math.pow_<n>``: the
    n-th norm's ``(var + eps) ** -0.5``, in graph order: 2 per residual block, stage 1's first)."""
    match = re.search(r"tf\.math\.pow_(\d+)/", tensor_name + "/") or re.search(r"tf\.math\.pow/", tensor_name)
    if not match:
        return ""
    index = int(match.group(1)) if match.groups() else 0
    stage, within = divmod(index, 2 * blocks)
    return f"instance norm {index}: stage {stage + 1}, residual block {within // 2 + 1}, norm {within % 2 + 1}"


def layer_statistics(model, images: list[np.ndarray]) -> list[dict]:
    """QuantizationDebugger's per-layer statistics of full int8 on ``images``."""
    import tensorflow as tf

    converter = converter_for(model)
    quantize.configure_int8(converter, lambda: iter(images))
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: ([x] for x in images))
    debugger.run()
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    return list(csv.DictReader(buffer))


def variants(model, images: list[np.ndarray], work: Path) -> dict[str, Path]:
    """The quantization variants of the module docstring, written to ``work``."""
    import tensorflow as tf

    def write(name: str, content: bytes) -> None:
        paths[name] = work / f"{name}.tflite"
        paths[name].write_bytes(content)

    paths: dict[str, Path] = {}
    write("float32", converter_for(model).convert())
    converter = converter_for(model)
    quantize.configure_int8(converter, lambda: iter(images))
    write("int8 (full)", converter.convert())
    for label, options in (("int8, IN ops float", {"denylisted_ops": list(NORM_OPS)}),):
        converter = converter_for(model)
        quantize.configure_int8(converter, lambda: iter(images))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
        debug_options = tf.lite.experimental.QuantizationDebugOptions(**options)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=lambda: ([x] for x in images[:1]),
                                                             debug_options=debug_options)
        write(label, debugger.get_nondebug_quantized_model())
    converter = converter_for(model)
    quantize.configure_int8(converter, lambda: iter(images))
    converter._experimental_disable_per_channel = True  # what onnx2tf's -qt per-tensor sets
    write("int8, per-tensor weights", converter.convert())
    converter = converter_for(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    write("dynamic range (int8 weights)", converter.convert())
    converter = converter_for(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    write("int16 activations, int8 weights", converter.convert())
    return paths


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    height, width = args.hw
    if args.ckpt:
        generator = load_generator(args.ckpt)
    else:
        torch.manual_seed(0)
        generator = GlassNet().eval()
    images = list(quantize.representative_images(height, width, "signed", args.calibration))
    photos = {name: verify.photo(height, width, name).transpose(2, 0, 1)[None] * 2 - 1 for name in verify.PHOTOS}
    with torch.no_grad():
        deployable = onnx_export.Deployable(generator).eval()
        reference = {name: deployable(torch.from_numpy(x)).numpy() for name, x in photos.items()}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        model = keras_model(generator, height, width, work)

        rows = layer_statistics(model, images)
        print(f"per-layer int8 error on {len(images)} calibration images ({height} x {width}, "
              f"{'ckpt ' + args.ckpt if args.ckpt else 'random weights'}): RMS error in quantization steps")
        groups: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            scale = float(row["scale"]) if row["scale"] else 0.0
            row["steps"] = (float(row["mean_squared_error"]) ** 0.5 / scale) if scale > 0 else float("nan")
            groups[row["op_name"]].append(row["steps"])
        for op, steps in sorted(groups.items(), key=lambda item: -np.nanmax(item[1])):
            print(f"  {op:20s} {len(steps):3d} tensors  median {np.nanmedian(steps):6.2f}  max {np.nanmax(steps):6.2f}")
        print("  worst 10 tensors:")
        blocks = generator.residual_stage.trunk.__len__()
        for row in sorted(rows, key=lambda r: -np.nan_to_num(r["steps"]))[:10]:
            print(f"    {row['steps']:6.2f} steps  {row['op_name']:16s} {row['tensor_name'][:60]:60s} "
                  f"{where(row['tensor_name'], blocks)}")

        paths = variants(model, images, work)
        runtimes = {name: LiteRTCpuRuntime(path, args.threads) for name, path in paths.items()}
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        photo = photos["astronaut"].astype(np.float32)
        for name, runtime in runtimes.items():
            if not name.startswith("int16"):
                runtime.run(photo)  # warm-up
        for run in range(args.runs):  # interleaved: every variant sees the same machine
            for name, runtime in runtimes.items():
                if name.startswith("int16") and run:  # reference kernels, no XNNPACK: once is enough
                    continue
                start = time.perf_counter()
                runtime.run(photo)
                times[name].append(time.perf_counter() - start)
        base = statistics.median(times["float32"])
        print(f"\nvariants at {height} x {width}, {args.threads} threads, XNNPACK, {args.runs} interleaved runs "
              f"(ratios; absolute seconds depend on the machine's load)")
        print(f"  {'variant':34s} {'MB':>6s} {'x float32':>9s} {'PSNR dB':>8s} {'max abs':>8s}  (worst of {', '.join(photos)})")
        for name, runtime in runtimes.items():
            results = [verify.parity(reference[p], runtime.run(x.astype(np.float32)), 2.0) for p, x in photos.items()]
            psnr, max_abs = min(r["psnr_db"] for r in results), max(r["max_abs"] for r in results)
            print(f"  {name:34s} {paths[name].stat().st_size / 2**20:6.1f} {statistics.median(times[name]) / base:9.2f} "
                  f"{psnr:8.1f} {max_abs:8.1e}")


if __name__ == "__main__":
    main(sys.argv[1:])
