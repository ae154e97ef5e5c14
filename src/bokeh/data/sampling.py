"""A training order that a killed run can pick up mid-epoch, alone or split across DDP ranks.

Two pieces make the data stream a pure function of ``(seed, epoch, position)``:

* :class:`ResumableSampler` shuffles with ``seed + epoch`` (as ``DistributedSampler`` does, of which
  it is one, so Lightning neither replaces it under DDP nor forgets to call ``set_epoch``), or for a
  mix of sources draws a stated number of samples by weight with the same seed
  (:mod:`bokeh.data.mix`), and yields keys ``(index, crop_seed)``; :class:`~bokeh.data.pairs.PairDataset` draws the random crop and flip
  of that item from ``crop_seed`` alone, never from the global RNG (which the model also draws from,
  and which loader workers each copy).
* :class:`ResumableLoader` counts the batches it has handed out this epoch (and takes the epoch
  number from ``trainer.current_epoch`` when a trainer is attached). Lightning stores its
  ``state_dict()`` in every checkpoint and gives it back with ``load_state_dict()`` on resume; the
  first epoch after that starts where the checkpoint was taken, without reading the skipped images.

Only the training loader needs this; validation reads every image in order.

A run *stopped* mid-epoch (``trainer.max_steps``, ``trainer.max_time``, anything that sets
``trainer.should_stop``) needs one more piece: Lightning 2.6 closes the epoch loop on such a stop
and counts the epoch as done, so its checkpoints would resume at the next epoch and never train
the rest of this one. :class:`ResumeStoppedEpoch` (always on in ``bokeh.train``) writes them as
mid-epoch checkpoints instead.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

log = logging.getLogger(__name__)

SampleKey = tuple[int, int]  # (dataset index, seed of its random crop and flip)


def crop_seed(seed: int, epoch: int, index: int, draw: int | None = None) -> int:
    """The seed of item ``index``'s random crop in ``epoch``: independent streams per item and epoch
    (and per ``draw``, the position in the epoch's order, for orders that may repeat an item)."""
    entropy = [int(seed), int(epoch), int(index)] + ([] if draw is None else [int(draw)])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class ResumableSampler(DistributedSampler):
    """This rank's share of a seeded per-epoch order, as ``(index, crop_seed)`` keys.

    Args:
        dataset: anything with ``len``.
        seed: the order of epoch ``e`` uses ``seed + e``; crops use :func:`crop_seed`.
        num_replicas, rank: the DDP world (1 and 0 for one process). Each epoch's order is cut
            into ``num_replicas`` disjoint strided shares; with ``drop_last`` (the default) the last
            ``len % num_replicas`` items of the order are left out instead of repeated, so no item
            is seen twice in one epoch.
        shuffle: ``False`` keeps the dataset order (crops still vary by epoch).
        weights: per-item weights (>= 0, not all 0; e.g. :meth:`bokeh.data.mix.Mix.weights`): each
            epoch is then ``num_samples`` draws *with replacement*, item ``i`` with probability
            ``weights[i] / sum(weights)`` (:class:`torch.utils.data.WeightedRandomSampler` with a
            generator seeded ``seed + epoch``), instead of a permutation; an item drawn twice gets
            two different crops. ``None``: the permutation.
        num_samples: the draws per epoch over all ranks (required with ``weights``).

    ``start`` (set by :class:`ResumableLoader`) skips that many of this rank's keys in the next
    iteration only.
    """

    def __init__(self, dataset: Dataset, seed: int = 0, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, drop_last: bool = True,
                 weights: Sequence[float] | None = None, num_samples: int | None = None) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in 0..num_replicas-1, got rank={rank}, num_replicas={num_replicas}")
        items = len(dataset) if weights is None else int(num_samples or 0)
        if weights is not None:
            weights = torch.as_tensor([float(w) for w in weights], dtype=torch.float64)
            if len(weights) != len(dataset) or not torch.isfinite(weights).all() or (weights < 0).any() or not weights.sum() > 0:
                raise ValueError(f"weights must be {len(dataset)} finite numbers >= 0, not all 0 (one per training item)")
            if num_samples is None or int(num_samples) < 1:
                raise ValueError(f"weighted sampling needs num_samples >= 1 (draws per epoch), got {num_samples}")
        if drop_last and items < num_replicas:
            raise ValueError(f"{items} training items cannot be split over {num_replicas} processes: use fewer devices or more data")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        self.weights = weights
        if weights is not None:  # this rank's draws: as DistributedSampler counts them, over num_samples instead of len(dataset)
            per_rank = items // num_replicas if drop_last else -(-items // num_replicas)
            self.num_samples, self.total_size = per_rank, per_rank * num_replicas
        self.start = 0

    def epoch_indices(self, epoch: int | None = None) -> list[int]:
        """Every rank's indices of ``epoch`` (default: the current one) in order, before the split:
        rank ``r`` serves ``epoch_indices()[r::num_replicas]``. A pure function of (seed, epoch)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self.weights is None:
            saved, self.epoch = self.epoch, epoch
            try:
                indices = [i for r in range(self.num_replicas) for i in self._rank_indices(r)]
            finally:
                self.epoch = saved
            # interleave back into the order before the strided split
            per = self.num_samples
            return [indices[r * per + k] for k in range(per) for r in range(self.num_replicas)]
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return list(WeightedRandomSampler(self.weights, self.total_size, replacement=True, generator=generator))

    def _rank_indices(self, rank: int) -> list[int]:
        saved, self.rank = self.rank, rank
        try:
            return list(super().__iter__())
        finally:
            self.rank = saved

    def __iter__(self) -> Iterator[SampleKey]:  # a generator: the order is fixed at the first next(), after set_epoch
        start, self.start = self.start, 0
        if self.weights is None:
            for index in list(super().__iter__())[start:]:
                yield index, crop_seed(self.seed, self.epoch, index)
            return
        # draws with replacement: the crop seed follows the draw's position, so repeats differ
        positions = range(self.rank, self.total_size, self.num_replicas)
        drawn = self.epoch_indices()[self.rank : self.total_size : self.num_replicas]
        for position, index in list(zip(positions, drawn))[start:]:
            yield index, crop_seed(self.seed, self.epoch, index, position)


class ResumableLoader(DataLoader):
    """A ``DataLoader`` over a :class:`ResumableSampler` whose position Lightning checkpoints.

    ``state_dict()`` is ``{"epoch": e, "samples": n}``: the first ``n`` items of epoch ``e``'s
    shuffle were handed out, over all ranks (Lightning does not prefetch from a loader with a
    length, so these are the items trained on when a checkpoint is written). After
    ``load_state_dict``, the next iteration skips them if it is still epoch ``e`` (a mid-epoch
    checkpoint) and nothing otherwise. Counting items, not batches, keeps the skip right when a run
    resumes with another batch size or number of processes (rounded down to whole batches).
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, current_epoch: Callable[[], int] | None = None, **kwargs: Any) -> None:
        if not isinstance(sampler, ResumableSampler):
            raise TypeError(f"ResumableLoader needs a ResumableSampler, got {type(sampler).__name__}")
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.current_epoch = current_epoch
        self._served = 0  # batches of the current epoch handed out on this rank (skipped ones included)
        self._resume: tuple[int, int] | None = None

    @property
    def _items_per_batch(self) -> int:
        """Items of the shuffle that one batch on every rank consumes."""
        return self.batch_size * self.sampler.num_replicas

    def __iter__(self) -> Iterator[Any]:  # a generator: runs at the first next(), inside the epoch
        if self.current_epoch is not None:
            # Lightning's own set_epoch call passes epoch_progress.processed, which runs one ahead
            # of trainer.current_epoch after a resume from an end-of-epoch checkpoint (2.6)
            self.sampler.set_epoch(self.current_epoch())
        skip = 0
        if self._resume is not None:
            epoch, samples = self._resume
            self._resume = None
            skip = samples // self._items_per_batch if epoch == self.sampler.epoch else 0
        self.sampler.start = skip * self.batch_size
        self._served = skip
        for batch in super().__iter__():
            self._served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": int(self.sampler.epoch), "samples": int(self._served * self._items_per_batch)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if set(state) != {"epoch", "samples"}:
            raise ValueError(f"not a ResumableLoader state (keys {sorted(state)}): was the checkpoint written with another data loader?")
        self._resume = (int(state["epoch"]), int(state["samples"]))


class ResumeStoppedEpoch(pl.Callback):
    """Checkpoints of a run stopped mid-epoch by a limit resume that same epoch where it stopped.

    When ``max_steps`` or ``max_time`` (Lightning's ``Timer`` sets ``trainer.should_stop``) ends
    a run in the middle of an epoch, Lightning 2.6 still leaves the epoch loop the normal way:
    ``fit_loop.epoch_progress`` counts the epoch as processed and completed, ``on_train_epoch_end``
    runs, and ``last.ckpt`` is written there saying "epoch 0 done". Resumed from it, Lightning
    starts epoch 1; the loader (whose state says "24 of 184 samples of epoch 0") then starts epoch
    1 whole, and the rest of epoch 0 is never trained.

    In every checkpoint written after the epoch loop ended short of the epoch's last batch, this
    callback sets the epoch counters back to what a checkpoint written *inside* that epoch holds
    (ready = started = e + 1, processed = completed = e, and ``epoch`` = e), so Lightning restores
    it as restarted mid-epoch, at the batch where the run stopped, and :class:`ResumableLoader`
    skips exactly what was trained. Checkpoints at a complete epoch's end are left alone.
    """

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
        loop = trainer.fit_loop
        epochs, batches = loop.epoch_progress.current, loop.epoch_loop.batch_progress
        left_the_epoch = epochs.processed == epochs.started > 0
        ended_short = not batches.is_last_batch and batches.current.ready < trainer.num_training_batches
        if not (left_the_epoch and ended_short) or "loops" not in checkpoint:
            return
        progress = checkpoint["loops"]["fit_loop"]["epoch_progress"]
        for counters in (progress["total"], progress["current"]):
            counters["processed"] = counters["completed"] = counters["started"] - 1
        checkpoint["epoch"] = progress["current"]["completed"]


class LogDataMix(pl.Callback):
    """Says what a training set mixed from several sources (:attr:`mix` of the datamodule,
    :mod:`bokeh.data.mix`) draws; nothing for a single source.

    At the start of training one log line names each source, its pairs and its share; at the start
    of every epoch one line gives the samples each source contributes to that epoch's draws (the
    whole epoch, all ranks) and the realised shares are logged as ``data/mix/<source>``. Always on
    in ``bokeh.train``.
    """

    @staticmethod
    def _mix_and_sampler(trainer: pl.Trainer):
        mix = getattr(trainer.datamodule, "mix", None) if getattr(trainer, "datamodule", None) is not None else None
        sampler = getattr(trainer.train_dataloader, "sampler", None)
        return (mix, sampler) if mix is not None and isinstance(sampler, ResumableSampler) else (None, None)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mix, _ = self._mix_and_sampler(trainer)
        if mix is not None and trainer.is_global_zero:
            log.info(mix.describe())

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        mix, sampler = self._mix_and_sampler(trainer)
        if mix is None:
            return
        counts = mix.counts(sampler.epoch_indices(trainer.current_epoch))
        if trainer.is_global_zero:
            log.info(mix.describe_counts(counts, trainer.current_epoch))
        total = max(1, sum(counts.values()))
        for name, count in counts.items():  # the same numbers on every rank (synced only to keep DDP's epoch logging uniform)
            pl_module.log(f"data/mix/{name}", count / total, on_step=False, on_epoch=True, sync_dist=True)
