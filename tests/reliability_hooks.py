"""Fault-injection callbacks for the training fault tests, tests/test_train.py (never used by the package itself).

The CLI tests add them to a run with Hydra overrides, with this folder on ``PYTHONPATH``::

    +callbacks.log._target_=reliability_hooks.LossLog +callbacks.log.path=/tmp/losses.jsonl
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch

import bokeh.checkpoint_io


class LossLog(pl.Callback):
    """Append one JSON line per training batch: rank, global step, epoch, batch index, pair names and the ``train/*`` losses."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        line = {"rank": trainer.global_rank, "step": trainer.global_step, "epoch": trainer.current_epoch, "batch": batch_idx, "names": list(batch["name"]), **losses}
        with self.path.open("a") as file:
            file.write(json.dumps(line) + "\n")
            file.flush()


def read_log(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


class KillAtStep(pl.Callback):
    """SIGKILL this process once ``global_step >= step`` at the end of a batch (no cleanup runs).

    Checkpoint callbacks run after all others, so a checkpoint due at that very step is not written.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class KillWhileSaving(pl.Callback):
    """SIGKILL this process halfway through writing the first checkpoint due at ``global_step >= step``.

    Half of the serialized bytes reach the file that :class:`bokeh.checkpoint_io.AtomicCheckpointIO`
    writes, then the process dies: a torn write, as from a power cut or the OOM killer.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def setup(self, trainer, pl_module, stage) -> None:
        real_save = torch.save

        def torn_save(obj, file, *args, **kwargs):
            if trainer.global_step < self.step or not hasattr(file, "write"):
                return real_save(obj, file, *args, **kwargs)
            import io

            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            file.write(data[: len(data) // 2])
            file.flush()
            os.fsync(file.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        bokeh.checkpoint_io.torch.save = torn_save  # the module's torch is the torch module: this process dies anyway


class NonFiniteLoss(pl.Callback):
    """Multiply the generator loss (``where="loss"``) or only its gradient (``"grad"``: the loss stays
    finite) by ``value`` ("nan" or "inf") on the given training batches, counted from 0 in this run."""

    def __init__(self, batches: list[int], value: str = "nan", where: str = "loss") -> None:
        self.batches, self.value, self.where, self.seen = set(batches), float(value), where, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        poison = self.seen in self.batches
        self.seen += 1
        if "generator_losses" in vars(pl_module):
            del pl_module.generator_losses  # back to the class's method
        if poison:
            clean = pl_module.generator_losses

            def poisoned(*args, **kwargs):
                terms = clean(*args, **kwargs)
                if self.where == "grad":
                    terms["total"].register_hook(lambda grad: grad * self.value)
                else:
                    terms["total"] = terms["total"] * self.value
                return terms

            pl_module.generator_losses = poisoned


class WeightSpy(pl.Callback):
    """``changed[i]``: whether training batch ``i`` of this run changed the generator's weights."""

    def __init__(self) -> None:
        self.changed: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before = [p.detach().clone() for p in pl_module.generator.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.changed.append(any(not torch.equal(a, p) for a, p in zip(self.before, pl_module.generator.parameters())))


class StopAtStep(pl.Callback):
    """Set ``trainer.should_stop`` once ``global_step >= step`` at the end of a batch: what
    Lightning's ``Timer`` does when ``trainer.max_time`` runs out, at a step known in advance."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step >= self.step:
            trainer.should_stop = True
