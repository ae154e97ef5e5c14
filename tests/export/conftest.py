"""Fixtures for the export tests: checkpoints in the training contract, converted models.

Every conversion runs once per session (tens of seconds each on 2 cores). The checkpoints are
written with :func:`bokeh.checkpoint.save_generator` (the contract format of ``bokeh.checkpoint``),
holding :func:`bokeh.models.init.trained_like` weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bokeh.checkpoint import save_generator
from bokeh.models.glassnet import GlassNet
from bokeh.models.init import trained_like


def write_checkpoint(path: Path, seed: int = 0, **generator_kwargs) -> Path:
    """A checkpoint file in the contract format holding a :func:`trained_like` Glass-Net."""
    return save_generator(path, trained_like(GlassNet(**generator_kwargs), seed), generator_kwargs)


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
