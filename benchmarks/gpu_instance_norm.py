"""The two instance-norm forms on LiteRT's GPU accelerator at the deployed size: fully accelerated? how close to torch?

``flock /tmp/bokeh-heavy.lock python benchmarks/gpu_instance_norm.py [--ckpt model.ckpt] [--size 1024x1536]``

For each form (``pool``: the default export, AVERAGE_POOL_2D; ``plain``: ``export.instance_norm=plain``,
MEAN) it runs the whole export, ``python -m bokeh.export ... verify.gpu_accelerator=required``, in a
fresh process (each peaks at about 13 GB and takes minutes at 1024 x 1536 on 2 cores), then reads
the reports and prints one table: per form, file (float32 / float16 weights) and GPU arithmetic
(fp16, LiteRT's default; fp32, ``GpuOptions(enforce_f32=True)``) whether the model compiled for
the GPU alone (fully accelerated) and its max abs error against the checkpoint in torch on the
photo and the seeded random image ([-1, 1] scale). It also prints:

* the activations the instance norms see (torch, the photo): per-channel variance range and the
  largest |x - mean|, to show the checkpoint's magnitudes; fp16's limits are 6.1e-5 (smallest
  normal: 1e-5 itself is subnormal) and 65504 (a squared deviation above 256^2 overflows);
* how many ``ADD(variance, constant) -> RSQRT`` the float32 file holds: the pattern of TensorFlow
  issue #67216 (ADD(x, 1e-5) severely wrong on the v2 GPU delegate of a Snapdragon 8 Gen 2).

The bar (issue 13): pool form, both files fully accelerated, fp16 error <= 2e-2 and fp32 error of
the float32 file <= 1e-4; exit status 1 when it is not met. Without ``--ckpt`` it writes a Glass-Net
16/32/9 with He-scaled random weights (:func:`bokeh.models.init.trained_like`: activations of a
trained network's magnitude, output spanning most of [-1, 1]) to ``<out>/glassnet_16_32_9.ckpt``.
GPU times on a software adapter (lavapipe) are labelled "(sw)": they say nothing about a phone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from bokeh.checkpoint import load_generator, save_generator
from bokeh.export.pipeline import parse_size, variant_dir
from bokeh.export.verify import sample_images
from bokeh.models.glassnet import GlassNet
from bokeh.models.init import trained_like

FORMS = ("pool", "plain")
RUNS = (("gpu", "fp16"), ("gpu_f32", "fp32"))
BAR = {"gpu": 2e-2, "gpu_f32": 1e-4}
FP16_SMALLEST_NORMAL, FP16_MAX = 6.1e-5, 65504.0


def default_checkpoint(path: Path, seed: int) -> Path:
    """Glass-Net 16/32/9 with He-scaled random weights, saved where ``bokeh.export`` reads it."""
    kwargs = {"width1": 16, "width2": 32, "blocks": 9}
    return save_generator(path, trained_like(GlassNet(**kwargs), seed), kwargs)


def instance_norm_inputs(checkpoint: Path, height: int, width: int) -> dict[str, float]:
    """What every ``nn.InstanceNorm2d`` of the checkpoint's generator sees on the photo (torch, fp32)."""
    generator = load_generator(checkpoint)
    stats = {"min_channel_var": float("inf"), "max_channel_var": 0.0, "max_abs_deviation": 0.0, "norms": 0}

    def record(_module, inputs, _output):
        x = inputs[0].double()
        deviation = x - x.mean(dim=(2, 3), keepdim=True)
        variance = deviation.pow(2).mean(dim=(2, 3))
        stats["min_channel_var"] = min(stats["min_channel_var"], float(variance.min()))
        stats["max_channel_var"] = max(stats["max_channel_var"], float(variance.max()))
        stats["max_abs_deviation"] = max(stats["max_abs_deviation"], float(deviation.abs().max()))
        stats["norms"] += 1

    for module in generator.modules():
        if isinstance(module, nn.InstanceNorm2d):
            module.register_forward_hook(record)
    with torch.inference_mode():
        generator(torch.from_numpy(sample_images(height, width, "signed")["photo"]))
    return stats


def epsilon_adds(path: Path) -> int:
    """ADD ops of a runtime tensor and a one-element constant whose output feeds an RSQRT."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(path.read_bytes(), 0))
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    graph = model.subgraphs[0]

    def op_name(op) -> str:
        code = model.operatorCodes[op.opcodeIndex]
        return names[max(code.builtinCode, code.deprecatedBuiltinCode)]

    rsqrt_inputs = {i for op in graph.operators if op_name(op) == "RSQRT" for i in op.inputs}
    count = 0
    for op in graph.operators:
        constants = [i for i in op.inputs if model.buffers[graph.tensors[i].buffer].data is not None]
        scalar = [i for i in constants if int(np.prod(np.asarray(graph.tensors[i].shape, np.int64))) == 1]
        count += op_name(op) == "ADD" and len(scalar) == 1 and op.outputs[0] in rsqrt_inputs
    return count


def export(checkpoint: Path, out: Path, size: str, form: str) -> dict:
    """``python -m bokeh.export`` for one form in a fresh process; its report (passed or failed)."""
    command = [sys.executable, "-m", "bokeh.export", f"ckpt={checkpoint}", f"out={out}", f"size={size}",
               f"export.instance_norm={form}", "verify.gpu_accelerator=required",
               "verify.tf_analyzer=false", "verify.latency_repeats=1"]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "160"})
    folder = variant_dir(out, form, "signed")
    report_path = folder / "report.json" if result.returncode == 0 else folder / "failed" / "report.json"
    if not report_path.is_file():
        raise RuntimeError(f"{' '.join(command)} wrote no report (exit {result.returncode}):\n{result.stderr[-3000:]}")
    report = json.loads(report_path.read_text())
    report["_seconds"], report["_folder"] = time.perf_counter() - start, str(report_path.parent)
    return report


def rows(form: str, report: dict) -> list[dict]:
    """One row per file and GPU arithmetic."""
    out = []
    for kind in ("float32", "float16"):
        name = f"tflite_{kind}"
        accelerated = report["checks"].get(f"{name}_gpu_fully_accelerated", {})
        for run, arithmetic in RUNS:
            errors = report["errors_vs_torch"].get(f"{name}_{run}", {})
            bar = BAR[run] if (run == "gpu" or kind == "float32") else None
            worst = max((e["max_abs"] for e in errors.values()), default=None)
            out.append({
                "form": form, "file": kind, "gpu_arithmetic": arithmetic,
                "fully_accelerated": accelerated.get("passed"), "detail": accelerated.get("detail", ""),
                "max_abs_photo": errors.get("photo", {}).get("max_abs"),
                "max_abs_random": errors.get("random", {}).get("max_abs"),
                "max_abs": worst, "bar": bar,
                "meets_bar": None if bar is None or worst is None else bool(accelerated.get("passed") and worst <= bar),
                "gpu_seconds": report["latency"].get(f"{name}_{run}", {}).get("median_s"),
                "cpu_xnnpack_max_abs": max((e["max_abs"] for e in report["errors_vs_torch"].get(name, {}).values()), default=None),
            })
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="a Lightning checkpoint (default: He-scaled random 16/32/9)")
    parser.add_argument("--size", default="1024x1536", help="HxW of the export (default 1024x1536)")
    parser.add_argument("--out", type=Path, default=Path("outputs/gpu_instance_norm"))
    parser.add_argument("--forms", default=",".join(FORMS), help="pool,plain")
    parser.add_argument("--seed", type=int, default=0, help="weights seed of the default checkpoint")
    args = parser.parse_args()
    height, width = parse_size(args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = args.ckpt or default_checkpoint(args.out / "glassnet_16_32_9.ckpt", args.seed)
    console = Console(width=160)
    activations = instance_norm_inputs(checkpoint, height, width)
    console.print(f"checkpoint {checkpoint}: {activations['norms']} instance norms see channel variances "
                  f"{activations['min_channel_var']:.3g} .. {activations['max_channel_var']:.3g} and |x - mean| up to "
                  f"{activations['max_abs_deviation']:.3g} on the photo (fp16: smallest normal {FP16_SMALLEST_NORMAL:g}, "
                  f"squares overflow above |x - mean| = 256)", highlight=False)
    summary = {"checkpoint": str(checkpoint), "size": [height, width], "activations": activations, "rows": [], "exports": {}}
    for form in args.forms.split(","):
        report = export(checkpoint, args.out, args.size, form)
        summary["rows"] += rows(form, report)
        float32 = Path(report["_folder"]) / "bokeh_float32.tflite"
        summary["exports"][form] = {
            "passed": report["passed"], "failed_checks": report["failed_checks"], "seconds": report["_seconds"],
            "folder": report["_folder"], "gpu_accelerator": report.get("gpu_accelerator"),
            "epsilon_adds_float32": epsilon_adds(float32) if float32.is_file() else None,
        }
    adapter = next((e["gpu_accelerator"] for e in summary["exports"].values() if e["gpu_accelerator"]), {}) or {}
    software = (adapter.get("adapter") or {}).get("software")
    table = Table(title=f"instance norm on LiteRT's GPU accelerator, {height}x{width}, vs torch ([-1, 1] scale)")
    for column in ("IN form", "file", "GPU math", "fully accel.", "max err photo", "max err random", "bar", "met",
                   "GPU s", "CPU XNNPACK err"):
        table.add_column(column, justify="left" if column in ("IN form", "file", "GPU math") else "right")

    def number(value, fmt=".1e"):
        return "-" if value is None else format(value, fmt)

    for row in summary["rows"]:
        seconds = number(row["gpu_seconds"], ".1f") + (" (sw)" if software and row["gpu_seconds"] else "")
        met = {None: "-", True: "yes", False: "[red]NO[/]"}[row["meets_bar"]]
        table.add_row(row["form"], row["file"], row["gpu_arithmetic"], {True: "yes", False: "[red]no[/]", None: "-"}[row["fully_accelerated"]],
                      number(row["max_abs_photo"]), number(row["max_abs_random"]), number(row["bar"], "g"), met,
                      seconds, number(row["cpu_xnnpack_max_abs"]))
    lines = [f"adapter: {adapter.get('adapter_text', adapter.get('reason', 'none'))}"]
    if software:
        lines.append("(sw): a software adapter's time (the GPU emulated on this CPU): nothing like a phone GPU's")
    lines += [f"{form}: ADD(variance, eps) -> RSQRT x{e['epsilon_adds_float32']} in the float32 file "
              f"(TensorFlow #67216's pattern); export {'passed' if e['passed'] else 'FAILED ' + ', '.join(e['failed_checks'])} "
              f"in {e['seconds']:.0f} s" for form, e in summary["exports"].items()]
    table.caption = "\n".join(lines)
    console.print(table)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    console.print(f"summary: {args.out / 'summary.json'}", highlight=False)
    pool = [row for row in summary["rows"] if row["form"] == "pool" and row["bar"] is not None]
    met = bool(pool) and all(row["meets_bar"] for row in pool)
    console.print("bar (pool form: fully accelerated, fp16 <= 2e-2, fp32 of the float32 file <= 1e-4): "
                  + ("met" if met else "[red]NOT met[/]" if pool else "pool form not run"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
