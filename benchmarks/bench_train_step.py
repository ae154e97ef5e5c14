"""Seconds per training step and peak memory, for either stage, at any crop size.

    .venv/bin/python benchmarks/bench_train_step.py                                 # demo model, both stages
    .venv/bin/python benchmarks/bench_train_step.py --stage finetune --size 1024x1408 --model paper --steps 3
    .venv/bin/python benchmarks/bench_train_step.py --precision bf16-mixed --accelerator gpu --model paper ...

One Lightning ``fit`` of ``BokehGAN`` on seeded random batches (the data pipeline is timed by
``bench_data.py``), exactly the training step ``python -m bokeh.train`` runs: the generator step
(L1 + SSIM, in finetune also VGG19 relu5_4 and the critics' adversarial term) and, in finetune, the
WGAN-GP critic step before it. VGG19 uses random weights here (same cost as ImageNet's). The first
batch is a warm-up and not counted. "peak RSS" is the process high-water mark (CPU); on a GPU the
peak allocated CUDA memory is printed too.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from bokeh.lit import BokehGAN
from memory import rss_and_peak  # benchmarks/memory.py (scripts run from this folder)

MODELS = {
    "demo": ({"width1": 8, "width2": 16, "blocks": 3}, {"ndf": 16}),  # conf/experiment/demo.yaml
    "paper": ({"width1": 16, "width2": 32, "blocks": 9}, {"ndf": 64}),  # conf/model + conf/critic defaults
}


class RandomPairs(Dataset):
    """``count`` seeded random (input, target) pairs of ``(3, H, W)`` in [-1, 1]."""

    def __init__(self, count: int, size: tuple[int, int]) -> None:
        generator = torch.Generator().manual_seed(0)
        self.pairs = torch.rand(count, 2, 3, *size, generator=generator) * 2 - 1

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        return {"input": self.pairs[index, 0], "target": self.pairs[index, 1]}


class BatchTimer(pl.Callback):
    """Wall seconds of each training batch (all its optimizer steps)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self.start)


def measure(stage: str, model: str, size: tuple[int, int], batch: int, steps: int, accelerator: str, precision: str) -> dict:
    generator, critic = MODELS[model]
    loss = {"vgg": {"weight": 0.1, "weights": "random"}, "adv": 1.0} if stage == "finetune" else {}
    torch.manual_seed(0)
    module = BokehGAN(generator=generator, stage=stage, critic={**critic, "depths": [3, 5]}, loss=loss)
    timer = BatchTimer()
    batches = steps + 1  # one warm-up batch
    trainer = pl.Trainer(
        accelerator=accelerator, devices=1, precision=precision, max_epochs=1, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[timer], num_sanity_val_steps=0,
    )
    start_cpu = time.process_time()
    trainer.fit(module, DataLoader(RandomPairs(batches * batch, size), batch_size=batch))
    timed = timer.seconds[1:]
    result = {
        "stage": stage, "model": model, "size": f"{size[0]}x{size[1]}", "batch": batch, "steps": len(timed),
        "median_s": statistics.median(timed), "min_s": min(timed),
        "cpu_s_per_step": (time.process_time() - start_cpu) / batches,
        "peak_rss_gib": rss_and_peak()[1] / 2**30,
    }
    if torch.cuda.is_available() and accelerator != "cpu":
        result["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["pretrain", "finetune", "both"], default="both")
    parser.add_argument("--model", choices=sorted(MODELS), default="demo")
    parser.add_argument("--size", default="128x192", help="crop H x W (multiples of 8)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="timed batches after one warm-up batch")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--precision", default="32-true")
    args = parser.parse_args()
    size = tuple(int(side) for side in args.size.lower().split("x"))
    stages = ["pretrain", "finetune"] if args.stage == "both" else [args.stage]
    print(f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}")
    print(f"{'stage':9s} {'model':6s} {'crop':>10s} {'batch':>5s} {'median s/step':>14s} {'min s':>7s} {'CPU s/step':>11s} {'peak RSS GiB':>13s}")
    for stage in stages:
        r = measure(stage, args.model, size, args.batch, args.steps, args.accelerator, args.precision)
        extra = f"  peak CUDA {r['peak_cuda_gib']:.2f} GiB" if "peak_cuda_gib" in r else ""
        print(f"{r['stage']:9s} {r['model']:6s} {r['size']:>10s} {r['batch']:5d} {r['median_s']:14.2f} {r['min_s']:7.2f} "
              f"{r['cpu_s_per_step']:11.2f} {r['peak_rss_gib']:13.2f}{extra}")


if __name__ == "__main__":
    main()
