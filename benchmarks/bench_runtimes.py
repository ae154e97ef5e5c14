"""One timing table for every way this project runs Glass-Net (``make bench``).

    python benchmarks/bench_runtimes.py [ckpt=<.ckpt>] [size=1024x1536] [threads=2] [runs=5]
        [bf16=auto|force|off] [compiled=false] [gpu=auto|off] [calibration=16] [out=outputs/bench]

For one checkpoint and one input size (default: Glass-Net 16/32/9 with random weights at
1024 x 1536, the paper's size; ``ckpt=`` for trained weights, which the quality columns need) it
prints one row per runtime, each built through :mod:`bokeh.runtimes`:

* torch, the fast path of :mod:`bokeh.inference` (what ``python -m bokeh.render ckpt=x.ckpt``
  runs), in fp32, and in bf16 where the CPU computes bf16 natively (AMX / AVX512-BF16). Where it
  does not, bf16 is not timed unless ``bf16=force`` (then labelled "emulated, not native"), but
  its quality is still measured (emulated bf16 gives the same numbers, slowly). ``compiled=true``
  adds torch.compile rows (minutes of compiling first; see bokeh.inference).
* ONNX Runtime on ``bokeh.onnx``; LiteRT's interpreter (XNNPACK) on the float32, float16 and int8
  ``.tflite`` files; LiteRT's GPU accelerator on the float16 and int8 files when a Vulkan adapter
  is there (``gpu=auto``), labelled "software adapter" when that adapter is the CPU (lavapipe):
  such timings say nothing about a phone.

The exported files come from ``python -m bokeh.export ... export.int8.enabled=true`` run once per
checkpoint and size into ``out/<checkpoint>-<hash>-<H>x<W>/`` and reused afterwards (delete the
folder to export again). An export whose checks failed is still timed, from its ``failed/``
folder, and the failed checks are printed.

Columns: median and spread (min - max) of ``runs`` timed runs after one warm-up, on the astronaut
photo; ``x fp32``: median over torch fp32's median; peak memory: the process's resident-set
high-water mark during the warm-up and timed runs, minus its RSS before them (every row runs in a
fresh process, so one row's allocations cannot hide another's); PSNR (peak-to-peak 2, the [-1, 1]
scale) and max abs error against torch fp32 on three scikit-image photos (astronaut, coffee,
chelsea, scaled and centre-cropped to the size), the worst of the three. Then the bars of issue 14
with what was measured, and a JSON copy of everything beside the exported files.

Timings depend on what else runs: the load average is printed at start and end; on a shared CPU
compare rows of one run, not runs of different days.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from memory import reset_peak, rss_and_peak  # benchmarks/memory.py (scripts run from this folder)

REPO = Path(__file__).resolve().parents[1]
MiB = 1024**2
#: Bars of issue 14 (measured on 2 threads at 1024 x 1536, Glass-Net 16/32/9).
BAR_BF16_SECONDS, BAR_BF16_PSNR, BAR_INT8_RATIO, BAR_INT8_PSNR = 1.2, 45.0, 0.6, 38.0
DEFAULT_MODEL = {"width1": 16, "width2": 32, "blocks": 9}


# ----------------------------------------------------------------------------- arguments
def parse_args(argv: list[str]) -> argparse.Namespace:
    """``key=value`` arguments (``--key=value`` too)."""
    parser = argparse.ArgumentParser(prog="bench_runtimes.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", default="", help="training checkpoint (default: random Glass-Net 16/32/9)")
    parser.add_argument("--size", default="1024x1536", help="HxW, multiples of 8 (default 1024x1536)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of every runtime (default 2)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row after one warm-up (default 5)")
    parser.add_argument("--bf16", choices=("auto", "force", "off"), default="auto",
                        help="auto: time bf16 where native; force: time it anyway (emulated); off: skip it")
    parser.add_argument("--compiled", choices=("true", "false"), default="false", help="add torch.compile rows")
    parser.add_argument("--gpu", choices=("auto", "off"), default="auto", help="LiteRT GPU accelerator rows")
    parser.add_argument("--calibration", type=int, default=16, help="int8 calibration images (default 16)")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench"), help="where exports are kept")
    args = parser.parse_args([arg if arg.startswith("-") else f"--{arg}" for arg in argv])
    try:
        height, width = (int(side) for side in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"size={args.size!r}: expected HxW, e.g. 1024x1536")
    if height < 8 or width < 8 or height % 8 or width % 8:
        parser.error(f"size={args.size}: sides must be positive multiples of 8 (Glass-Net)")
    if args.threads < 1 or args.runs < 1 or args.calibration < 1:
        parser.error("threads, runs and calibration must be at least 1")
    from bokeh import pretrained

    if args.ckpt and not Path(args.ckpt).is_file() and not pretrained.is_name(args.ckpt):
        parser.error(f"ckpt={args.ckpt}: no such file (or shipped model: {', '.join(pretrained.names())})")
    args.hw = (height, width)
    return args


# ----------------------------------------------------------------------------- model files
def checkpoint_for(args: argparse.Namespace) -> Path:
    """``ckpt=`` (a shipped model's name is written out as a checkpoint once), or a random Glass-Net
    16/32/9 (seed 0, the network's own init) saved once under ``out``."""
    import torch

    from bokeh import pretrained
    from bokeh.checkpoint import save_generator
    from bokeh.models.glassnet import GlassNet

    if args.ckpt and pretrained.is_name(args.ckpt) and not Path(args.ckpt).exists():
        description = pretrained.meta(args.ckpt)
        path = Path(args.out) / f"{args.ckpt}-{description['sha256'][:10]}.ckpt"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_generator(path, pretrained.load(args.ckpt), description["model"])
        return path.resolve()
    if args.ckpt:
        return Path(args.ckpt).resolve()

    path = Path(args.out) / "random-16-32-9.ckpt"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        save_generator(path, GlassNet(**DEFAULT_MODEL), DEFAULT_MODEL)
    return path


def exported(ckpt: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    """The folder with this checkpoint's exported files at ``size`` (exported once) and its report."""
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:10]
    folder = Path(args.out) / f"{ckpt.stem}-{digest}-{args.size}"
    for candidate in (folder, folder / "failed"):
        report = candidate / "report.json"
        if report.is_file() and (candidate / "bokeh_int8.tflite").is_file():
            return candidate, json.loads(report.read_text())
    print(f"exporting {ckpt} at {args.size} into {folder} (once; minutes, ~13 GB peak at 1024 x 1536) ...", flush=True)
    command = [sys.executable, "-m", "bokeh.export", f"ckpt={ckpt}", f"out={folder}", f"size={args.size}",
               "export.int8.enabled=true", f"export.int8.calibration_count={args.calibration}",
               "verify.latency_repeats=1", "verify.tf_analyzer=false", f"verify.threads={args.threads}", "overwrite=true"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, text=True, capture_output=True)
    print(f"export took {time.perf_counter() - start:.0f} s (exit {result.returncode})", flush=True)
    for candidate in (folder, folder / "failed"):
        if (candidate / "report.json").is_file():
            return candidate, json.loads((candidate / "report.json").read_text())
    raise SystemExit(f"the export wrote no report.json:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


# ----------------------------------------------------------------------------- one row, in a fresh process
def _build(spec: dict):
    """The :mod:`bokeh.runtimes` object a row describes."""
    from bokeh import runtimes

    if spec["kind"] == "torch":
        return runtimes.TorchRuntime.from_file(spec["path"], threads=spec["threads"], precision=spec["precision"],
                                               compiled=spec.get("compiled", False))
    if spec["kind"] == "onnxruntime":
        return runtimes.OnnxRuntime.from_file(spec["path"], threads=spec["threads"])
    if spec["kind"] == "litert_cpu":
        return runtimes.LiteRTCpuRuntime.from_file(spec["path"], threads=spec["threads"])
    return runtimes.LiteRTGpuRuntime.from_file(spec["path"])


def measure(spec: dict) -> dict:
    """Build one runtime, warm it up, time ``runs`` runs on the first photo, then run the other photos.

    Returns times, peak memory, the runtime's description and its outputs on every photo (NCHW
    float32 on the [-1, 1] scale), or ``{"error": ...}`` when the runtime cannot be built.
    """
    import gc

    import torch

    import bokeh.export.tflite  # noqa: F401  (imports torch._dynamo before TensorFlow: TOOLCHAIN.md)
    from bokeh.export import verify
    from bokeh.runtimes import RuntimeUnavailable

    torch.set_num_threads(spec["threads"])
    height, width = spec["size"]
    photos = {name: verify.photo(height, width, name).transpose(2, 0, 1)[None] * 2 - 1 for name in verify.PHOTOS}
    start = time.perf_counter()
    try:
        runtime = _build(spec)
    except (RuntimeUnavailable, RuntimeError) as error:
        return {"error": f"{type(error).__name__}: {error}"}
    build_s = time.perf_counter() - start
    first = next(iter(photos.values())).astype(np.float32)
    gc.collect()
    baseline, _ = rss_and_peak()
    exact_peak = reset_peak()
    start = time.perf_counter()
    outputs = {"astronaut": runtime.run(first)}
    first_s = time.perf_counter() - start
    times = []
    for _ in range(spec["runs"] if spec["timed"] else 0):
        start = time.perf_counter()
        runtime.run(first)
        times.append(time.perf_counter() - start)
    current, peak = rss_and_peak()
    outputs.update({name: runtime.run(image.astype(np.float32)) for name, image in photos.items() if name not in outputs})
    return {"times": times, "first_s": first_s, "build_s": build_s, "peak_above_bytes": peak - baseline if exact_peak else None,
            "peak_rss_bytes": peak, "description": runtime.describe().to_dict(), "outputs": outputs}


def run_isolated(spec: dict) -> dict:
    """:func:`measure` in a fresh spawned process (honest peak memory per row)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, spec).result()


# ----------------------------------------------------------------------------- rows, table, bars
def row_specs(args: argparse.Namespace, ckpt: Path, folder: Path, native: bool) -> list[dict]:
    """What to run, in order: torch first (the reference for quality), then the exported files."""
    base = {"size": args.hw, "threads": args.threads, "runs": args.runs, "timed": True}
    rows = [{**base, "label": "torch fp32 (fast path)", "kind": "torch", "path": ckpt, "precision": "fp32"}]
    bf16_timed = args.bf16 == "force" or (args.bf16 == "auto" and native)
    if args.bf16 != "off":
        label = "torch bf16 (fast path)" if native else "torch bf16, emulated, not native"
        rows.append({**base, "label": label if bf16_timed else f"{label} (quality only)", "kind": "torch",
                     "path": ckpt, "precision": "bf16", "timed": bf16_timed})
    if args.compiled == "true":
        rows.append({**base, "label": "torch fp32, torch.compile", "kind": "torch", "path": ckpt, "precision": "fp32",
                     "compiled": True})
        if bf16_timed:
            rows.append({**base, "label": "torch bf16, torch.compile", "kind": "torch", "path": ckpt,
                         "precision": "bf16", "compiled": True})
    rows.append({**base, "label": "ONNX Runtime fp32", "kind": "onnxruntime", "path": folder / "bokeh.onnx"})
    for kind in ("float32", "float16", "int8"):
        rows.append({**base, "label": f"LiteRT XNNPACK {kind}", "kind": "litert_cpu", "path": folder / f"bokeh_{kind}.tflite"})
    if args.gpu == "auto":
        for kind in ("float16", "int8"):
            rows.append({**base, "label": f"LiteRT GPU accelerator {kind}", "kind": "litert_gpu",
                         "path": folder / f"bokeh_{kind}.tflite", "runs": min(args.runs, 3)})
    return rows


def quality(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> tuple[float, float]:
    """Worst (lowest) PSNR and largest max abs error over the photos, against ``reference``."""
    from bokeh.export.verify import parity

    results = [parity(reference[name], outputs[name], 2.0) for name in reference]
    return min(r["psnr_db"] for r in results), max(r["max_abs"] for r in results)


def label_of(result: dict, spec: dict) -> str:
    """The row's label, with the GPU adapter named when it is a software one."""
    description = result.get("description", {})
    if spec["kind"] == "litert_gpu" and description.get("software_adapter"):
        return f"{spec['label']} (software adapter: {description['device'].split(',')[0]}; not a phone)"
    return spec["label"]


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from bokeh import cpu
    from bokeh.inference import resolve_precision

    console = Console() if sys.stdout.isatty() else Console(width=200)
    load_start = os.getloadavg()[0]
    info = cpu.describe()
    auto = resolve_precision("auto")
    console.print(f"CPU: {info['name']} ({os.cpu_count()} cores); bf16 native: {info['bf16_native']} "
                  f"(flags: {', '.join(info['bf16_flags']) or 'none of amx_bf16, avx512_bf16'}); "
                  f"precision=auto picks {auto}; {args.threads} threads per runtime", highlight=False)
    ckpt = checkpoint_for(args)
    folder, report = exported(ckpt, args)
    trained = bool(args.ckpt)
    console.print(f"checkpoint: {ckpt}{'' if trained else ' (random weights: quality columns say nothing; pass ckpt=)'}; "
                  f"exported files: {folder}", highlight=False)
    if not report.get("passed", False):
        console.print(f"[yellow]the export's checks failed: {', '.join(report.get('failed_checks', []))}; "
                      f"its files are timed anyway[/yellow]")

    results = []
    for spec in row_specs(args, ckpt, folder, info["bf16_native"]):
        console.print(f"[dim]running {spec['label']} ...[/dim]")
        results.append((spec, run_isolated(spec)))
    reference = results[0][1]["outputs"]
    reference_median = statistics.median(results[0][1]["times"])

    height, width = args.hw
    table = Table(title=f"Glass-Net at {height} x {width}, {args.threads} threads, {info['name']}")
    for column in ("runtime", "precision", "median s", "spread s", "x fp32", "peak MiB", "PSNR dB", "max abs"):
        table.add_column(column, justify="left" if column in ("runtime", "precision") else "right")
    rows_json = []
    for spec, result in results:
        if "error" in result:
            table.add_row(spec["label"], "-", "not available", result["error"][:80], "", "", "", "")
            rows_json.append({"label": spec["label"], "error": result["error"]})
            continue
        times = result["times"]
        median = statistics.median(times) if times else None
        psnr, max_abs = quality(result["outputs"], reference)
        is_reference = spec is results[0][0]
        peak = result["peak_above_bytes"]
        table.add_row(
            label_of(result, spec), result["description"]["precision"],
            f"{median:.2f}" if median else "not timed", f"{min(times):.2f} - {max(times):.2f}" if times else "-",
            f"{median / reference_median:.2f}" if median else "-",
            f"{peak / MiB:.0f}" if peak is not None and times else "-",
            "reference" if is_reference else f"{psnr:.1f}", "" if is_reference else f"{max_abs:.1e}",
        )
        rows_json.append({"label": label_of(result, spec), "description": result["description"], "times_s": times,
                          "median_s": median, "first_run_s": result["first_s"], "build_s": result["build_s"],
                          "peak_above_start_bytes": peak, "peak_rss_bytes": result["peak_rss_bytes"],
                          "psnr_db_vs_torch_fp32": None if is_reference else psnr,
                          "max_abs_vs_torch_fp32": None if is_reference else max_abs})
    console.print(table)
    load_end = os.getloadavg()[0]
    console.print(f"{args.runs} timed runs after one warm-up on the astronaut photo (GPU rows: at most 3); peak MiB: RSS "
                  f"high-water mark above the RSS before the runs, fresh process per row; PSNR / max abs: worst of "
                  f"{', '.join(reference)} against torch fp32, [-1, 1] scale. Load average (1 min) {load_start:.1f} at "
                  f"start, {load_end:.1f} at end: above ~0.5 other jobs share the CPU and timings are inflated.",
                  highlight=False)

    bars = check_bars(args, info, auto, rows_json, trained)
    console.print("bars (issue 14):")
    for line in bars:
        console.print(f"  {line}", highlight=False)
    record = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": info, "cores": os.cpu_count(),
              "threads": args.threads, "size": [height, width], "checkpoint": str(ckpt), "trained_weights": trained,
              "precision_auto": auto, "export_passed": report.get("passed"), "export_failed_checks": report.get("failed_checks"),
              "load_average": [load_start, load_end], "rows": rows_json, "bars": bars}
    path = folder / f"bench-{record['date'].replace(':', '')}.json"
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    console.print(f"written: {path}", highlight=False)


def check_bars(args, info: dict, auto: str, rows: list[dict], trained: bool) -> list[str]:
    """Each bar of issue 14 with the figure measured here and a verdict, or why it cannot be judged here."""
    by_label = {row["label"]: row for row in rows}
    paper_setup = args.hw == (1024, 1536) and args.threads == 2
    setup = "" if paper_setup else " (not the bar's setup: 1024x1536, threads=2)"
    quality_note = "" if trained else " (random weights: pass ckpt= with trained weights for a verdict)"
    lines = []
    fp32 = by_label.get("torch fp32 (fast path)", {})
    bf16 = next((row for label, row in by_label.items() if label.startswith("torch bf16") and "compile" not in label), None)
    if info["bf16_native"]:
        median = bf16.get("median_s") if bf16 else None
        verdict = "PASS" if median is not None and median <= BAR_BF16_SECONDS else "FAIL"
        lines.append(f"native bf16: torch bf16 median {median if median is None else f'{median:.2f}'} s <= {BAR_BF16_SECONDS} s: "
                     f"{verdict}{setup}")
    else:
        lines.append(f"native bf16: not measurable on this CPU (no amx_bf16 / avx512_bf16); precision=auto picks {auto} "
                     f"here, which is the torch fp32 row ({fp32.get('median_s', float('nan')):.2f} s)"
                     f"{': PASS' if auto == 'fp32' else ': FAIL'} for 'auto picks fp32 where bf16 is not native'")
    if bf16 and bf16.get("psnr_db_vs_torch_fp32") is not None:
        psnr = bf16["psnr_db_vs_torch_fp32"]
        lines.append(f"bf16 vs fp32 PSNR {psnr:.1f} dB >= {BAR_BF16_PSNR} dB (worst photo): "
                     f"{'PASS' if psnr >= BAR_BF16_PSNR else 'FAIL'}{quality_note}")
    float32 = by_label.get("LiteRT XNNPACK float32", {})
    int8 = by_label.get("LiteRT XNNPACK int8", {})
    if float32.get("median_s") and int8.get("median_s"):
        ratio = int8["median_s"] / float32["median_s"]
        lines.append(f"int8 / float32 on XNNPACK {ratio:.2f} <= {BAR_INT8_RATIO}: {'PASS' if ratio <= BAR_INT8_RATIO else 'FAIL'}{setup}")
        psnr = int8["psnr_db_vs_torch_fp32"]
        lines.append(f"int8 vs torch PSNR {psnr:.1f} dB >= {BAR_INT8_PSNR} dB (worst photo): "
                     f"{'PASS' if psnr >= BAR_INT8_PSNR else 'FAIL'}{quality_note}")
    return lines


if __name__ == "__main__":
    main(sys.argv[1:])
