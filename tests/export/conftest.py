"""Fixtures for the export tests: checkpoints in the training contract, converted models.

Every conversion runs once per session (tens of seconds each on 2 cores). The checkpoints are
written here in the contract format of ``bokeh.checkpoint`` (``hyper_parameters["generator"]`` +
``generator.``-prefixed ``state_dict``); once ``bokeh.lit`` can write a real one cheaply, only
:func:`write_checkpoint` needs to change.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from bokeh.models.glassnet import GlassNet

def trained_like(generator: GlassNet, seed: int = 0) -> GlassNet:
    """Re-draw the weights at He scale (std sqrt(2 / fan_in)) with small random biases.

    Glass-Net's own init, N(0, 0.02), leaves the output within about +-0.1 at 256 x 384, so any
    error limit would be easy to meet; at this scale the output spans about [-0.9, 0.7] (std 0.24)
    while the network stays well conditioned: fp64 vs fp32 in torch differ by 5e-6, fp16-rounded
    weights by 6e-3 (measured for 16/32, seed 0).
    """
    rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else module.weight.shape[0] * module.weight[0, 0].numel()
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=rng)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.05, generator=rng)
    return generator.eval()


def write_checkpoint(path: Path, seed: int = 0, **generator_kwargs) -> Path:
    """A checkpoint file in the contract format holding a :func:`trained_like` Glass-Net."""
    generator = trained_like(GlassNet(**generator_kwargs), seed)
    checkpoint = {
        "hyper_parameters": {"generator": dict(generator_kwargs)},
        "state_dict": {f"generator.{key}": value for key, value in generator.state_dict().items()},
        "epoch": 0,
        "global_step": 0,
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture(scope="session")
def make_checkpoint():
    """:func:`write_checkpoint` for tests that need other widths."""
    return write_checkpoint


@pytest.fixture(scope="session")
def default_checkpoint(tmp_path_factory) -> Path:
    """Glass-Net at its default widths (16 / 32, 9 blocks)."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "default.ckpt")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small Glass-Net (widths 4 / 4, 1 block) for tests about plumbing, not about accuracy."""
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", width1=4, width2=4, blocks=1)
