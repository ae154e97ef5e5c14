"""Data pipeline speed: synthetic pairs per second, and loading + cropping one EBB!-sized JPEG pair.

    .venv/bin/python benchmarks/bench_data.py            # the full table (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_data.py --quick    # fewer pairs

Rows:
* render, 1 process: ``make_pair`` in this process (scene + both renders + noise), per pair;
* write set, N processes: ``write_dataset`` as the CLI runs it (renders + two JPEG writes per pair);
* load + crop: read a 1024 x 1536 JPEG pair from disk, take a paired 1024 x 1408 crop, make the
  two [-1, 1] tensors (one ``PairDataset`` item), and the whole-image validation item.

Wall-clock timings move with the machine's load (the load average is printed with the table); the
CPU column (this process and its worker processes) does not, and divided by the number of cores it
is what the row would take on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bokeh.data import textures
from bokeh.data.pairs import Pair, PairDataset
from bokeh.data.synthesize import write_dataset
from bokeh.data.synthetic import make_pair
from bokeh.images import write_image


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (load-independent, unlike wall time)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def rate_single(size: tuple[int, int], count: int) -> tuple[float, float, float]:
    """(pairs per second, seconds per pair, CPU seconds per pair) of make_pair in this process."""
    times = []
    cpu = cpu_seconds()
    for index in range(count):
        start = time.perf_counter()
        make_pair(index, seed=0, size=size)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return 1.0 / median, median, (cpu_seconds() - cpu) / count


def rate_written(size: tuple[int, int], count: int, workers: int) -> tuple[float, float, float]:
    """(pairs per second, total seconds, CPU seconds per pair) of write_dataset, JPEG files included."""
    with tempfile.TemporaryDirectory() as folder:
        cpu = cpu_seconds()
        start = time.perf_counter()
        write_dataset(Path(folder) / "set", n=count, size=size, seed=0, workers=workers)
        seconds = time.perf_counter() - start
    return count / seconds, seconds, (cpu_seconds() - cpu) / count


def load_and_crop(repeats: int) -> tuple[float, float]:
    """Median seconds for one training item (1024 x 1408 crop) and one validation item, 1024 x 1536 JPEGs."""
    pair = make_pair(0, seed=0, size=(1024, 1536))
    with tempfile.TemporaryDirectory() as folder:
        paths = [write_image(Path(folder) / side / "0.jpg", image) for side, image in (("original", pair.sharp), ("bokeh", pair.bokeh))]
        item = Pair("0", *paths)
        train, val = PairDataset([item], crop=(1024, 1408), flip=True), PairDataset([item])
        timings = []
        for dataset in (train, val):
            dataset[0]  # warm the file cache
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                dataset[0]
                samples.append(time.perf_counter() - start)
            timings.append(statistics.median(samples))
    return timings[0], timings[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs per row")
    parser.add_argument("--workers", type=int, default=2, help="processes for the write-set row")
    args = parser.parse_args()
    small_n, large_n, set_n = (4, 2, 20) if args.quick else (20, 6, 200)
    textures.photo_bank(), textures.gray_bank()  # load the photographs before timing
    make_pair(0, size=(64, 96))

    rows = [("row", "rate", "wall", "CPU", "notes")]
    for size, count in (((512, 768), small_n), ((1024, 1536), large_n)):
        pps, spp, cpu = rate_single(size, count)
        rows.append((f"render {size[0]}x{size[1]}, 1 process", f"{pps:.2f} pairs/s", f"{spp * 1000:.0f} ms/pair", f"{cpu * 1000:.0f} ms/pair", f"median of {count}"))
    for size, count in (((512, 768), set_n), ((1024, 1536), max(2, set_n // 20))):
        pps, total, cpu = rate_written(size, count, args.workers)
        rows.append((f"write set {size[0]}x{size[1]}, {args.workers} processes", f"{pps:.2f} pairs/s", f"{total:.1f} s total", f"{cpu * 1000:.0f} ms/pair", f"{count} pairs, JPEG q95"))
    train_s, val_s = load_and_crop(5 if args.quick else 15)
    rows.append(("load 1024x1536 JPEG pair + 1024x1408 crop", "", f"{train_s * 1000:.0f} ms/item", "", "PairDataset train item"))
    rows.append(("load 1024x1536 JPEG pair, whole (val)", "", f"{val_s * 1000:.0f} ms/item", "", "PairDataset val item"))

    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


if __name__ == "__main__":
    main()
