"""Glass-Nets shipped inside the package, loadable by name (as torchvision's ``Weights`` enums are).

A name (``reference``) maps to two files in this folder:

* ``<name>.pt``: the generator's ``state_dict`` in float16, tensors only, so torch's default
  ``weights_only=True`` loader reads it and nothing executes;
* ``<name>.json``: everything needed to use and judge the weights: the file's size and SHA-256, the
  :class:`~bokeh.models.glassnet.GlassNet` settings, the input convention, how the model was trained
  (command, data, steps, wall time, precision, machine) and what it scored.

Every entry point that takes a checkpoint path also takes a shipped name: ``bokeh.render
ckpt=reference``, ``make tflite CKPT=reference``, ``bokeh.train init_from=reference``,
``bokeh.evaluate ckpt=reference``; in Python :func:`weights` (a typed handle: settings, input
convention, description, ``load()``), :func:`load` (or :func:`bokeh.checkpoint.load_generator`,
which accepts names too).

    handle = pretrained.weights("reference")
    handle.input.short_side, handle.settings["blend"], handle.meta["scores"]
    generator = handle.load()          # GlassNet, eval mode, float32
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from bokeh.cli import json_text
from bokeh.model_files import MODEL_SUFFIXES, CheckpointError, check_model_file, lfs_pointer_reason
from bokeh.models.glassnet import GlassNet

FOLDER = Path(__file__).resolve().parent


class PretrainedError(CheckpointError):
    """A shipped model's files are missing, damaged or do not match their description (a
    :class:`~bokeh.model_files.CheckpointError`: every entry point reports it as a bad ``ckpt=``)."""


def names() -> list[str]:
    """The names of the shipped models (one ``<name>.json`` each)."""
    return sorted(path.stem for path in FOLDER.glob("*.json"))


def is_name(text: str | Path) -> bool:
    """True if ``text`` is a shipped model's name (and not a path: no folder, no suffix)."""
    text = str(text)
    return "/" not in text and "\\" not in text and "." not in text and text in names()


def resolve(value: str | Path, setting: str = "ckpt", suffixes: tuple[str, ...] | None = MODEL_SUFFIXES) -> str | Path:
    """What a model option names: a shipped model (its name, a ``str``) or a model file (a checked
    ``Path``: :func:`bokeh.model_files.check_model_file`). A shipped name wins over a file or folder of
    the same name in the working folder (``ckpt=reference`` beside ``./reference/``): pass
    ``./reference`` for the folder's file.

    Raises:
        CheckpointError: not a shipped name and not a model file (one sentence naming ``setting=``).
    """
    if is_name(value):
        return str(value)
    return check_model_file(value, setting, suffixes)


def meta(name: str) -> dict[str, Any]:
    """The description of shipped model ``name`` (``<name>.json``).

    Raises:
        PretrainedError: no such name, or its description cannot be read.
    """
    path = FOLDER / f"{name}.json"
    if not path.is_file():
        raise PretrainedError(f"no shipped model named {name!r}; shipped: {', '.join(names()) or 'none'}")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PretrainedError(f"{path} cannot be read ({error}): reinstall the package (pip install -e .)") from error


def sha256(path: Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def generator_state(name: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(GlassNet kwargs, float32 state_dict)`` of shipped model ``name``, checked against its description.

    Raises:
        PretrainedError: unknown name, missing weights file, or a file whose size or SHA-256
            differs from the description (a damaged or replaced file).
    """
    description = meta(name)
    path = FOLDER / description["file"]
    if not path.is_file():
        raise PretrainedError(
            f"the weights of the shipped model {name!r} are missing ({path}): reinstall the package from a complete "
            f"clone of the repository"
        )
    pointer = lfs_pointer_reason(path)
    if pointer:
        raise PretrainedError(pointer)
    if path.stat().st_size != description["bytes"] or sha256(path) != description["sha256"]:
        raise PretrainedError(f"{path} does not match its description in {name}.json (size or SHA-256 differs): restore it with git checkout")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return dict(description["model"]), {key: value.float() for key, value in state.items()}


def load(name: str = "reference") -> GlassNet:
    """The shipped Glass-Net ``name`` in eval mode on the CPU (float32).

    Shape of use: ``load()(image)[0]`` maps ``(B, 3, H, W)`` in [-1, 1] (H, W multiples of 8) to the
    bokeh image of the same shape and range; see ``meta(name)["input"]`` for the scale it was trained at.
    """
    kwargs, state = generator_state(name)
    generator = GlassNet(**kwargs)
    generator.load_state_dict(state, strict=True)
    return generator.eval()


@dataclass(frozen=True)
class InputConvention:
    """How a shipped model takes a photo (``<name>.json`` ``input``).

    Attributes:
        layout: ``"NCHW RGB"``.
        value_range: ``(-1.0, 1.0)``: pixel values the model takes and gives.
        multiple_of: height and width must be multiples of it (8: Glass-Net's two stride-2 levels).
        trained_at: ``(height, width)`` of the training crops, px.
        short_side: the photo's short side the renderer works at by default, px (a model sees the
            scale it was trained at; :mod:`bokeh.render.fit` upsamples the result).
    """

    layout: str
    value_range: tuple[float, float]
    multiple_of: int
    trained_at: tuple[int, int]
    short_side: int


@dataclass(frozen=True)
class Weights:
    """A shipped model by name, typed (as torchvision's ``Weights`` enum members are).

    Attributes:
        name: the shipped name (``reference``).
        settings: the :class:`~bokeh.models.glassnet.GlassNet` keyword arguments (read-only).
        input: its :class:`InputConvention`.
        meta: the whole description (training, data, controls, licence, scores), read-only.
    """

    name: str
    settings: Mapping[str, Any]
    input: InputConvention
    meta: Mapping[str, Any]

    def load(self) -> GlassNet:
        """The Glass-Net in eval mode on the CPU, float32 (:func:`load`)."""
        return load(self.name)


def weights(name: str = "reference") -> Weights:
    """The typed handle of shipped model ``name``.

    Raises:
        PretrainedError: no such name, or its description lacks the model settings or a field of the
            input convention (a damaged ``<name>.json``).
    """
    description = meta(name)
    try:
        given = description["input"]
        convention = InputConvention(layout=str(given["layout"]), value_range=tuple(float(v) for v in given["value_range"]),
                                     multiple_of=int(given["multiple_of"]), trained_at=tuple(int(v) for v in given["trained_at"]),
                                     short_side=int(given["short_side"]))
        settings = MappingProxyType(dict(description["model"]))
    except (KeyError, TypeError, ValueError) as error:
        raise PretrainedError(f"{FOLDER / (name + '.json')} lacks a valid {error} entry: restore it with git checkout") from None
    return Weights(name=name, settings=settings, input=convention, meta=MappingProxyType(description))


def save(name: str, generator: GlassNet, settings: dict[str, Any], description: dict[str, Any], folder: Path = FOLDER) -> Path:
    """Write ``<name>.pt`` (float16 state dict) and ``<name>.json`` (``description`` plus the model
    ``settings``, the file's size and SHA-256) into ``folder``; return the JSON's path.

    Used once per retrain by ``python -m bokeh.pretrained ship``; the files are then committed. Both
    are written atomically (:func:`bokeh.files.atomic_file`), the weights first: a failed write
    leaves the earlier files as they were.
    """
    import io

    from bokeh.files import write_bytes_atomic, write_text_atomic

    buffer = io.BytesIO()
    torch.save({key: value.detach().to(torch.float16).contiguous() for key, value in generator.state_dict().items()}, buffer)
    data = buffer.getvalue()
    weights = folder / f"{name}.pt"
    record = {"name": name, "file": weights.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "model": dict(settings), **description}
    text = json_text(record) + "\n"  # made before any write: a bad description changes nothing
    write_bytes_atomic(weights, data)
    return write_text_atomic(folder / f"{name}.json", text)
