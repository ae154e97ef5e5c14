"""Folders of real photo pairs for the real-pair benchmark: find the pairs, read them, find a subject point.

A *set* is a folder with ``original/`` (the narrow-aperture shots, f/16 in EBB!) and one or more
target folders, paired with ``original/`` by file name without extension:

* ``bokeh/``: the EBB! layout; its targets are taken at f/``bokeh_aperture`` (1.8, EBB!'s lens,
  unless the caller says otherwise);
* ``f<number>/`` (``f8/``, ``f2.8/``, ``f1.8/``): the multi-aperture layout (VABD): one input,
  one target per f-number, read from the folder's name;
* ``focal/`` (optional): a subject mask per photo, white = the subject the target keeps in focus
  (any image type; gray values are thresholded at half), or a cut-out whose alpha marks the subject.

The root given to :func:`list_real_pairs` is a set or a folder whose subfolders are sets (such as
a folder holding ``ebb/`` and ``vabd/``). Every pair is a :class:`RealPair`; a folder that is not
in this layout, a target or mask without its input, an input without any target, two files of one
name or images of different sizes raise :class:`~bokeh.data.pairs.DataLayoutError` with one
sentence naming the file and what to do.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from bokeh.data.focus import interior_point  # noqa: F401  (the tap of a real pair; re-exported)
from bokeh.data.layout import FOCAL_DIR, INPUT_DIR, TARGET_DIR
from bokeh.data.folders import unfinished_set_reason
from bokeh.data.pairs import DataLayoutError, name_key
from bokeh.images import ImageError, SameStemError, images_by_stem, is_known_image_type, read_mask, read_size  # noqa: F401  (read_mask: re-exported)
from bokeh.models.controls import ControlError, check_aperture

MASK_DIR = FOCAL_DIR  # optional subject masks, white = in focus
EBB_APERTURE = 1.8  # f-number of EBB!'s wide-aperture shots (Canon 7D, 50 mm f/1.8)
APERTURE_DIR = re.compile(r"^f(\d+(?:\.\d+)?)$")  # f8, f2.8, f1.8
REAL_LAYOUT = (
    "expected <set>/original/<name>.jpg with targets in <set>/bokeh/ (f/1.8) or <set>/f<number>/ (e.g. f2.8/), "
    "optional subject masks in <set>/focal/ (white = in focus), or a folder of such sets"
)


@dataclass(frozen=True)
class RealPair:
    """One real pair: a narrow-aperture input, a wide-aperture target and, optionally, a subject mask.

    Attributes:
        name: ``<set>/<file stem> f/<number>``, unique within a listing (``<set>/`` is left out for
            a root that is itself a set).
        input, target: the two photos (same size).
        aperture: the target's f-number (e.g. 1.8).
        mask: the subject mask (white = in focus), or None.
    """

    name: str
    input: Path
    target: Path
    aperture: float
    mask: Path | None = None


def parse_aperture(folder: str) -> float | None:
    """The f-number of a target folder named ``f<number>`` (``"f2.8"`` -> 2.8), else None."""
    match = APERTURE_DIR.match(folder)
    return float(match.group(1)) if match else None


def _images(folder: Path) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (:func:`bokeh.images.images_by_stem`); two
    files of one stem are refused."""
    try:
        return images_by_stem(folder)
    except SameStemError as error:
        raise DataLayoutError(str(error)) from None


def _is_set(folder: Path) -> bool:
    return (folder / INPUT_DIR).is_dir()


def _target_folders(folder: Path, bokeh_aperture: float) -> list[tuple[Path, float]]:
    targets = []
    for child in sorted(folder.iterdir(), key=lambda p: p.name):
        aperture = None
        if child.is_dir() and child.name == TARGET_DIR:
            aperture = bokeh_aperture
        elif child.is_dir():
            aperture = parse_aperture(child.name)
            if aperture is not None and not aperture > 0:
                raise DataLayoutError(f"{child}: f/{child.name[1:]} is not an f-number (it must be above 0); "
                                      f"rename the folder to the aperture it holds, e.g. f2.8")
        if aperture is not None:
            same = next((d for d, a in targets if math.isclose(a, aperture, rel_tol=1e-6)), None)
            if same is not None:  # one pair would be scored twice under one name ("x f/1.8")
                raise DataLayoutError(f"{folder} has targets at f/{aperture:g} in both {same.name}/ and {child.name}/: keep one folder "
                                      f"(or pass bokeh_aperture= with the f-number the {TARGET_DIR}/ targets were shot at)")
            targets.append((child, aperture))
    return targets


def _list_set(folder: Path, prefix: str, bokeh_aperture: float) -> list[RealPair]:
    unfinished = unfinished_set_reason(folder)
    if unfinished:
        raise DataLayoutError(unfinished)
    inputs = _images(folder / INPUT_DIR)
    if not inputs:
        raise DataLayoutError(f"no images in {folder / INPUT_DIR}; {REAL_LAYOUT}")
    targets = _target_folders(folder, bokeh_aperture)
    if not targets:
        raise DataLayoutError(f"{folder} has {INPUT_DIR}/ but no target folder ({TARGET_DIR}/ or f<number>/ "
                              f"such as f2.8/); {REAL_LAYOUT}")
    masks = _images(folder / MASK_DIR) if (folder / MASK_DIR).is_dir() else {}
    for stem, path in masks.items():
        if stem not in inputs:
            raise DataLayoutError(f"{path} is a mask without an input ({INPUT_DIR}/{stem}.*): add the input or remove the mask")
    pairs, paired = [], set()
    for target_dir, aperture in targets:
        for stem, path in _images(target_dir).items():
            if stem not in inputs:
                raise DataLayoutError(f"{path} has no input {folder / INPUT_DIR / stem}.*: add it or remove the target")
            paired.add(stem)
            pairs.append(RealPair(f"{prefix}{stem} f/{aperture:g}", inputs[stem], path, aperture, masks.get(stem)))
    unpaired = sorted(set(inputs) - paired, key=name_key)
    if unpaired:
        raise DataLayoutError(f"{inputs[unpaired[0]]} has no target in any of "
                              f"{', '.join(d.name + '/' for d, _ in targets)} ({len(unpaired)} input(s) unpaired): "
                              f"add its target or remove it")
    return sorted(pairs, key=lambda p: (name_key(p.input.stem), -p.aperture))


def _check_sizes(pair: RealPair) -> None:
    from bokeh.metrics import DETAIL_WINDOW

    try:
        size = read_size(pair.input)
        if min(size) < DETAIL_WINDOW:
            raise DataLayoutError(f"{pair.input} is {size[1]} x {size[0]} px: too small to score (the detail measure's window is "
                                  f"{DETAIL_WINDOW} px): use photos of at least {DETAIL_WINDOW} px a side, or remove the pair")
        for other in (pair.target, pair.mask):
            if other is not None and read_size(other) != size:
                h, w = read_size(other)
                raise DataLayoutError(f"{other} is {w} x {h} but its input {pair.input} is {size[1]} x {size[0]}: "
                                      f"the images of a pair must have one size")
    except ImageError as error:
        raise DataLayoutError(str(error)) from error


def list_real_pairs(root: str | Path, bokeh_aperture: float = EBB_APERTURE,
                    apertures: tuple[float, ...] | None = None, setting: str = "real") -> list[RealPair]:
    """Every real pair under ``root`` (see the module docstring for the layout), sets in name order,
    then photos by name, then targets from the narrowest aperture to the widest.

    Args:
        root: a set (``original/`` + targets) or a folder whose subfolders are sets.
        bokeh_aperture: the f-number of the targets in ``bokeh/`` folders (EBB!: 1.8).
        apertures: keep only targets at these f-numbers (None: all).
        setting: the option that named ``root``, for the messages (``real``, ``callbacks.real_pairs.folder``).

    Raises:
        DataLayoutError: a missing folder or one not in the layout, a file without its partner, two
            files of one name, images of a pair that differ in size or cannot be read (one sentence),
            no pair at ``apertures``.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "is a file, not a folder of real pairs" if root.exists() else "does not exist"
        raise DataLayoutError(f"{setting}={root} {what}; {REAL_LAYOUT}")
    try:
        check_aperture(bokeh_aperture)
    except ControlError as error:
        raise ValueError(f"bokeh_aperture: {error}") from None
    if _is_set(root):
        pairs = _list_set(root, "", bokeh_aperture)
    else:
        sets = [child for child in sorted(root.iterdir(), key=lambda p: name_key(p.name)) if child.is_dir() and _is_set(child)]
        if not sets:
            found = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:8]
            raise DataLayoutError(f"{setting}={root} is not a folder of real pairs (it holds: {', '.join(found) or 'nothing'}); "
                                  f"{REAL_LAYOUT}")
        pairs = [pair for child in sets for pair in _list_set(child, f"{child.name}/", bokeh_aperture)]
    if apertures is not None:
        pairs = [p for p in pairs if any(math.isclose(p.aperture, a, rel_tol=1e-6) for a in apertures)]
        if not pairs:
            raise DataLayoutError(f"{root} has no pair with a target at f/{' or f/'.join(f'{a:g}' for a in apertures)}")
    for target_dir in sorted({pair.target.parent for pair in pairs}):  # every f-number, before any work
        aperture = next(pair.aperture for pair in pairs if pair.target.parent == target_dir)
        try:
            check_aperture(aperture)
        except ControlError as error:
            raise DataLayoutError(f"{target_dir}: targets at f/{aperture:g}: {error}") from None
    for pair in pairs:
        _check_sizes(pair)
    return pairs




