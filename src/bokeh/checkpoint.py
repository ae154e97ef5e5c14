"""Read the generator out of a Lightning checkpoint without importing Lightning, and say in one
sentence when a checkpoint does not fit the model it is loaded into.

Contract with :mod:`bokeh.lit`: ``hyper_parameters["generator"]`` is a plain dict of
:class:`~bokeh.models.glassnet.GlassNet` keyword arguments, and the generator's weights are the
``state_dict`` entries prefixed ``generator.``. Loads with torch's default ``weights_only=True``.

Every way of loading a checkpoint (``bokeh.render``, ``bokeh.evaluate``, ``bokeh.export``,
``BokehGAN.load_from_checkpoint`` in the notebooks, ``init_from=`` and ``ckpt_path=`` in
``bokeh.train``) reports a mismatch as one :class:`CheckpointError` sentence naming the settings on
both sides (:func:`settings_difference`) or summarising the weights that do not fit
(:func:`state_mismatch`), instead of torch's list of every missing and unexpected key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from bokeh.model_files import CheckpointError, check_model_file
from bokeh.models.glassnet import GlassNet

GENERATOR_PREFIX = "generator."


def read_checkpoint(path: str | Path, setting: str = "ckpt") -> dict:
    """The checkpoint dict at ``path``, loaded on the CPU with ``weights_only=True``, once
    :func:`bokeh.model_files.check_model_file` has found it a model file (``setting`` names the
    option in its messages)."""
    path = check_model_file(path, setting, suffixes=None)
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


def _flat(settings: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = list(value) if isinstance(value, (list, tuple)) else value
    return flat


def settings_difference(saved: Mapping[str, Any], current: Mapping[str, Any], prefix: str = "model.") -> tuple[str, str]:
    """The settings that differ, as override lists for each side: ``("model.width2=16",
    "model.width2=32")``; a key missing on one side shows as ``(default)``. Empty strings if equal."""
    saved, current = _flat(saved, prefix), _flat(current, prefix)
    keys = sorted(k for k in saved.keys() | current.keys() if saved.get(k, "(default)") != current.get(k, "(default)"))

    def show(flat: dict[str, Any]) -> str:
        return ", ".join(f"{k}={flat.get(k, '(default)')}" for k in keys)

    return show(saved), show(current)


def state_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str | None:
    """``None`` if ``given`` has exactly ``expected``'s keys and shapes; else a short summary:
    how many weights are missing, unexpected or of another shape, with one example of each."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    shaped = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]!r})")
    if shaped:
        k = shaped[0]
        parts.append(f"{len(shaped)} of another shape (e.g. {k!r}: {list(given[k].shape)} in the file, {list(expected[k].shape)} here)")
    return ", ".join(parts) or None


def generator_source(path: str | Path, setting: str = "ckpt") -> tuple[dict, dict]:
    """``(glassnet_kwargs, generator_state_dict)`` from a Lightning checkpoint, or from a model shipped
    with the package when ``path`` is its name (``reference``: :mod:`bokeh.pretrained`; the name wins
    over a file or folder of that name: :func:`bokeh.pretrained.resolve`)."""
    from bokeh import pretrained

    source = pretrained.resolve(path, setting, suffixes=None)
    if isinstance(source, str):
        return pretrained.generator_state(source)
    return generator_state(read_checkpoint(source, setting), path)


def load_generator(path: str | Path) -> GlassNet:
    """The Glass-Net stored in the Lightning checkpoint at ``path`` (or the shipped model of that
    name, e.g. ``reference``: :mod:`bokeh.pretrained`), in eval mode on the CPU.

    Raises:
        CheckpointError: missing or unreadable file, not a training checkpoint, or weights that do
            not fit a Glass-Net built with the checkpoint's own settings (one sentence).
    """
    kwargs, state = generator_source(path)
    try:
        generator = GlassNet(**kwargs)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path} holds generator settings {kwargs} that this version cannot build ({error})") from error
    problem = state_mismatch(generator.state_dict(), state)
    if problem:
        raise CheckpointError(
            f"{path}: its generator weights do not fit a Glass-Net built with its own settings {kwargs} "
            f"({problem}): it was written by another version of bokeh, or edited"
        )
    generator.load_state_dict(state, strict=True)
    return generator.eval()


def save_generator(path: str | Path, generator: GlassNet, settings: dict) -> Path:
    """Write ``generator`` alone in the checkpoint contract above, readable by :func:`load_generator`.

    For exports and benchmarks of networks that were not trained (random weights): ``settings`` are
    the ``GlassNet`` keyword arguments it was built with; the file holds tensors and primitives only.
    """
    path = Path(path)
    state = {f"{GENERATOR_PREFIX}{key}": value.detach().cpu() for key, value in generator.state_dict().items()}
    from bokeh.files import atomic_file

    with atomic_file(path) as stream:  # a temporary file beside it, renamed: never half a checkpoint
        torch.save({"hyper_parameters": {"generator": dict(settings)}, "state_dict": state}, stream)
    return path
