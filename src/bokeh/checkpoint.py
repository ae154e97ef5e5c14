"""Read the generator out of a Lightning checkpoint without importing Lightning.

Contract with :mod:`bokeh.lit`: ``hyper_parameters["generator"]`` is a plain dict of
:class:`~bokeh.models.glassnet.GlassNet` keyword arguments, and the generator's weights are the
``state_dict`` entries prefixed ``generator.``. Loads with torch's default ``weights_only=True``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bokeh.models.glassnet import GlassNet

GENERATOR_PREFIX = "generator."


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a bokeh training checkpoint."""


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict at ``path``, loaded on the CPU with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist: pass the .ckpt written by `python -m bokeh.train`")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(
            f"checkpoint {path} could not be read ({type(error).__name__}: {error}); "
            f"it may be truncated or not a torch checkpoint"
        ) from error


def generator_state(checkpoint: dict, path: str | Path = "<checkpoint>") -> tuple[dict, dict]:
    """``(glassnet_kwargs, generator_state_dict)`` from a checkpoint dict."""
    hparams = checkpoint.get("hyper_parameters", {})
    if "generator" not in hparams or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"{path} is not a bokeh training checkpoint (no generator hyperparameters or state_dict); "
            f"pass a .ckpt written by `python -m bokeh.train`"
        )
    state = {
        key[len(GENERATOR_PREFIX):]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(GENERATOR_PREFIX)
    }
    return dict(hparams["generator"]), state


def load_generator(path: str | Path) -> GlassNet:
    """The Glass-Net stored in the Lightning checkpoint at ``path``, in eval mode on the CPU."""
    kwargs, state = generator_state(read_checkpoint(path), path)
    generator = GlassNet(**kwargs)
    generator.load_state_dict(state, strict=True)
    return generator.eval()


def save_generator(path: str | Path, generator: GlassNet, settings: dict) -> Path:
    """Write ``generator`` alone in the checkpoint contract above, readable by :func:`load_generator`.

    For exports and benchmarks of networks that were not trained (random weights): ``settings`` are
    the ``GlassNet`` keyword arguments it was built with; the file holds tensors and primitives only.
    """
    path = Path(path)
    state = {f"{GENERATOR_PREFIX}{key}": value.detach().cpu() for key, value in generator.state_dict().items()}
    torch.save({"hyper_parameters": {"generator": dict(settings)}, "state_dict": state}, path)
    return path
