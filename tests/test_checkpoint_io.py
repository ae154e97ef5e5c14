"""bokeh.checkpoint_io: a checkpoint file is written whole or not at all (a torn or failed write keeps
the previous one), never with non-finite weights; the random states it carries round-trip."""

from __future__ import annotations

import errno
import io
import os
import resource
import signal

import pytest
import torch

import bokeh.checkpoint_io
from bokeh.checkpoint_io import AtomicCheckpointIO, NonFiniteCheckpointError, partial_path, rng_states, set_rng_states

def small_checkpoint(value: float) -> dict:
    return {"state_dict": {"w": torch.full((64, 64), value)}, "global_step": int(value)}


# ----------------------------------------------------------------------------- atomic checkpoint files
def test_a_torn_write_leaves_the_previous_checkpoint_loadable(tmp_path, monkeypatch):
    io_ = AtomicCheckpointIO()
    target = tmp_path / "ckpts" / "last.ckpt"
    io_.save_checkpoint(small_checkpoint(1.0), target)
    real_save = torch.save

    def crash_halfway(obj, file, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise KeyboardInterrupt("crash in the middle of a checkpoint write")

    monkeypatch.setattr(bokeh.checkpoint_io.torch, "save", crash_halfway)
    with pytest.raises(KeyboardInterrupt):
        io_.save_checkpoint(small_checkpoint(2.0), target)
    monkeypatch.undo()
    loaded = torch.load(target, weights_only=True)
    assert loaded["global_step"] == 1 and torch.equal(loaded["state_dict"]["w"], torch.full((64, 64), 1.0))
    assert not partial_path(target).exists(), "the partial file is removed after a failed write"
    io_.save_checkpoint(small_checkpoint(3.0), target)  # and the next save works
    assert torch.load(target, weights_only=True)["global_step"] == 3


def test_disk_full_while_saving_says_so_and_keeps_the_previous_file(tmp_path, monkeypatch):
    io_ = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io_.save_checkpoint(small_checkpoint(1.0), target)

    def no_space(obj, file, *args, **kwargs):
        file.write(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(bokeh.checkpoint_io.torch, "save", no_space)
    with pytest.raises(OSError, match="No space left on device.*previous last.ckpt is unchanged") as error:
        io_.save_checkpoint(small_checkpoint(2.0), target)
    assert error.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(target, weights_only=True)["global_step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_checkpoint_write_that_fails_mid_file_is_one_sentence_and_keeps_the_previous(tmp_path):
    from bokeh.checkpoint_io import AtomicCheckpointIO, CheckpointWriteError

    path = tmp_path / "last.ckpt"
    io_ = AtomicCheckpointIO()
    io_.save_checkpoint({"state_dict": {"w": torch.zeros(4)}}, path)
    before = path.read_bytes()
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limits[1]))  # writes past 4 KiB fail, as on a full disk
    try:
        with pytest.raises(CheckpointWriteError, match="could not write checkpoint .*the previous last.ckpt is unchanged"):
            io_.save_checkpoint({"state_dict": {"w": torch.randn(100_000)}}, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_non_finite_weights_are_never_written(tmp_path):
    io_ = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io_.save_checkpoint(small_checkpoint(1.0), target)
    poisoned = small_checkpoint(2.0)
    poisoned["state_dict"]["generator.head.weight"] = torch.tensor([1.0, float("nan")])
    with pytest.raises(NonFiniteCheckpointError, match="generator.head.weight"):
        io_.save_checkpoint(poisoned, target)
    assert torch.load(target, weights_only=True)["global_step"] == 1


def test_random_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    import random

    import numpy as np

    torch.save({"rng": rng_states()}, tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_states(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
