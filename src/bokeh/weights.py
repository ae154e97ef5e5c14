"""Load pretrained weights from disk (or torch's cache): the I/O that models/ and losses/ never do.

:func:`load_vgg19_features` builds the frozen relu5_4 extractor of the perceptual loss from one
of three sources, chosen by the config value ``loss.vgg.weights``:

* ``imagenet``: torchvision's ``VGG19_Weights.IMAGENET1K_V1`` file (``vgg19-dcbb9e9d.pth``), read
  from the torch hub cache (``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``)
  when it is there, else downloaded once into it (hash-checked). When neither works it raises
  :class:`VGGWeightsError` with one sentence saying where to put the file.
* a path to a local ``.pth`` state dict in torchvision's vgg19 format: full-model keys
  (``features.0.weight``, ..., ``classifier.*`` ignored) or features-only keys (``0.weight``, ...).
* ``random``: torchvision's random initialization, for tests and the CPU demo only; logs a loud
  warning because the "perceptual" loss is then meaningless.
"""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import torch
from torchvision.models import VGG19_Weights

from bokeh.models.vgg import RELU5_4, VGG19Features

log = logging.getLogger(__name__)

IMAGENET_WEIGHTS = VGG19_Weights.IMAGENET1K_V1
CONFIG_KEY = "loss.vgg.weights"
#: Seconds a download may wait on the network (to connect, or for its next bytes): a machine without
#: a network gets the one-sentence error instead of torch.hub's unbounded wait
DOWNLOAD_TIMEOUT_S = 30.0
_FEATURE_KEY = re.compile(r"^(?:features\.)?(\d+)\.(weight|bias)$")


class VGGWeightsError(RuntimeError):
    """The VGG19 weights asked for cannot be found, read or matched to the network."""


def imagenet_cache_file() -> Path:
    """Where torch's hub cache keeps torchvision's VGG19 ImageNet file (follows ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(IMAGENET_WEIGHTS.url).name


def _imagenet_state_dict(option: str) -> dict[str, torch.Tensor]:
    """torchvision's IMAGENET1K_V1 state dict: from the cache, else downloaded into it."""
    cached = imagenet_cache_file()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torch.hub's urlopen has no timeout of its own
    try:
        # reads the cached file when present; downloads (and checks the hash) only otherwise
        return torch.hub.load_state_dict_from_url(
            IMAGENET_WEIGHTS.url, map_location="cpu", progress=True, check_hash=True, weights_only=True
        )
    except Exception as error:  # URLError, OSError, hash mismatch (RuntimeError), unpickling errors
        raise VGGWeightsError(
            f"VGG19 ImageNet weights are not in the torch cache ({cached}) and could not be downloaded "
            f"({type(error).__name__}: {error}): copy {IMAGENET_WEIGHTS.url} to {cached}, or pass "
            f"{option}=/path/vgg19.pth (a torchvision vgg19 state dict)"
        ) from error
    finally:
        socket.setdefaulttimeout(previous)


def _file_state_dict(path: Path, option: str) -> dict[str, torch.Tensor]:
    """The state dict saved at ``path`` (``torch.load`` with ``weights_only=True``)."""
    if not path.is_file():
        raise VGGWeightsError(
            f"{option}={path}: no such file; pass 'imagenet', 'random' or the path of a torchvision "
            f"vgg19 state dict (.pth)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # corrupt file, pickled model object, foreign format
        raise VGGWeightsError(
            f"{option}={path} could not be read as a state dict ({type(error).__name__}: {error}); "
            f"save one with torch.save(torchvision.models.vgg19(...).state_dict(), path)"
        ) from error
    if not isinstance(state, dict):
        raise VGGWeightsError(
            f"{option}={path} holds a {type(state).__name__}, not a state dict; save one with "
            f"torch.save(model.state_dict(), path)"
        )
    return state


def _relu5_4_state(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The ``features.<i>.*`` entries with i < 36, from full-model or features-only keys."""
    selected, foreign = {}, []
    for key, value in state.items():
        match = _FEATURE_KEY.match(key)
        if match is None:
            if not key.startswith("classifier."):
                foreign.append(key)
        elif int(match.group(1)) < RELU5_4:
            selected[f"features.{match.group(1)}.{match.group(2)}"] = value
    if foreign:
        raise VGGWeightsError(
            f"{source} is not a torchvision vgg19 state dict: unexpected keys such as {foreign[:3]} "
            f"(expected 'features.0.weight' ... or '0.weight' ...)"
        )
    return selected


def load_vgg19_features(weights: str | Path, option: str = CONFIG_KEY) -> VGG19Features:
    """The frozen VGG19 relu5_4 extractor with ``weights``: ``imagenet``, ``random`` or a file path.

    ``option`` is the config key the user sets (named in the messages). Raises
    :class:`VGGWeightsError` with one sentence saying what to do when the weights cannot be found,
    read, or do not fit VGG19.
    """
    extractor = VGG19Features()
    if str(weights) == "random":
        log.warning(
            "!!! VGG19 perceptual loss uses RANDOM weights (%s=random): only for tests and the CPU demo; "
            "the perceptual term is meaningless. Use %s=imagenet or a vgg19 .pth file for real training !!!",
            option,
            option,
        )
        return extractor
    if str(weights) == "imagenet":
        state, source = _imagenet_state_dict(option), f"torchvision's {IMAGENET_WEIGHTS.url}"
    else:
        state, source = _file_state_dict(Path(weights), option), f"{option}={weights}"
    selected = _relu5_4_state(state, source)
    try:
        extractor.load_state_dict(selected, strict=True)
    except RuntimeError as error:  # missing keys or wrong shapes: another network's weights
        raise VGGWeightsError(
            f"{source} does not fit VGG19 features up to relu5_4 ({error}); is it a vgg19 (not vgg16 or "
            f"vgg19_bn) state dict?"
        ) from error
    return extractor.requires_grad_(False)
