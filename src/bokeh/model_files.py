"""What every reader of a model file shares, below all of them (:mod:`bokeh.checkpoint`,
:mod:`bokeh.pretrained`, the runtimes): the error a bad model file raises and the check that a
file is the model itself and not a placeholder for it.

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
