"""Checkpoints that survive a crash: atomic, finite files, and the random state to resume exactly.

:class:`AtomicCheckpointIO` replaces Lightning's default writer (``bokeh.train`` passes it to the
trainer). The default (``lightning_fabric.utilities.cloud_io._atomic_save``, 2.6) serializes the
whole checkpoint into memory, writes it to a temporary file in the *system* temp folder and
``shutil.move``-s it over the target: when that folder is on another file system (a tmpfs ``/tmp``
and checkpoints on disk, the usual case) the move is a copy into the target path, so a kill during
the copy leaves a truncated ``last.ckpt``, and nothing is fsync-ed. Here the temporary file sits
next to the target (same file system, so :func:`os.replace` is atomic), the bytes are streamed
into it, fsync-ed, and only then renamed; the folder entry is fsync-ed too. Whatever the moment
of a crash, the target holds either the previous checkpoint or the new one, entire.

:func:`rng_states` / :func:`set_rng_states` carry the torch, numpy and Python random states as
tensors and primitives only, so checkpoints keep loading with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from bokeh.files import atomic_file, temporary_prefix

PARTIAL_SUFFIX = ".partial"


class NonFiniteCheckpointError(ValueError):
    """A checkpoint about to be written holds NaN or infinite weights."""


class CheckpointWriteError(OSError):
    """A checkpoint that could not be written (disk full, no permission); ``str()`` is one sentence
    saying so, that the previous file is intact, and what to do."""


def partial_path(path: str | Path) -> Path:
    """Where the checkpoint for ``path`` is written before it is renamed: ``.<name>.partial``, same
    folder (the name shortened where a long one would not fit: :func:`bokeh.files.temporary_prefix`)."""
    path = Path(path)
    return path.with_name(temporary_prefix(path, len(PARTIAL_SUFFIX) - 1) + PARTIAL_SUFFIX[1:])


def _write_failure(error: BaseException, folder: Path) -> tuple[int | None, str]:
    """``(errno, words)`` for a failed checkpoint write. torch's zip writer reports a failed write as
    ``RuntimeError: [enforce fail at inline_container.cc:...] unexpected pos ...``: that is a write
    error of the file system too (usually a full disk, said so when the folder has no room left)."""
    if isinstance(error, OSError):
        return error.errno, error.strerror or str(error)
    try:
        full = shutil.disk_usage(folder).free < 2**20
    except OSError:
        full = False
    if full:
        return errno.ENOSPC, "no space left on device"
    return None, f"the write failed: {str(error).splitlines()[0][:200]}"


def first_non_finite(state: dict[str, Any]) -> str | None:
    """The name of the first floating-point tensor in ``state`` with a NaN or infinite value, else ``None``."""
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that never leaves a partial file at the target path, nor a poisoned one.

    ``save_checkpoint`` refuses (:class:`NonFiniteCheckpointError`) a checkpoint whose
    ``state_dict`` has non-finite weights, so a diverged model cannot replace the last good file.
    A failure while writing (disk full, no permission, torch's zip writer's ``unexpected pos``)
    removes the partial file and raises :class:`CheckpointWriteError` (an ``OSError``) saying the
    previous checkpoint is unchanged; a kill leaves at most a stale
    ``.<name>.partial`` beside it, which the next save overwrites.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options, got {storage_options!r}")
        path = Path(path)
        bad = first_non_finite(checkpoint.get("state_dict", {}))
        if bad is not None:
            raise NonFiniteCheckpointError(
                f"refusing to write {path}: weight {bad!r} holds NaN or inf values; the last checkpoint "
                f"on disk is kept. Lower the learning rate or check the data, then resume from it."
            )
        partial = partial_path(path)
        try:  # beside the target, fsync-ed, renamed; the partial file is removed on any error
            with atomic_file(path, fsync=True, temporary=partial) as file:
                torch.save(checkpoint, file)
        except (OSError, RuntimeError) as error:  # RuntimeError: torch's zip writer failing to write
            partial.unlink(missing_ok=True)
            if isinstance(error, RuntimeError) and "inline_container" not in str(error) and "PytorchStreamWriter" not in str(error):
                raise
            number, words = _write_failure(error, path.parent)
            kept = "is unchanged" if path.exists() else "did not exist"
            raise CheckpointWriteError(number, f"could not write checkpoint {path} ({words}); the previous {path.name} {kept}. Free disk space or choose another output folder (hydra.run.dir=...)") from error
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def rng_states() -> dict[str, Any]:
    """The torch (CPU and, if in use, CUDA), numpy and Python random states, as tensors and primitives."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(position), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` returned."""
    torch.set_rng_state(states["torch"])
    numpy = states["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"], numpy["cached_gaussian"]))
    python = states["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss_next"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
