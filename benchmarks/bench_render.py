"""Memory and time of rendering one large photo, at EBB!'s scale and at full resolution.

``python benchmarks/bench_render.py`` renders a random photo through :func:`bokeh.render.render_to_uint8`
(resize, pad, Glass-Net on the fast CPU path, unpad, resize back, round to 8 bits) with the default
Glass-Net 16/32 (random weights: time and memory do not depend on them) for each row:

* ``2048x3072 short_side=1024``: the default, the authors' way (run at 1024 x 1536, upsample);
* ``2048x3072 short_side=full``: every pixel through the network;
* ``3024x4032 short_side=1024``: a phone's 12 MP photo, the default path;
* ``3024x4032 short_side=1024 matte``: the same with a Glass-Net with a matte (``blend=True``), whose
  full-size photo comes through the matte (:mod:`bokeh.composite`: the matte upsampled with a
  guided filter, the background bilinearly) instead of :func:`bokeh.render.fit.restore_detail`'s rule;
  the ratio of the two 12 MP rows is printed (the issue-24 bar: at most 1.5).

``--full-12mp`` adds ``3024x4032 short_side=full`` (needs a machine with plenty of free memory).
Each row runs in a fresh process: peak RSS is the process's resident-set high-water mark (Python,
torch, the model and the photo included: what the machine must have free), and "above start" is
that peak minus the RSS just before the render. Seconds: wall clock and process CPU time (all
threads; less sensitive to other jobs) of ``--runs`` renders, the first one included (a photo is
rendered once; glibc returns large freed blocks to the OS, so later photos pay the same page faults).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from bokeh.models.glassnet import GlassNet
from bokeh.render import TorchBackend, plan_for, render_to_uint8
from memory import rss_and_peak  # benchmarks/memory.py (scripts run from this folder)

GiB = 1024**3
ROWS = (((2048, 3072), 1024, False), ((2048, 3072), None, False), ((3024, 4032), 1024, False), ((3024, 4032), 1024, True))
FULL_12MP = ((3024, 4032), None, False)


def render_once(size: tuple[int, int], short_side: int | None, runs: int, threads: int, matte: bool = False) -> dict:
    """In a fresh process: build the model (with a matte: ``blend``) and photo, render ``runs`` times;
    seconds and memory."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    backend = TorchBackend(GlassNet(width1=16, width2=32, blend=matte).eval())
    photo = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    gc.collect()
    start_rss, _ = rss_and_peak()
    times, cpu_times = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        output = render_to_uint8(photo, backend, short_side)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
        assert output.shape == photo.shape
        del output
    _, peak = rss_and_peak()
    return {"times": times, "cpu_times": cpu_times, "peak": peak, "start": start_rss, "threads": torch.get_num_threads()}


def run_isolated(size, short_side, runs, threads, matte=False) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(render_once, size, short_side, runs, threads, matte).result()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1, help="renders per row (default 1); the median is shown")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's, the core count)")
    parser.add_argument("--full-12mp", action="store_true", help="also render 3024x4032 at full resolution")
    parser.add_argument("--matte-only", action="store_true", help="only the two 12 MP rows, without and with the matte")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.threads < 0:
        parser.error("--runs must be >= 1 and --threads >= 0")
    console = Console() if Console().is_terminal else Console(width=150)
    rows = ROWS[-2:] if args.matte_only else ROWS + ((FULL_12MP,) if args.full_12mp else ())
    load_start = os.getloadavg()[0]
    table = Table(title=f"bokeh.render, Glass-Net 16/32, one photo, CPU ({os.cpu_count()} cores)")
    for column in ("photo HxW", "short_side", "network input", "threads", "seconds", "CPU s", "peak RSS GiB", "above start GiB"):
        table.add_column(column, justify="right")
    twelve = {}
    for size, short_side, matte in rows:
        label = ("full" if short_side is None else str(short_side)) + (" matte" if matte else "")
        console.print(f"[dim]rendering {size[0]}x{size[1]} short_side={label} ...[/dim]")
        result = run_isolated(size, short_side, args.runs, args.threads, matte)
        if size == (3024, 4032) and short_side == 1024:
            twelve[matte] = result
        canvas = plan_for(size, None, short_side).canvas
        table.add_row(
            f"{size[0]}x{size[1]}", label, f"{canvas[0]}x{canvas[1]}", str(result["threads"]),
            f"{statistics.median(result['times']):.1f}", f"{statistics.median(result['cpu_times']):.1f}",
            f"{result['peak'] / GiB:.2f}", f"{(result['peak'] - result['start']) / GiB:.2f}",
        )
    console.print(table)
    if len(twelve) == 2:
        wall, cpu = (statistics.median(twelve[True][k]) / statistics.median(twelve[False][k]) for k in ("times", "cpu_times"))
        console.print(f"12 MP through the matte / without (restore_detail): {wall:.2f}x wall clock, {cpu:.2f}x CPU time")
    console.print(f"Load average (1 min) {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at end: "
                  f"above ~0.5 other jobs share the CPU and the seconds are inflated (CPU s less so).")


if __name__ == "__main__":
    main()
