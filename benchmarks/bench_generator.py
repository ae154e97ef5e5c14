"""Time Glass-Net's forward pass on this CPU (``make bench``).

For each stage-2 width (default c2 = 32, the paper's, and 24, the authors' released model) it runs
the shared fast path (``bokeh.inference.prepare_for_inference`` + ``run_generator``) on a random
image of ``--size`` and prints a table: median and minimum latency over ``--runs`` timed runs (after
one warm-up run), peak memory, FLOPs per image and the achieved GFLOP/s, next to this machine's
numpy float32 2048^3 matrix-multiply rate measured at start (and torch's, which uses MKL).

``--levers`` instead measures what each inference lever gives for one width (autograd on, no_grad,
inference_mode, channels-last, channels-last instance norm, keeping freed memory, thread count,
bf16 under ``torch.autocast`` or as ``precision="bf16"`` weights, ``torch.compile``), one row per
lever. The bf16 rows run where the CPU computes bf16 natively (``bokeh.cpu.native_bf16``), or
everywhere with ``--bf16-emulated`` (then they time an emulation, labelled so). The compiled rows
report the compile time (the first run) separately; ``--no-compile`` leaves them out.

Peak memory is honest process memory: the resident set size (RSS) high-water mark during the
warm-up and timed runs, minus the RSS just before them (model built, input allocated). Every
configuration runs in a fresh process, so one row's allocations cannot hide another's.

Timings depend on what else runs on the machine: the 1-minute load average at start and end is
printed with the table. On a shared CPU compare minimums, and rerun.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bokeh import cpu
from bokeh.complexity import measure
from bokeh.inference import compile_for_inference, keep_freed_memory, prepare_for_inference, run_generator
from bokeh.models.glassnet import GlassNet
from memory import reset_peak, rss_and_peak  # benchmarks/memory.py (scripts run from this folder)

MATMUL_SIZE = 2048
MiB = 1024**2


@dataclasses.dataclass(frozen=True)
class Lever:
    """One way of running the forward pass (cumulative levers, each row adds one)."""

    name: str
    grad: str = "inference_mode"  # "enabled" | "no_grad" | "inference_mode"
    channels_last: bool = False
    prepared: bool = False  # prepare_for_inference: channels-last instance norm (and weights)
    keep_memory: bool = False  # bokeh.inference.keep_freed_memory(): no page faults from the 2nd run on
    threads: int = 0  # 0: torch's default
    precision: str = "fp32"  # prepare_for_inference(precision=...): "bf16" stores bf16 weights
    autocast: bool = False  # run under torch.autocast("cpu", dtype=torch.bfloat16) (fp32 weights)
    compiled: bool = False  # bokeh.inference.compile_for_inference (torch.compile, freezing)

    @property
    def bf16(self) -> bool:
        return self.precision == "bf16" or self.autocast


FAST = Lever("prepare_for_inference + run_generator", channels_last=True, prepared=True)
LEVERS = (
    Lever("eval(), autograd on", grad="enabled"),
    Lever("+ torch.no_grad", grad="no_grad"),
    Lever("+ torch.inference_mode"),
    Lever("+ channels_last", channels_last=True),
    Lever("+ channels-last IN (= fast path)", channels_last=True, prepared=True),
    Lever("fast path + keep_freed_memory()", channels_last=True, prepared=True, keep_memory=True),
    Lever("fast path, set_num_threads(1)", channels_last=True, prepared=True, threads=1),
    Lever("fast path, set_num_threads(2)", channels_last=True, prepared=True, threads=2),
    Lever("fast path + torch.compile (freezing)", channels_last=True, prepared=True, compiled=True),
    Lever("fast path under torch.autocast bf16", channels_last=True, prepared=True, autocast=True),
    Lever("fast path, precision=bf16 (bf16 weights)", channels_last=True, prepared=True, precision="bf16"),
    Lever("precision=bf16 + torch.compile", channels_last=True, prepared=True, precision="bf16", compiled=True),
)


def matmul_gflops(runs: int = 5) -> tuple[float, float]:
    """Median GFLOP/s of a float32 2048^3 matrix multiply: (numpy, torch)."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((MATMUL_SIZE, MATMUL_SIZE), dtype=np.float32) for _ in range(2))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    flops = 2 * MATMUL_SIZE**3
    rates = []
    for multiply in (lambda: a @ b, lambda: ta @ tb):
        multiply()  # warm-up
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            multiply()
            times.append(time.perf_counter() - start)
        rates.append(flops / statistics.median(times) / 1e9)
    return rates[0], rates[1]


def time_forward(width2: int, size: tuple[int, int], runs: int, lever: Lever, threads: int = 0) -> dict:
    """Run in a fresh process: build the model, warm up once, time ``runs`` forwards.

    Returns wall-clock seconds and process CPU seconds (all threads) per timed run, the peak
    RSS above the pre-run RSS in bytes, and the thread count used.
    """
    if lever.threads or threads:
        torch.set_num_threads(lever.threads or threads)
    if lever.keep_memory and not keep_freed_memory():
        raise RuntimeError("keep_freed_memory() needs glibc's mallopt, which this system lacks")
    torch.manual_seed(0)
    model = GlassNet(width2=width2).eval()
    image = torch.rand(1, 3, *size) * 2 - 1
    if lever.prepared:
        model = prepare_for_inference(model, channels_last=lever.channels_last, precision=lever.precision)
        if lever.compiled:
            model = compile_for_inference(model)
    elif lever.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if lever.grad == "inference_mode" and lever.prepared:
        def forward():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=lever.autocast):
                return run_generator(model, image, channels_last=lever.channels_last)
    else:
        if lever.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
        context = {"enabled": torch.enable_grad, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
        def forward():
            with context[lever.grad]():
                return model(image)[0]
    gc.collect()
    baseline, _ = rss_and_peak()
    if not reset_peak():  # fall back to the process-lifetime maximum (an upper bound)
        baseline = 0
    times, cpu_times, first = [], [], 0.0
    for run in range(runs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        output = forward()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        del output
        if run:  # run 0 is the warm-up (and the compile, for compiled levers)
            times.append(elapsed)
            cpu_times.append(cpu)
        else:
            first = elapsed
    _, peak = rss_and_peak()
    if not baseline:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"times": times, "cpu_times": cpu_times, "peak_bytes": peak - baseline, "threads": torch.get_num_threads(),
            "first": first}


def run_isolated(width2: int, size: tuple[int, int], runs: int, lever: Lever, threads: int = 0) -> dict:
    """:func:`time_forward` in a fresh spawned process (honest peak memory per row)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(time_forward, width2, size, runs, lever, threads).result()


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(side) for side in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 1024x1536 (HxW), got {text!r}") from None
    if height < 8 or width < 8 or height % 8 or width % 8:
        raise argparse.ArgumentTypeError(f"--size sides must be positive multiples of 8 (Glass-Net), got {text!r}")
    return height, width


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row, after one warm-up (default 5)")
    parser.add_argument("--size", type=parse_size, default=(1024, 1536), help="input HxW (default 1024x1536)")
    parser.add_argument("--width2", type=int, nargs="+", default=[32, 24], help="stage-2 widths c2 (default 32 24)")
    parser.add_argument("--levers", action="store_true", help="one row per inference lever, for the first --width2")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's, the core count)")
    parser.add_argument("--keep-memory", action="store_true", help="call bokeh.inference.keep_freed_memory() first")
    parser.add_argument("--bf16-emulated", action="store_true", help="--levers: time the bf16 rows where bf16 is not native")
    parser.add_argument("--no-compile", action="store_true", help="--levers: leave out the torch.compile rows (minutes each)")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.threads < 0:
        parser.error("--threads must be at least 1 (or 0 for torch's default)")

    console = Console()
    if not console.is_terminal:  # piped or in CI: keep the table on one line per row
        console = Console(width=170)
    height, width = args.size
    load_start = os.getloadavg()[0]
    numpy_rate, torch_rate = matmul_gflops()
    fast = dataclasses.replace(FAST, keep_memory=args.keep_memory)
    native = cpu.native_bf16()
    levers = [lever for lever in LEVERS if (native or args.bf16_emulated or not lever.bf16)
              and not (args.no_compile and lever.compiled)]
    rows = [(width2, fast) for width2 in args.width2] if not args.levers else [(args.width2[0], lever) for lever in levers]

    info = cpu.describe()
    table = Table(title=f"Glass-Net forward, 1 x 3 x {height} x {width}, {info['name']} ({os.cpu_count()} cores, "
                        f"bf16 native: {info['bf16_native']})")
    for column in ("c2", "how", "threads", "params (M)", "GFLOP/img", "median s", "min s", "CPU s", "peak MiB", "GFLOP/s",
                   "first run s"):
        table.add_column(column, justify="left" if column == "how" else "right")
    for width2, lever in rows:
        cost = measure(GlassNet(width2=width2).eval(), (1, 3, height, width))
        console.print(f"[dim]running c2={width2}: {lever.name} ...[/dim]")
        result = run_isolated(width2, args.size, args.runs, lever, args.threads)
        median = statistics.median(result["times"])
        name = lever.name + (" (emulated, not native)" if lever.bf16 and not native else "")
        table.add_row(
            str(width2), name, str(result["threads"]), f"{cost.parameters / 1e6:.2f}", f"{cost.flops / 1e9:.0f}",
            f"{median:.2f}", f"{min(result['times']):.2f}", f"{statistics.median(result['cpu_times']):.2f}",
            f"{result['peak_bytes'] / MiB:.0f}",
            f"{cost.flops / median / 1e9:.0f}", f"{result['first']:.1f}",
        )
    console.print(table)
    if args.levers and not native and not args.bf16_emulated:
        console.print("bf16 levers left out: this CPU has no native bf16 (amx_bf16 / avx512_bf16); "
                      "--bf16-emulated times them anyway")
    console.print(
        f"matmul float32 {MATMUL_SIZE}^3: numpy {numpy_rate:.0f} GFLOP/s, torch {torch_rate:.0f} GFLOP/s (median of 5). "
        f"FLOPs: convs and matmuls, 2 per multiply-add (bokeh.complexity); GFLOP/s = FLOPs / median s. "
        f"CPU s: median process CPU time of a run, all threads (less sensitive to other jobs than wall time). Peak MiB: RSS high-water mark above the "
        f"RSS before the runs. {args.runs} timed runs after 1 warm-up. Load average (1 min) {load_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end: above ~0.5 other jobs share the CPU and timings are inflated."
    )


if __name__ == "__main__":
    main()
