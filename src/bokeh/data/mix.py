"""A training set mixed from several sources (synthetic scenes, folders of photo pairs) by share.

The training set is the sources' pairs one after another, each pair once. Sampling, not repetition,
makes the mix: every draw of an epoch picks source ``s`` with probability ``share_s`` and then one of
its pairs uniformly, i.e. item ``i`` of source ``s`` has the per-sample weight ``share_s / pairs_s``
(:meth:`Mix.weights`, what :class:`torch.utils.data.WeightedRandomSampler` takes; drawn with
replacement by :class:`bokeh.data.sampling.ResumableSampler`). A folder larger than its share is
subsampled, a smaller one repeated: the realised shares are the configured ones up to sampling noise
(binomial: ``sqrt(share * (1 - share) / epoch_size)``).

Pure data: no I/O, no Lightning.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Source:
    """One source of training pairs.

    Attributes:
        name: short name, also the metric key ``data/mix/<name>`` (``synthetic``, or a folder's name).
        where: what it is (the folder, or the synthetic set's folder) for the log line.
        pairs: how many training pairs it holds (>= 1).
        share: the fraction of the training samples drawn from it, in [0, 1].
    """

    name: str
    where: str
    pairs: int
    share: float


@dataclass(frozen=True)
class Mix:
    """Sources laid end to end in the training set, their shares, and the samples per epoch.

    Raises:
        ValueError: no source, a source without pairs, a share outside [0, 1], shares that do not
            sum to 1, or an epoch shorter than 1 sample.
    """

    sources: tuple[Source, ...]
    epoch_size: int

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a data mix needs at least one source")
        for source in self.sources:
            if source.pairs < 1:
                raise ValueError(f"source {source.name} ({source.where}) has no training pairs")
            if not 0.0 <= source.share <= 1.0:
                raise ValueError(f"source {source.name} has share {source.share}, outside [0, 1]")
        total = sum(s.share for s in self.sources)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the shares of a data mix must sum to 1, got {total:g}")
        if int(self.epoch_size) < 1:
            raise ValueError(f"epoch_size must be >= 1, got {self.epoch_size}")

    @property
    def size(self) -> int:
        """Pairs in the training set (every source's pairs once)."""
        return sum(s.pairs for s in self.sources)

    def weights(self) -> list[float]:
        """Per-sample weights in training-set order: ``share / pairs`` of the item's source (sum 1)."""
        return [s.share / s.pairs for s in self.sources for _ in range(s.pairs)]

    def source_of(self, indices: Iterable[int]) -> list[str]:
        """The source name of each training-set index."""
        bounds, names, start = [], [], 0
        for s in self.sources:
            start += s.pairs
            bounds.append(start)
            names.append(s.name)
        out = []
        for index in indices:
            if not 0 <= index < start:
                raise IndexError(f"index {index} outside the training set of {start} pairs")
            out.append(names[next(k for k, end in enumerate(bounds) if index < end)])
        return out

    def counts(self, indices: Iterable[int]) -> dict[str, int]:
        """How many of ``indices`` (training-set indices, e.g. one epoch's draws) come from each source,
        every source named (0 where none)."""
        found = Counter(self.source_of(indices))
        return {s.name: found.get(s.name, 0) for s in self.sources}

    def describe(self) -> str:
        """One line: each source, its pairs, its share, and the epoch's samples."""
        parts = [f"{s.name} ({s.where}): {s.pairs} pairs, share {s.share:.3f}" for s in self.sources]
        return f"data mix, {self.epoch_size} samples per epoch drawn by share: " + "; ".join(parts)

    def describe_counts(self, counts: dict[str, int], epoch: int) -> str:
        """One line: the samples each source gave in ``epoch`` and their realised shares."""
        total = max(1, sum(counts.values()))
        parts = [f"{name} {count} ({count / total:.3f})" for name, count in counts.items()]
        return f"data mix drawn for epoch {epoch}: " + ", ".join(parts)


def source_names(wheres: Sequence[str], reserved: Sequence[str] = ("synthetic",)) -> list[str]:
    """Short unique names for folders (their last component, odd characters as ``_``); a name
    that repeats, or equals a ``reserved`` one, gets ``_<k>`` (its position in ``wheres``) appended."""
    bases = [re.sub(r"[^A-Za-z0-9_.-]", "_", str(w).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]) or "photos" for w in wheres]
    taken = Counter(bases)
    return [f"{b}_{k}" if taken[b] > 1 or b in reserved else b for k, b in enumerate(bases)]
