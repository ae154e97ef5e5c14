"""LightningDataModules: EBB! (or any folder of pairs in its layout) and the synthetic stand-in.

Both hand the LightningModule the same batches::

    {"input": (B, 3, H, W) float32 in [-1, 1],   # narrow aperture
     "target": (B, 3, H, W) float32 in [-1, 1],  # wide aperture
     "name": list[str],
     "size": (B, 2) int64,                       # (H, W) to restore with transforms.unpad
     "coc": (B, 1, H, W) float32,                # validation, synthetic data only: blur radius in px
     "subject": (B, 1, H, W) float32}            # with subject=true: the segmenter's matte of the input, [0, 1]

Training batches are random paired crops of ``crop_size`` in a seeded order that a killed run
resumes mid-epoch and that DDP ranks split without overlap (:mod:`bokeh.data.sampling`);
validation batches (batch size 1) are whole images padded (``val_fit="pad"``, the default) or cut
(``"crop"``) to multiples of 8.
Constructor arguments equal the keys of ``conf/data/*.yaml``; constructing does no I/O.
"""

from __future__ import annotations

import os

import warnings

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bokeh.data.pairs import (
    BadPair,
    DataLayoutError,
    OnBadPair,
    Pair,
    PairDataset,
    apply_policy,
    check_pair,
    check_pairs,
    collate_samples,
    list_pairs,
    read_include_list,
    resolve_root,
    select,
)
from bokeh.data.mix import Mix, Source, source_names
from bokeh.data.sampling import ResumableLoader, ResumableSampler
from bokeh.data.synthesize import ensure_dataset
from bokeh.data.synthetic import GENERATOR_VERSION, make_pair, scene_config
from bokeh.data.transforms import MULTIPLE, FitMode
from bokeh.images import jpeg_roundtrip
from bokeh.models.glassnet import MIN_SIDE


def _whole_number(value, what: str, unit: str) -> int | None:
    """``value`` as an int >= 1, or None; anything else (0, 2.5, "abc", true) is a ValueError naming ``what``."""
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if not (number.is_integer() and number >= 1):
        raise ValueError(f"{what} must be a whole number {unit} >= 1 (or null), got {value!r}")
    return int(number)


def _pair_of_ints(value, what: str) -> tuple[int, int] | None:
    if value is None:
        return None
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"{what} must be two integers, got {value}")
    return value


class _PairDataModule(pl.LightningDataModule):
    """Loaders shared by both data modules; subclasses set ``train_set`` and ``val_set`` in ``setup``."""

    def __init__(self, crop_size, flip: bool, batch_size: int, num_workers: int, val_fit: FitMode, on_bad_pair: OnBadPair, seed: int) -> None:
        super().__init__()
        self.crop_size = _pair_of_ints(crop_size, "crop_size")
        if any(c % MULTIPLE for c in self.crop_size) or min(self.crop_size) < MIN_SIDE:
            raise ValueError(f"crop_size must be multiples of {MULTIPLE} (the generator downsamples by 8), at least {MIN_SIDE}, got {self.crop_size}")
        if on_bad_pair not in ("skip", "fail"):
            raise ValueError(f"on_bad_pair must be 'skip' or 'fail', got {on_bad_pair!r}")
        if val_fit not in ("pad", "crop"):
            raise ValueError(f"val_fit must be 'pad' or 'crop', got {val_fit!r}")
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
        self.flip, self.batch_size, self.num_workers = bool(flip), int(batch_size), int(num_workers)
        self.val_fit, self.on_bad_pair, self.seed = val_fit, on_bad_pair, int(seed)
        self.train_set: PairDataset | None = None
        self.val_set: PairDataset | None = None
        self.mix: Mix | None = None  # the sources of train_set and their shares, when it mixes several (set in setup)

    def _loader(self, dataset: PairDataset | None, train: bool) -> DataLoader:
        """Training: a resumable seeded shuffle, split over the DDP ranks (:mod:`bokeh.data.sampling`);
        for a mix of sources (:attr:`mix`), ``mix.epoch_size`` draws by share instead (:mod:`bokeh.data.mix`).
        Validation: every image in order (Lightning adds its distributed sampler under DDP).

        Both loaders own a torch generator, so making their iterators never draws from the global
        RNG: a resumed run's model sees the same random numbers as an uninterrupted one.
        """
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for loaders")
        options = dict(num_workers=self.num_workers, persistent_workers=self.num_workers > 0, generator=torch.Generator().manual_seed(self.seed),
                       collate_fn=collate_samples)
        if not train:
            return DataLoader(dataset, batch_size=1, shuffle=False, **options)
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        by_share = {} if self.mix is None else dict(weights=self.mix.weights(), num_samples=self.mix.epoch_size)
        sampler = ResumableSampler(dataset, seed=self.seed, num_replicas=replicas, rank=rank, **by_share)
        epoch = (lambda: trainer.current_epoch) if trainer is not None else None
        return ResumableLoader(dataset, sampler, epoch, batch_size=self.batch_size, drop_last=len(sampler) >= self.batch_size, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)


class EBBDataModule(_PairDataModule):
    """EBB! pairs (``root/original`` + ``root/bokeh``, or the challenge zip's ``root/Training``).

    Default split: ids ``train_ids = [0, 4399]`` for training and ``val_ids = [4400, 4693]`` for
    validation ("Val294"). ``train_ids: null`` trains on every pair outside ``val_ids`` (also
    non-numeric names: your own pairs); ``include_list`` (one name per line, e.g. the authors'
    cleaned list) restricts training further. Training crops default to the paper's 1024 x 1408.

    Bad pairs (missing partner, unreadable, sizes that differ, smaller than the crop) are found in
    ``setup`` and skipped with a warning and a count (``on_bad_pair="skip"``) or raise
    (``"fail"``); see :mod:`bokeh.data.pairs`.
    """

    def __init__(
        self,
        root: str,
        crop_size: Sequence[int] = (1024, 1408),
        flip: bool = True,
        batch_size: int = 1,
        num_workers: int = 1,
        train_ids: Sequence[int] | None = (0, 4399),
        val_ids: Sequence[int] | None = (4400, 4693),
        include_list: str | None = None,
        on_bad_pair: OnBadPair = "skip",
        val_fit: FitMode = "pad",
        rotate_to_fit: bool = True,
        seed: int = 0,
        subject: bool = False,
        subject_off_share: float = 0.2,
    ) -> None:
        super().__init__(crop_size, flip, batch_size, num_workers, val_fit, on_bad_pair, seed)
        self.root, self.subject, self.subject_off_share = root, bool(subject), float(subject_off_share)
        self.train_ids, self.val_ids = _pair_of_ints(train_ids, "train_ids"), _pair_of_ints(val_ids, "val_ids")
        self.include_list, self.rotate_to_fit = include_list, bool(rotate_to_fit)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None or (stage == "validate" and self.val_set is not None):
            return
        root = resolve_root(self.root)
        pairs, problems = list_pairs(root)
        include = read_include_list(self.include_list) if self.include_list else None
        train = select(pairs, self.train_ids, exclude_ids=self.val_ids, include=include)
        val = select(pairs, self.val_ids) if self.val_ids is not None else []
        if stage == "validate":  # scoring (bokeh.evaluate, trainer.validate) needs no training pairs
            self._setup_validation_only(root, pairs, problems, val)
            return
        wanted = {p.name for p in train} | {p.name for p in val} | _names_in(problems, self.train_ids, self.val_ids)
        apply_policy([p for p in problems if p.name in wanted], self.on_bad_pair, f"pairs under {root}", len(pairs) + len(problems))
        if not train:
            raise DataLayoutError(
                f"no training pairs under {root} with ids {self.train_ids} (of {len(pairs)} pairs found)"
                + (f" named in {self.include_list}" if include else "")
                + "; set data.train_ids=null to train on every pair outside val_ids"
            )
        if not val:
            raise DataLayoutError(f"no validation pairs under {root} with ids {self.val_ids}; set data.val_ids to an id range present in the folder")
        listed, train = train, check_pairs(train, self.crop_size, self.rotate_to_fit, self.on_bad_pair, f"training pairs under {root}")
        if not train and all(getattr(check_pair(p, self.crop_size, self.rotate_to_fit), "kind", None) == "smaller than crop" for p in listed):
            raise ValueError(
                f"crop_size {list(self.crop_size)} is larger than every one of the {len(listed)} training images under {root}: "
                f"lower data.crop_size (multiples of {MULTIPLE})"
            )
        val = check_pairs(val, None, self.rotate_to_fit, self.on_bad_pair, f"validation pairs under {root}")
        if not train or not val:
            raise DataLayoutError(f"no usable {'training' if not train else 'validation'} pairs left under {root} after skipping bad ones (see the warnings)")
        self.train_set = PairDataset(train, self.crop_size, self.flip, rotate_to_fit=self.rotate_to_fit, on_bad_pair=self.on_bad_pair,
                                     subject=self.subject, subject_off_share=self.subject_off_share)
        self.val_set = PairDataset(val, None, fit=self.val_fit, on_bad_pair=self.on_bad_pair, subject=self.subject)

    def _setup_validation_only(self, root, pairs: list, problems: list, val: list) -> None:
        """The validation set alone: the pairs in ``val_ids``, or every pair of the folder when it
        holds none in that range (a folder of pairs to score), said in a warning."""
        if not val and pairs:
            warnings.warn(f"no pairs under {root} with ids {self.val_ids}: scoring all {len(pairs)} pairs of the folder", UserWarning, stacklevel=3)
            val = pairs
        in_range = _names_in(problems, self.val_ids, self.val_ids) if self.val_ids is not None else {p.name for p in problems}
        wanted = {p.name for p in val} | (in_range if val is not pairs else {p.name for p in problems})
        apply_policy([p for p in problems if p.name in wanted], self.on_bad_pair, f"pairs under {root}", len(pairs) + len(problems))
        val = check_pairs(val, None, self.rotate_to_fit, self.on_bad_pair, f"validation pairs under {root}")
        if not val:
            raise DataLayoutError(f"no usable pairs to score under {root} (see the warnings)")
        self.val_set = PairDataset(val, None, fit=self.val_fit, on_bad_pair=self.on_bad_pair, subject=self.subject)


def _names_in(problems: list[BadPair], train_ids, val_ids) -> set[str]:
    """Names of problem files that belong to the chosen split (or any name when a range is open)."""
    names = set()
    for problem in problems:
        pid = int(problem.name) if problem.name.isdigit() else None
        for ids in (train_ids, val_ids):
            if ids is None or (pid is not None and ids[0] <= pid <= ids[1]):
                names.add(problem.name)
    return names


class SyntheticReader:
    """Renders pair ``int(pair.name)`` of a synthetic set on demand (picklable for loader workers)."""

    def __init__(self, seed: int, size: tuple[int, int], noise: float, quality: int | None, scene: dict | None = None) -> None:
        self.seed, self.size, self.noise, self.quality = seed, size, noise, quality
        self.config = scene_config(scene)

    def __call__(self, pair: Pair) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sharp, bokeh, blur radius)`` of the pair, as the cached set stores them."""
        rendered = make_pair(int(pair.name), self.seed, self.size, self.noise, self.config)
        if self.quality is None:
            return rendered.sharp, rendered.bokeh, rendered.blur_radius
        return jpeg_roundtrip(rendered.sharp, self.quality), jpeg_roundtrip(rendered.bokeh, self.quality), rendered.blur_radius


class SyntheticDataModule(_PairDataModule):
    """The embedded default data: ``n`` synthetic pairs of ``size`` (:mod:`bokeh.data.synthetic`).

    ``photo_pairs`` (a folder or a list of folders of pairs) are mixed in by sampling: each training
    sample comes from the photo pairs with probability ``photo_share`` (split between the folders in
    proportion to ``photo_weights``), else from the synthetic pairs, whatever the folders' sizes
    (:mod:`bokeh.data.mix`; :attr:`mix` says the sources and shares). An epoch is then ``epoch_size``
    draws (null: the synthetic training pairs / (1 - photo_share), so each scene is drawn about once
    per epoch). Without photo pairs an epoch is every training pair once, shuffled, and
    ``photo_share``, ``photo_weights`` and ``epoch_size`` do nothing.

    Ids ``0 .. n - 1``; the last ``val_count`` are validation. By default the set is written
    once (in ``prepare_data``) as JPEGs in the EBB! layout under
    ``cache_dir/synthetic-v<version>-n<n>-<H>x<W>-seed<seed>-noise<noise>-q<quality>`` and read
    back through the same code as EBB!; a later run with the same settings reuses it. With
    ``on_the_fly=True`` nothing is written: every item is rendered when it is loaded (the same
    pixels as the cached JPEGs, JPEG artefacts included). ``subject=True``: every item carries the
    segmenter's matte of its input (``"subject"``; :mod:`bokeh.data.subject`): cached under each
    ``photo_pairs`` folder's ``subject/`` (written once, at setup), computed when loaded for the
    synthetic scenes.
    """

    def __init__(
        self,
        n: int = 200,
        size: Sequence[int] = (256, 384),
        val_count: int = 8,
        crop_size: Sequence[int] = (128, 192),
        flip: bool = True,
        batch_size: int = 4,
        num_workers: int = 0,
        seed: int = 0,
        noise: float = 0.01,
        quality: int = 95,
        cache_dir: str = "outputs/data",
        on_the_fly: bool = False,
        val_fit: FitMode = "pad",
        on_bad_pair: OnBadPair = "skip",
        scene: dict | None = None,
        photo_pairs: str | Sequence[str] | None = None,
        photo_share: float = 0.5,
        photo_weights: Sequence[float] | None = None,
        epoch_size: int | None = None,
        focus_auto_share: float = 0.3,
        subject: bool = False,
        subject_off_share: float = 0.2,
    ) -> None:
        super().__init__(crop_size, flip, batch_size, num_workers, val_fit, on_bad_pair, seed)
        self.subject, self.subject_off_share = bool(subject), float(subject_off_share)
        if not 0.0 <= float(photo_share) < 1.0:
            raise ValueError(f"photo_share must be in [0, 1), got {photo_share}")
        if not 0.0 <= float(focus_auto_share) <= 1.0:
            raise ValueError(f"focus_auto_share must be in [0, 1], got {focus_auto_share}")
        self.photo_pairs = photo_folders(photo_pairs)
        self.photo_share, self.focus_auto_share = float(photo_share), float(focus_auto_share)
        weights = [1.0] * len(self.photo_pairs) if photo_weights is None else [float(w) for w in photo_weights]
        if not self.photo_pairs:  # photo pairs switched off (data.photo_pairs=null): their weights have nothing to share
            weights = []
        if len(weights) != len(self.photo_pairs) or any(not w > 0 for w in weights):
            raise ValueError(f"photo_weights must give one positive weight per photo_pairs folder ({len(self.photo_pairs)}), got {photo_weights}")
        self.photo_weights = weights
        self.epoch_size = _whole_number(epoch_size, "data.epoch_size", "of samples")
        # plain values (a Hydra list becomes a list): the set's folder name hashes them as JSON
        self.scene = {str(k): list(v) if isinstance(v, Sequence) and not isinstance(v, str) else v for k, v in dict(scene or {}).items()}
        scene_config(self.scene)  # unknown keys fail at construction
        self.size = _pair_of_ints(size, "size")
        if not 1 <= int(val_count) < int(n):
            raise ValueError(f"val_count must be in 1..n-1 (n={n}), got {val_count}")
        if self.crop_size[0] > self.size[0] or self.crop_size[1] > self.size[1]:
            raise ValueError(f"crop_size {list(self.crop_size)} is larger than the synthetic images' size {list(self.size)}: lower data.crop_size or raise data.size")
        self.n, self.val_count, self.noise, self.quality = int(n), int(val_count), float(noise), int(quality)
        self.cache_dir, self.on_the_fly = cache_dir, bool(on_the_fly)

    @property
    def folder(self) -> Path:
        """Where the cached set lives (or will)."""
        h, w = self.size
        scene = "" if not self.scene else "-scene" + hashlib.sha1(json.dumps(self.scene, sort_keys=True).encode()).hexdigest()[:8]
        return Path(self.cache_dir) / f"synthetic-v{GENERATOR_VERSION}-n{self.n}-{h}x{w}-seed{self.seed}-noise{self.noise:g}-q{self.quality}{scene}"

    def prepare_data(self) -> None:
        if not self.on_the_fly:
            ensure_dataset(self.folder, n=self.n, size=self.size, seed=self.seed, noise=self.noise, quality=self.quality, scene=self.scene)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        split = self.n - self.val_count
        if self.on_the_fly:
            pairs = [Pair(str(i), Path(f"<synthetic seed={self.seed}>/original/{i}"), Path(f"<synthetic seed={self.seed}>/bokeh/{i}")) for i in range(self.n)]
            reader = SyntheticReader(self.seed, self.size, self.noise, self.quality, self.scene)
        else:
            self.prepare_data()  # no-op when the set exists; needed when setup runs without prepare_data
            pairs, problems = list_pairs(self.folder)
            apply_policy(problems, self.on_bad_pair, f"synthetic set {self.folder}", self.n)
            reader = None
        train = select(pairs, (0, split - 1))
        val = select(pairs, (split, self.n - 1))
        if self.photo_pairs:
            if reader is not None:
                raise ValueError("data.photo_pairs needs the cached synthetic set: set data.on_the_fly=false")
            train = train + self._photo_training_pairs(len(train))
        self.train_set = PairDataset(train, self.crop_size, self.flip, on_bad_pair=self.on_bad_pair, reader=reader,
                                     focus_auto_share=self.focus_auto_share, subject=self.subject,
                                     subject_off_share=self.subject_off_share)
        self.val_set = PairDataset(val, None, fit=self.val_fit, on_bad_pair=self.on_bad_pair, reader=reader, subject=self.subject)

    def _photo_training_pairs(self, synthetic_count: int) -> list[Pair]:
        """The pairs under the ``photo_pairs`` folders (e.g. made by :mod:`bokeh.data.photo_pairs`), each
        once; sets :attr:`mix`, which draws ``photo_share`` of the samples from them, shared between
        the folders by ``photo_weights``, and the rest from the ``synthetic_count`` synthetic pairs
        before them (:mod:`bokeh.data.mix`)."""
        chosen, found = [], []
        for folder, weight in zip(self.photo_pairs, self.photo_weights):
            root = resolve_root(folder)
            if self.subject:  # the segmenter's mattes, computed once and cached with the set
                from bokeh.data.subject import cache_subject_mattes

                cache_subject_mattes(root)
            photos, problems = list_pairs(root)
            apply_policy(problems, self.on_bad_pair, f"photo pairs under {root}", len(photos) + len(problems))
            photos = check_pairs(photos, self.crop_size, True, self.on_bad_pair, f"photo pairs under {root}")
            if not photos:
                raise DataLayoutError(f"no usable photo pairs under {root} (data.photo_pairs): make them with python -m bokeh.data.photo_pairs")
            share = weight / sum(self.photo_weights)
            chosen += photos
            found.append((len(photos), self.photo_share * share))
        sources = [Source("synthetic", str(self.folder), synthetic_count, 1.0 - self.photo_share)]
        sources += [Source(name, folder, pairs, share) for name, folder, (pairs, share) in zip(source_names(self.photo_pairs), self.photo_pairs, found)]
        epoch_size = self.epoch_size if self.epoch_size is not None else round(synthetic_count / (1.0 - self.photo_share))
        self.mix = Mix(tuple(sources), epoch_size)
        return chosen


def photo_folders(photo_pairs: str | Sequence[str] | None) -> list[str]:
    """``data.photo_pairs`` as a list of folders: none, one path, or a list of paths."""
    if photo_pairs is None or photo_pairs == "":
        return []
    if isinstance(photo_pairs, (str, Path)):
        return [str(photo_pairs)]
    folders = [str(p) for p in photo_pairs]
    from bokeh.options import first_repeat

    repeat = first_repeat(folders, same=lambda folder: os.path.realpath(os.path.expanduser(folder)))
    if repeat:  # one folder twice would draw its pairs with twice the weight, unsaid
        from bokeh.data.pairs import DataLayoutError

        again = f" ({repeat[1]} is the same folder)" if repeat[0] != repeat[1] else ""
        raise DataLayoutError(f"data.photo_pairs lists {repeat[0]} twice{again}: list each folder once "
                              f"(data.photo_weights sets how often each is drawn)")
    return folders
