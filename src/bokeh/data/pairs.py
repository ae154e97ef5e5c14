"""Folders of image pairs in the EBB! layout: find the pairs, check them, read them as a Dataset.

Layout: ``<root>/original/<name>.<ext>`` (narrow aperture) and ``<root>/bokeh/<name>.<ext>``
(wide aperture), paired by file name without extension; the challenge zip's
``<root>/Training/original`` and ``<root>/Training/bokeh`` are found too. Synthetic sets also have
``<root>/coc/<name>.png``, the blur radius of each pixel (:mod:`bokeh.data.coc`): validation items
then carry it, for the in-focus / defocus split of the metrics.

Bad input is either converted (grayscale, opaque RGBA, 16-bit: :func:`bokeh.images.read_rgb`) or
reported as a :class:`BadPair` naming the file and the reason. The policy ``on_bad_pair`` decides
what a report does: ``"skip"`` warns (:class:`BadPairWarning`) and leaves the pair out, ``"fail"``
raises :class:`BadPairError`. Cheap checks run when the pairs are listed (missing partner, a
photo format that cannot be decoded here such as HEIC, unreadable or truncated file, a header
claiming more pixels than :func:`bokeh.images.max_pixels`, sizes that differ, an image smaller
than the crop or, for validation, than the smallest input Glass-Net takes); decoding errors found
later, in ``__getitem__``, follow the same policy.
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from bokeh.data.coc import read_coc
from bokeh.data.folders import unfinished_set_reason
from bokeh.data.focus import UNKNOWN, in_focus_region, interior_point, matte_target, sample_point
from bokeh.data.layout import COC_DIR, F_NUMBERS, FOCAL_DIR, INPUT_DIR, LAYOUT, SUBJECT_DIR, TARGET_DIR
from bokeh.data.transforms import FitMode, fit_for_eval, fit_map, fits, paired_train_crop, to_pair_tensors
from bokeh import images
from bokeh.images import ImageError, is_known_image_type, read_rgb, read_size, unsupported_reason
from bokeh.models.controls import NO_FOCUS, REFERENCE_F_NUMBER
from bokeh.models.glassnet import MIN_SIDE

OnBadPair = Literal["skip", "fail"]


class DataLayoutError(FileNotFoundError):
    """The data folder is missing, empty or not in the EBB! layout."""


class BadPairError(ValueError):
    """A pair that cannot be used, under ``on_bad_pair="fail"``."""


class BadPairWarning(UserWarning):
    """A pair left out under ``on_bad_pair="skip"``."""


@dataclass(frozen=True)
class Pair:
    """One example: the narrow-aperture input and the wide-aperture target with the same name."""

    name: str
    original: Path
    bokeh: Path
    coc: Path | None = None  # per-pixel blur radius map, where the data has one (synthetic sets)
    focal: Path | None = None  # mask of the in-focus subject (white = in focus), where the data has one
    f_number: float | None = None  # the target's f-number where the set records it (None: f/1.8, EBB!'s)
    subject: Path | None = None  # the segmenter's subject matte of the input, where the set caches one (bokeh.data.subject)


@dataclass(frozen=True)
class BadPair:
    """A pair that cannot be used: which file and why."""

    name: str
    path: Path
    reason: str
    kind: str = "unreadable"  # short category for the summary count

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def resolve_root(root: str | Path) -> Path:
    """The folder holding ``original/`` and ``bokeh/``: ``root`` itself or ``root/Training``.

    Raises:
        DataLayoutError: with a sentence saying what layout is expected.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataLayoutError(f"data folder {root} does not exist; {LAYOUT}")
    for candidate in (root, root / "Training"):
        if (candidate / INPUT_DIR).is_dir() and (candidate / TARGET_DIR).is_dir():
            unfinished = unfinished_set_reason(candidate)  # a generated set is what its meta.json says, or refused
            if unfinished:
                raise DataLayoutError(unfinished)
            return candidate
    found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:8]
    raise DataLayoutError(f"{root} has no {INPUT_DIR}/ and {TARGET_DIR}/ folders (it holds: {', '.join(found) or 'nothing'}); {LAYOUT}")


def name_key(name: str) -> tuple:
    """Sort key: numeric names in numeric order (``2`` before ``10``), then the others."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def name_id(name: str) -> int | None:
    """The integer id of a numeric name (``"4400"`` -> 4400), else ``None``."""
    return int(name) if name.isdigit() else None


def list_pairs(root: str | Path) -> tuple[list[Pair], list[BadPair]]:
    """All pairs under ``root`` by name, and the files that have no partner.

    Raises:
        DataLayoutError: wrong layout, or no images in ``original/``.
    """
    root = resolve_root(root)
    sides, problems, undecodable = [], [], {}
    for folder in (INPUT_DIR, TARGET_DIR):
        files: dict[str, Path] = {}
        for path in sorted((root / folder).iterdir()):
            if not is_known_image_type(path) or path.name.startswith("."):
                continue
            reason = unsupported_reason(path)
            if reason is not None:  # a photo, in a format not decoded here (HEIC, raw): one report per name
                undecodable.setdefault(path.stem, BadPair(path.stem, path, f"{reason[0]}; {reason[1]}", "format not readable"))
                continue
            if path.stem in files:
                problems.append(BadPair(path.stem, path, f"two files named {path.stem} in {folder}/ ({files[path.stem].name} and {path.name}): keep one", "duplicate"))
                continue
            files[path.stem] = path
        sides.append(files)
    originals, targets = sides
    problems += [undecodable[name] for name in sorted(undecodable, key=name_key)]
    if not originals and not undecodable:
        raise DataLayoutError(f"no images in {root / INPUT_DIR}; {LAYOUT}")
    for name in sorted(originals.keys() - targets.keys() - undecodable.keys(), key=name_key):
        problems.append(BadPair(name, originals[name], f"no partner {TARGET_DIR}/{name}.* for this {INPUT_DIR}/ image", "missing partner"))
    for name in sorted(targets.keys() - originals.keys() - undecodable.keys(), key=name_key):
        problems.append(BadPair(name, targets[name], f"no partner {INPUT_DIR}/{name}.* for this {TARGET_DIR}/ image", "missing partner"))
    duplicates = {p.name for p in problems if p.kind == "duplicate"}
    names = sorted((originals.keys() & targets.keys()) - duplicates - undecodable.keys(), key=name_key)
    coc_dir, focal_dir = root / COC_DIR, root / FOCAL_DIR
    coc = {n: coc_dir / f"{n}.png" for n in names if (coc_dir / f"{n}.png").is_file()} if coc_dir.is_dir() else {}
    focal = {}
    if focal_dir.is_dir():
        for path in focal_dir.iterdir():
            if path.stem in originals and is_known_image_type(path) and not path.name.startswith("."):
                focal.setdefault(path.stem, path)
    f_numbers = read_f_numbers(root)
    subject_dir = root / SUBJECT_DIR
    subject = {n: subject_dir / f"{n}.png" for n in names if (subject_dir / f"{n}.png").is_file()} if subject_dir.is_dir() else {}
    return [Pair(n, originals[n], targets[n], coc.get(n), focal.get(n), f_numbers.get(n), subject.get(n)) for n in names], problems


def read_f_numbers(root: Path) -> dict[str, float]:
    """``root/f_numbers.json`` (name -> the target's f-number) or ``{}`` where the set has none.

    Raises:
        DataLayoutError: the file exists but is not a JSON object of positive numbers.
    """
    path = root / F_NUMBERS
    if not path.is_file():
        return {}
    try:
        values = json.loads(path.read_text())
        values = {str(k): float(v) for k, v in values.items()}
    except (ValueError, TypeError, AttributeError, OSError) as error:
        raise DataLayoutError(f"{path}: not a JSON object of name -> f-number ({error}); fix or delete the file") from None
    bad = [k for k, v in values.items() if not (math.isfinite(v) and v > 0)]
    if bad:
        raise DataLayoutError(f"{path}: f-number of {bad[0]!r} is {values[bad[0]]}, not a positive number; fix or delete the file")
    return values


def read_include_list(path: str | Path) -> set[str]:
    """Names (without extension) listed one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"include list {path} does not exist (expected a text file with one image name per line, e.g. 0.jpg)")
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(Path(line).stem)
    if not names:
        raise ValueError(f"include list {path} names no images")
    return names


def select(pairs: Iterable[Pair], ids: Sequence[int] | None = None, exclude_ids: Sequence[int] | None = None, include: set[str] | None = None) -> list[Pair]:
    """Pairs whose numeric id lies in the inclusive range ``ids = (first, last)`` (``None``: all
    names, numeric or not), outside ``exclude_ids`` (a range), and named in ``include`` if given."""
    chosen = []
    for pair in pairs:
        pid = name_id(pair.name)
        if ids is not None and (pid is None or not ids[0] <= pid <= ids[1]):
            continue
        if exclude_ids is not None and pid is not None and exclude_ids[0] <= pid <= exclude_ids[1]:
            continue
        if include is not None and pair.name not in include:
            continue
        chosen.append(pair)
    return chosen


def check_pair(pair: Pair, crop: tuple[int, int] | None = None, rotate_to_fit: bool = True) -> BadPair | None:
    """Header-level checks of one pair (fast: no full decode unless a JPEG looks truncated).

    Finds: unreadable / corrupt / truncated / too large (:func:`bokeh.images.max_pixels`) files,
    sizes that differ, and with ``crop`` images smaller than the crop (also when turned by 90
    degrees if ``rotate_to_fit``), without it (whole validation images) images with a side under
    :data:`~bokeh.models.glassnet.MIN_SIDE`, which Glass-Net's instance norm cannot take.
    """
    sizes = []
    for path in (pair.original, pair.bokeh):
        try:
            sizes.append(read_size(path))
        except ImageError as error:
            return BadPair(pair.name, path, error.reason, "unreadable")
    if sizes[0] != sizes[1]:
        return BadPair(pair.name, pair.bokeh, f"size {_hw(sizes[1])} differs from its original's {_hw(sizes[0])}: the pair is not aligned", "size mismatch")
    if crop is not None and not (fits(sizes[0], crop) or (rotate_to_fit and fits(sizes[0][::-1], crop))):
        return BadPair(pair.name, pair.original, f"image of {_hw(sizes[0])} is smaller than the crop {_hw(crop)}: lower crop_size or remove the pair", "smaller than crop")
    if crop is None and min(sizes[0]) < MIN_SIDE:
        return BadPair(pair.name, pair.original, f"image of {_hw(sizes[0])} is smaller than {MIN_SIDE}x{MIN_SIDE}, the smallest image Glass-Net takes: remove the pair", "too small")
    return None


def _hw(size: Sequence[int]) -> str:
    return f"{size[0]}x{size[1]}"


def apply_policy(problems: list[BadPair], on_bad_pair: OnBadPair, context: str, total: int) -> None:
    """Raise (``"fail"``) or warn once per problem and once with a count (``"skip"``)."""
    if not problems:
        return
    if on_bad_pair == "fail":
        listing = "\n  ".join(str(p) for p in problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise BadPairError(f"{len(problems)} bad pair(s) in {context} (on_bad_pair=fail; use on_bad_pair=skip to leave them out):\n  {listing}")
    if on_bad_pair != "skip":
        raise ValueError(f"on_bad_pair must be 'skip' or 'fail', got {on_bad_pair!r}")
    for problem in problems:
        warnings.warn(f"skipping pair {problem.name}: {problem}", BadPairWarning, stacklevel=3)
    counts = ", ".join(f"{n} {kind}" for kind, n in Counter(p.kind for p in problems).most_common())
    warnings.warn(f"{context}: skipped {len(problems)} of {total} pairs ({counts})", BadPairWarning, stacklevel=3)


def check_pairs(pairs: list[Pair], crop: tuple[int, int] | None, rotate_to_fit: bool, on_bad_pair: OnBadPair, context: str) -> list[Pair]:
    """:func:`check_pair` for each pair; the good ones, after applying the policy to the rest."""
    good, problems = [], []
    for pair in pairs:
        problem = check_pair(pair, crop, rotate_to_fit)
        (problems.append(problem) if problem else good.append(pair))
    apply_policy(problems, on_bad_pair, context, len(pairs))
    return good


Sample = dict  # {"input": (3, h, w), "target": (3, h, w), "name": str, "size": (2,) int64, "focus": (2,), "aperture": (1,),
#                 "matte": (1, h, w) in {0, 1} or UNKNOWN (-1) [, "coc": (1, h, w)] [, "subject": (1, h, w) in [0, 1]]}
#: An optional per-pixel map a sample may lack, and what its absence means as a fill value: blur
#: radii unknown (NaN: no pixel counts as in focus), no subject prior (0)
ABSENT_MAPS = {"coc": float("nan"), "subject": 0.0}


def collate_samples(samples: list[Sample]) -> dict:
    """``default_collate`` for a batch drawn from several sources: a sample lacking an optional map
    of :data:`ABSENT_MAPS` that others carry (photo pairs without ``coc/`` beside synthetic scenes)
    gets it filled with what its absence means, ``(1, h, w)`` at its own size, instead of a
    ``KeyError`` (or the map silently dropped from the batch, when the first sample lacks it).
    Every other key must be in every sample."""
    from torch.utils.data import default_collate

    for key, fill in ABSENT_MAPS.items():
        if any(key in s for s in samples) and not all(key in s for s in samples):
            samples = [s if key in s else {**s, key: torch.full((1, *s["input"].shape[-2:]), fill)} for s in samples]
    return default_collate(samples)


Reader = Callable[[Pair], tuple]  # pair -> (original, bokeh) or (original, bokeh, blur radius or None)


class PairDataset(Dataset):
    """Pairs read from files, as training crops (``crop`` given) or whole validation images.

    Each item is ``{"input": (3, h, w), "target": (3, h, w)`` float32 in [-1, 1], ``"name": str,
    "size": (2,) int64}``. ``size`` is the image size to restore with
    :func:`bokeh.data.transforms.unpad` (for crops: the crop size). Training items: the same
    random ``crop = (h, w)`` window of both images, flipped left-right together with ``flip``.
    Validation items (``crop=None``): the whole pair fitted to multiples of 8 by ``fit``. Where the
    pair has a blur-radius map (``pair.coc``, or a third array from ``reader``), both kinds of item
    also carry ``"coc": (1, h, w)`` float32, the radius in pixels, cropped or fitted like the images.
    Every item carries ``"matte": (1, h, w)`` float32, what the model's matte should be
    (:func:`bokeh.data.focus.matte_target`: 1 in focus, 0 not), :data:`bokeh.data.focus.UNKNOWN`
    everywhere for a pair that knows neither its blur radii nor a subject mask. With ``subject``,
    every item also carries ``"subject": (1, h, w)`` float32 in [0, 1], the segmenter's matte of
    the whole input (``pair.subject``, cached, or computed now: :mod:`bokeh.data.subject`), cropped,
    turned, flipped or fitted with the images; ``subject_off_share`` of the training items get an
    all-zero plane instead (no subject prior: the model must still render sensibly without one).

    A pair that fails to decode is reported by ``on_bad_pair``: ``"fail"`` raises
    :class:`BadPairError`; ``"skip"`` warns and returns the next good pair instead.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        crop: tuple[int, int] | None = None,
        flip: bool = False,
        fit: FitMode = "pad",
        rotate_to_fit: bool = True,
        on_bad_pair: OnBadPair = "skip",
        reader: Reader | None = None,
        focus_auto_share: float = 0.3,
        subject: bool = False,
        subject_off_share: float = 0.0,
    ) -> None:
        if not pairs:
            raise ValueError("PairDataset needs at least one pair")
        if not 0.0 <= focus_auto_share <= 1.0:
            raise ValueError(f"focus_auto_share must be in [0, 1], got {focus_auto_share}")
        self.focus_auto_share = float(focus_auto_share)
        self.pairs = list(pairs)
        self.crop = tuple(crop) if crop is not None else None
        self.flip, self.fit, self.rotate_to_fit, self.on_bad_pair = flip, fit, rotate_to_fit, on_bad_pair
        self.reader = reader or read_pair
        self.subject = bool(subject)
        if not 0.0 <= subject_off_share <= 1.0:
            raise ValueError(f"subject_off_share must be in [0, 1], got {subject_off_share}")
        self.subject_off_share = float(subject_off_share)
        self.skipped: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        """Item ``key``: an index (random crops from the global torch RNG), or ``(index, crop_seed)``
        from :class:`~bokeh.data.sampling.ResumableSampler` (crop and flip drawn from ``crop_seed``
        alone, so the item is the same in any process and after a resume)."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        if not -len(self.pairs) <= index < len(self.pairs):
            raise IndexError(f"index {index} out of range for {len(self.pairs)} pairs")  # ends iteration
        for attempt in range(len(self.pairs)):
            pair = self.pairs[(index + attempt) % len(self.pairs)]
            if pair.name in self.skipped:
                continue
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            try:
                return self.make_sample(pair, *self.reader(pair), generator=generator)
            except (ImageError, ValueError) as error:
                if self.on_bad_pair == "fail":
                    raise BadPairError(f"pair {pair.name}: {error} (on_bad_pair=fail)") from error
                self.skipped[pair.name] = str(error)
                warnings.warn(f"skipping pair {pair.name}: {error} ({len(self.skipped)} skipped while loading so far)", BadPairWarning, stacklevel=2)
        raise BadPairError(f"no readable pair left among {len(self.pairs)}: see the warnings above")

    def make_sample(self, pair: Pair, original: np.ndarray, bokeh: np.ndarray, coc: np.ndarray | None = None,
                    generator: torch.Generator | None = None) -> Sample:
        """Crop (random window and flip from ``generator``, default the global RNG) or fit one decoded
        pair (``(H, W, 3)`` ``uint8`` each; ``coc`` ``(H, W)`` radii in px, or ``None`` to read
        ``pair.coc`` if there is one) into a sample dict."""
        if original.shape != bokeh.shape:
            raise ValueError(f"{pair.bokeh}: size {_hw(bokeh.shape)} differs from its original's {_hw(original.shape)}")
        if coc is None and pair.coc is not None:
            coc = read_coc(pair.coc)
        if coc is not None and coc.shape != original.shape[:2]:
            raise ValueError(f"{pair.coc}: CoC map of {_hw(coc.shape)} does not match its image's {_hw(original.shape)}")
        mask = read_mask(pair.focal, original.shape[:2]) if pair.focal is not None else None
        subject = None
        if self.subject:  # the segmenter's matte of the whole input, before the crop
            from bokeh.data.subject import read_subject, subject_matte

            subject = read_subject(pair.subject, original.shape[:2]) if pair.subject is not None else subject_matte(original)
        # the maps that travel with the images through crop and flip: blur radius and subject mask (then the subject matte)
        maps = [m.astype(np.float32) for m in (coc, mask) if m is not None]
        if subject is not None:
            maps.append(subject)
        if self.crop is not None:
            if not (fits(original.shape[:2], self.crop) or (self.rotate_to_fit and fits(original.shape[1::-1], self.crop))):
                raise ValueError(f"{pair.original}: image of {_hw(original.shape)} is smaller than the crop {_hw(self.crop)}")
            extra = np.stack(maps, -1) if maps else None  # (H, W, k)
            original, bokeh, *rest = paired_train_crop(original, bokeh, self.crop, self.flip, self.rotate_to_fit, generator, extra)
            image, target = to_pair_tensors(original, bokeh)
            size = self.crop
            maps = [np.ascontiguousarray(rest[0][..., i]) for i in range(len(maps))] if rest else []
            radius = torch.from_numpy(maps[0])[None] if coc is not None else None
            subject_plane = torch.from_numpy(maps.pop())[None] if subject is not None else None
            if subject_plane is not None and self.subject_off_share > 0 and bool(torch.rand((), generator=generator) < self.subject_off_share):
                subject_plane = torch.zeros_like(subject_plane)  # subject=off: no prior
        else:
            image, target, size = fit_for_eval(original, bokeh, self.fit)
            radius = fit_map(coc, self.fit) if coc is not None else None
            subject_plane = fit_map(maps.pop(), self.fit) if subject is not None else None
        cut_mask, cut_coc = (maps[-1] if mask is not None else None), (maps[0] if coc is not None else None)
        region = in_focus_region(cut_mask, cut_coc)
        wanted = matte_target(cut_mask, cut_coc)  # what the matte should be, (h, w) or None
        if self.crop is not None:
            matte = torch.from_numpy(wanted)[None] if wanted is not None else torch.full((1, *self.crop), UNKNOWN)
        else:
            matte = fit_map(wanted, self.fit) if wanted is not None else torch.full((1, *image.shape[-2:]), UNKNOWN)
        if self.crop is not None:
            focus = sample_point(region, generator, self.focus_auto_share)
        else:  # evaluation: the point deepest inside the in-focus region, the same on every run
            focus = (interior_point(region) if region is not None else None) or NO_FOCUS
            if focus != NO_FOCUS:  # fractions of the unpadded image -> of the padded tensor
                focus = (focus[0] * size[1] / image.shape[-1], focus[1] * size[0] / image.shape[-2])
        sample = {"input": image, "target": target, "name": pair.name, "size": torch.tensor(size, dtype=torch.int64),
                  "focus": torch.tensor(focus, dtype=torch.float32),
                  "aperture": torch.tensor([pair.f_number or REFERENCE_F_NUMBER], dtype=torch.float32), "matte": matte}
        if radius is not None:
            sample["coc"] = radius
        if subject_plane is not None:
            sample["subject"] = subject_plane
        return sample


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A subject mask as ``(H, W)`` ``uint8`` 0/255 of the pair's ``size``: white = in focus, or the
    alpha of a cut-out (:func:`bokeh.images.read_mask`).

    Raises:
        ValueError: a mask whose size differs from its pair's (names the file).
    """
    mask = np.where(images.read_mask(path), 255, 0).astype(np.uint8)
    if mask.shape != tuple(size):
        raise ValueError(f"{path}: subject mask of {_hw(mask.shape)} does not match its image's {_hw(size)}")
    return mask


def read_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """Both images of a pair as ``(H, W, 3)`` ``uint8`` RGB (conversions: :func:`bokeh.images.read_rgb`)."""
    return read_rgb(pair.original), read_rgb(pair.bokeh)

