"""The short summary ``python -m bokeh.export`` prints (rich tables), built from a report dict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

ROWS = (  # (key in errors / latency / ops, file name, label)
    ("torch", None, "torch"),  # errors: the pool form's; latency: the fast path (bokeh.inference) in fp32
    ("torch_bf16", None, "torch bf16"),  # latency only, where the CPU computes bf16 natively
    ("onnxruntime", "bokeh.onnx", "ONNX Runtime"),
    ("tflite_float32", "bokeh_float32.tflite", "TFLite fp32"),
    ("tflite_float16", "bokeh_float16.tflite", "TFLite fp16"),
    ("tflite_float32_gpu", None, "TFLite fp32, GPU fp16"),
    ("tflite_float32_gpu_f32", None, "TFLite fp32, GPU fp32"),
    ("tflite_float16_gpu", None, "TFLite fp16, GPU fp16"),
    ("tflite_float16_gpu_f32", None, "TFLite fp16, GPU fp32"),
    ("tflite_int8", "bokeh_int8.tflite", "TFLite int8"),
)


def _worst(errors: dict[str, dict[str, float]] | None) -> tuple[str, str]:
    """Largest max-abs error and lowest PSNR over the sample images."""
    if not errors:
        return "-", "-"
    max_abs = max(e["max_abs"] for e in errors.values())
    psnrs = [e["psnr_db"] for e in errors.values() if e["psnr_db"] is not None]  # None: identical
    return f"{max_abs:.1e}", f"{min(psnrs):.1f}" if psnrs else "inf"


def _ops(ops: dict[str, int] | None) -> str:
    if not ops:
        return "-"
    return f"{sum(ops.values())} ({ops.get('AVERAGE_POOL_2D', 0)}/{ops.get('MEAN', 0)})"


def runtime_table(report: dict[str, Any]) -> Table:
    """One row per runtime: file size, op counts, errors vs torch (photo / random), latency."""
    settings = report["settings"]
    height, width = settings["size"]
    table = Table(title=f"{height}x{width}, IN {settings['instance_norm']}, range {settings['value_range']}, "
                        f"{settings['threads']} threads on this CPU"
                        + (f"; inputs {', '.join(settings['inputs'])}, errors at the defaults and with "
                           f"{settings.get('controls_checked')}" if len(settings.get("inputs", [])) > 1 else ""))
    for column in ("runtime", "MB", "ops (pool/mean)", "max err", "PSNR dB", "median s"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    gpu = report.get("gpu_accelerator") or {}
    software = (gpu.get("adapter") or {}).get("software")
    for key, file, label in ROWS:
        # torch's error is the exported (pool-form) module's; its latency is the fast path's
        errors = report["errors_vs_torch"].get("torch_pool_form" if key == "torch" else key)
        latency = report["latency"].get(key)
        size = report["files_bytes"].get(file) if file else None
        if not (errors or size or latency):
            continue
        errors_text, psnr_text = _worst(errors)
        if key == "torch" and not errors:
            errors_text = psnr_text = "reference"
        seconds = f"{latency['median_s']:.2f}" if latency else "-"
        if latency and "_gpu" in key and software:
            seconds += " (sw)"
        table.add_row(label, f"{size / 2**20:.1f}" if size else "-", _ops(report["tflite_ops"].get(key)),
                      errors_text, psnr_text, seconds)
    lines = ["vs the checkpoint in torch, [-1, 1] scale, worst of photo and random image; torch latency: "
             "bokeh.inference's fast path (what bokeh.render runs)"]
    if gpu.get("status") == "ran":
        lines.append(f"GPU rows: LiteRT's GPU accelerator alone on {gpu['adapter_text']}")
        if software:
            lines.append("(sw): a software adapter's time (GPU emulated on the CPU), nothing like a phone GPU's")
        if gpu.get("timed_out"):
            lines.append(f"GPU runs NOT RUN (LiteRT stopped waiting after 120 s): {', '.join(gpu['timed_out'])}")
    elif gpu.get("status") == "not run":
        lines.append(f"GPU accelerator NOT RUN: {gpu['reason']}")
    table.caption = "\n".join(lines)
    return table


def checks_table(report: dict[str, Any]) -> Table:
    """Every check with its verdict, then TensorFlow's analyzer verdict (labelled: not a check)."""
    title = "checks: all required passed" if report["passed"] else f"checks: FAILED {', '.join(report['failed_checks'])}"
    table = Table(title=title)
    table.add_column("check")
    table.add_column("verdict")
    table.add_column("detail", overflow="fold")
    for name, check in report["checks"].items():
        if not check.get("ran", True):
            verdict = "[red]NOT RUN, required[/]" if check["required"] else "[yellow]not run[/]"
        elif check["passed"]:
            verdict = "[green]pass[/]"
        else:
            verdict = "[red]FAIL[/]" if check["required"] else "[yellow]fail, not required[/]"
        table.add_row(name, verdict, check["detail"])
    for name, verdict in report["tf_analyzer_not_the_check"].items():
        table.add_row(f"{name}: TF analyzer", "[dim]not a check[/]", verdict)
    timings = report["timings_s"]
    if timings:
        table.caption = "seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    return table


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(runtime_table(report))
    console.print(checks_table(report))
    console.print(f"report: {report['out_dir']}/report.json")
