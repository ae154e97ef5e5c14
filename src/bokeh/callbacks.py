"""Lightning callbacks of this project."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from bokeh.data.transforms import unpad
from bokeh.images import from_tensor, write_image
from bokeh.metrics import to_unit_range


class SampleImages(pl.Callback):
    """Save ``input | output | target`` strips of the first ``count`` validation images each epoch.

    PNGs go to ``<log_dir or output dir>/samples/epoch=EEE_batch=B.png``; a TensorBoard logger
    also gets them as images (``val/sample_B``).
    """

    def __init__(self, count: int = 3) -> None:
        self.count = count

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx >= self.count or trainer.sanity_checking or not trainer.is_global_zero:
            return
        size = batch.get("size", batch["input"].shape[-2:])
        strip = torch.cat([unpad(x, size) for x in (batch["input"][0], outputs[0], batch["target"][0])], dim=-1)  # (3, H, 3W)
        folder = Path(log_dir(trainer)) / "samples"
        write_image(folder / f"epoch={trainer.current_epoch:03d}_batch={batch_idx}.png", from_tensor(strip))
        experiment = getattr(trainer.logger, "experiment", None)
        if hasattr(experiment, "add_image"):
            experiment.add_image(f"val/sample_{batch_idx}", to_unit_range(strip.clamp(-1, 1)), trainer.global_step)


def log_dir(trainer: pl.Trainer) -> str:
    """``trainer.log_dir`` without its broadcast: that property is a collective under DDP, and a
    callback that asks for it on rank 0 alone (as one that writes files does) hangs the run."""
    logger = trainer.loggers[0] if trainer.loggers else None
    folder = getattr(logger, "log_dir", None) or getattr(logger, "save_dir", None)
    return str(folder or trainer.default_root_dir)
