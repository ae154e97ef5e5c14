"""What every reader of a model file shares, below all of them (:mod:`bokeh.checkpoint`,
:mod:`bokeh.pretrained`, the runtimes): the error a bad model file raises and the check that a
file is the model itself and not a placeholder for it.

:func:`check_model_file` is the one check of what a model file is, before any reader opens it:
every command (render, evaluate, export, train's ``init_from=`` / ``ckpt_path=``, ``pretrained
ship``, the demo, the notebooks' loader) goes through it (via :func:`bokeh.pretrained.resolve`,
which also decides whether a value is a shipped model's name), so a missing file, a folder, an
empty file, a Git LFS pointer, an image or an unknown file type reads the same everywhere.

A clone made without Git LFS holds *pointer* files where the large files should be: three lines of
text (``version https://git-lfs.github.com/spec/v1``, ``oid sha256:...``, ``size ...``). torch,
ONNX Runtime and LiteRT read them as damaged files and give advice that does not help (torch's
``weights_only=False``); :func:`lfs_pointer_reason` names them for what they are.
"""

from __future__ import annotations

import os
from pathlib import Path

LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, not a bokeh training checkpoint, or does not fit."""


def lfs_pointer_reason(path: str | os.PathLike) -> str | None:
    """``None`` unless ``path`` is a Git LFS pointer file (or another small text file): then the
    sentence saying so and what to do."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            head = stream.read(1024)
    except OSError:
        return None  # the reader that follows says what is wrong with the file
    if head.startswith(LFS_POINTER_START):
        return (f"{path} is a Git LFS pointer, not a model file (the clone was made without Git LFS): "
                f"fetch the file with `git lfs pull`, or download it again")
    return None


#: The model files the renderer runs, by suffix
MODEL_SUFFIXES = (".ckpt", ".onnx", ".tflite")
_KINDS = {".ckpt": "a Lightning checkpoint (.ckpt)", ".onnx": "an ONNX model (.onnx)", ".tflite": "a TFLite model (.tflite)"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".gif", ".heic")


def check_model_file(path: str | os.PathLike, setting: str = "ckpt", suffixes: tuple[str, ...] | None = MODEL_SUFFIXES) -> Path:
    """``path`` as a ``Path`` once it is known to be a model file worth opening.

    Args:
        setting: the option that named it, for the message (``ckpt``, ``init_from``, ``ckpt_path``).
        suffixes: the file types accepted (``None``: any but an image's).

    Raises:
        CheckpointError: one sentence naming ``setting=path``: an empty value, no such file, a
            folder, an empty (0-byte) file, a Git LFS pointer, an image, or an unknown file type.
    """
    text = os.fspath(path)
    accepted = suffixes if suffixes is not None else (".ckpt",)  # None: a reader of torch checkpoints
    named = [_KINDS.get(s, s) for s in accepted]
    kinds = ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else named[0]
    photo = " (the photo goes in input=)" if set(accepted) & {".onnx", ".tflite"} else ""  # the renderer's
    if not text.strip():
        raise CheckpointError(f"{setting}= is empty (an unset shell variable?): give {kinds}")
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in _IMAGE_SUFFIXES:
        what = "an empty image file (0 bytes)" if path.is_file() and path.stat().st_size == 0 else "an image"
        raise CheckpointError(f"{setting}={path} is {what}, not a model: give {kinds}{photo}")
    if path.is_dir():
        found = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (suffixes or MODEL_SUFFIXES))[:3]
        hint = f" (it holds {', '.join(found)})" if found else ""
        raise CheckpointError(f"{setting}={path} is a folder, not a model file: give the model file inside it{hint}")
    if suffixes is None and suffix in (".onnx", ".tflite"):
        raise CheckpointError(f"{setting}={path} is an exported model ({suffix}); this takes {kinds}: give the checkpoint "
                              f"it was exported from, or a shipped model's name (reference)")
    if suffixes is not None and suffix not in suffixes:
        raise CheckpointError(f"{setting}={path}: unknown model file type {suffix or '(none)'!r}; pass {kinds}")
    if not path.is_file():
        raise CheckpointError(f"{setting}={path}: no such file ({path} does not exist): train one with `python -m bokeh.train`, "
                              f"export one with `make tflite CKPT=...`, or name a shipped model (reference)")
    try:
        empty = path.stat().st_size == 0
    except OSError as error:
        raise CheckpointError(f"{setting}={path} cannot be read ({error.strerror or error})") from None
    if empty:
        raise CheckpointError(f"{setting}={path} is empty (0 bytes): it was not fully written or copied; give the model file again")
    pointer = lfs_pointer_reason(path)
    if pointer:
        raise CheckpointError(f"{setting}={pointer}")
    return path


# ----------------------------------------------------------------------------- what an exported file says about itself
#: The key of the JSON an export stores inside each .onnx (``metadata_props``) and .tflite (a
#: ``metadata`` entry): ``{"value_range": "signed" | "pixel", "inputs": [...], "layout": ...}``, so a
#: file copied without its report.json still says how to feed it.
METADATA_KEY = "bokeh"


def embed_metadata(path: str | os.PathLike, meta: dict) -> None:
    """Store ``meta`` (JSON) inside the exported model at ``path`` (``.onnx`` or ``.tflite``), in place."""
    import json

    from bokeh.files import write_bytes_atomic

    path = Path(path)
    text = json.dumps(meta, sort_keys=True)
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path))
        kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        model.metadata_props.add(key=METADATA_KEY, value=text)
        write_bytes_atomic(path, model.SerializeToString())  # one file (no external data), replaced whole
        return
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_KEY, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (METADATA_KEY, METADATA_KEY.encode())] + [entry]
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    write_bytes_atomic(path, bytes(builder.Output()))  # a failed write leaves the model file as it was


def read_metadata(path: str | os.PathLike) -> dict | None:
    """The JSON :func:`embed_metadata` stored in an exported model, or ``None`` (an older export, or
    another tool's file)."""
    import json

    path = Path(path)
    try:
        if path.suffix == ".onnx":
            import onnx

            model = onnx.load(str(path), load_external_data=False)
            text = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
        else:
            from ai_edge_litert import schema_py_generated as schema

            data = bytearray(path.read_bytes())
            model = schema.Model.GetRootAs(data, 0)
            text = None
            for i in range(model.MetadataLength()):
                entry = model.Metadata(i)
                if entry.Name() in (METADATA_KEY.encode(), METADATA_KEY):
                    text = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode()
        return json.loads(text) if text else None
    except Exception:  # noqa: BLE001  an unreadable file is reported by its runtime, not here
        return None
