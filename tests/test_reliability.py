"""Faults during training: torn checkpoint writes, non-finite losses, full or unwritable disks, bad configs.

In-process and fast; the kill-and-resume and DDP runs (subprocesses) are in test_reliability_cli.py.
"""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf import OmegaConf

import bokeh.checkpoint_io
import bokeh.train
from bokeh.checkpoint_io import AtomicCheckpointIO, NonFiniteCheckpointError, partial_path, rng_states, set_rng_states
from bokeh.lit import NonFiniteLossError
from bokeh.train import CONF_DIR, build_module, run

TINY = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]"]
# 4 training pairs of 32 x 48 rendered in memory (nothing written), batch 1, no progress bar
SMALL = ["data.n=6", "data.val_count=2", "data.batch_size=1", "data.size=[32,48]", "data.crop_size=[24,24]", "data.on_the_fly=true", "callbacks.progress=null", "callbacks.samples=null", "logger=csv"]


def compose_train(overrides: list[str], output_dir: Path | None = None):
    """The training config as ``python -m bokeh.train <overrides>`` composes it (``output_dir`` set by hand)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
    finally:
        GlobalHydra.instance().clear()
    if output_dir is not None:
        OmegaConf.set_struct(cfg, False)
        cfg.output_dir = str(output_dir)
        OmegaConf.set_struct(cfg, True)
    return cfg


def snapshot(checkpoint: dict) -> dict:
    return {k: v.clone() for k, v in checkpoint["state_dict"].items()}


def small_checkpoint(value: float) -> dict:
    return {"state_dict": {"w": torch.full((64, 64), value)}, "global_step": int(value)}


# ----------------------------------------------------------------- atomic checkpoint files
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


# ----------------------------------------------------------------- non-finite losses
@pytest.mark.parametrize("where", ["loss", "grad"])
def test_one_nan_loss_skips_its_step_with_a_warning_and_a_count(where, tmp_path):
    cfg = compose_train([*TINY, *SMALL, "trainer.max_steps=5", "+callbacks.poison._target_=reliability_hooks.NonFiniteLoss",
                         "+callbacks.poison.batches=[2]", f"+callbacks.poison.where={where}",
                         "+callbacks.spy._target_=reliability_hooks.WeightSpy"], tmp_path)
    with pytest.warns(RuntimeWarning, match="non-finite generator loss or its gradients at step 2 .*1 in a row, 1 in all"):
        trainer = run(cfg)
    module = trainer.lightning_module
    spy = next(c for c in trainer.callbacks if type(c).__name__ == "WeightSpy")
    # batch 2 did not move the weights nor count as an optimizer step; training went on to max_steps
    assert spy.changed == [True, True, False, True, True, True]
    assert module.skipped_steps == 1 and module.bad_steps == 0 and trainer.global_step == 5
    assert trainer.logged_metrics["train/skipped_steps"] == 1
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_a_run_of_infinite_losses_stops_training_and_the_last_checkpoint_stays_finite(tmp_path):
    cfg = compose_train([*TINY, *SMALL, "trainer.max_steps=20", "max_bad_steps=3", "callbacks.last.every_n_train_steps=1",
                         "+callbacks.poison._target_=reliability_hooks.NonFiniteLoss", "+callbacks.poison.batches=[3,4,5,6,7,8]",
                         "+callbacks.poison.value=inf"], tmp_path)
    with pytest.warns(RuntimeWarning, match="non-finite"), pytest.raises(NonFiniteLossError, match="3 non-finite losses in a row.*resume"):
        run(cfg)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 3, "the last checkpoint is the one after the last good step"
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    # batch 3 (skipped) ended epoch 0, whose end-of-epoch checkpoint is the last one: it counts that skip
    assert last["bokeh_resume"]["skipped_steps"] == 1 and last["epoch"] == 0


# ----------------------------------------------------------------- disk full, unwritable folder
@pytest.mark.parametrize(
    ("where", "message"),
    [
        (lambda tmp: tmp / "a-file" / "run", "not writable"),  # a file where a folder must be
        (lambda tmp: Path("/proc/bokeh-run"), "not writable"),  # read-only even for root (tests may run as root)
    ],
)
def test_an_unwritable_output_folder_fails_before_training(where, message, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    cfg = compose_train([*TINY, *SMALL], where(tmp_path))
    with pytest.raises(OSError, match=message):
        run(cfg)


def test_a_read_only_output_folder_fails_before_training(tmp_path, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores mode bits: make the write fail as the kernel would for a user
        def denied(self, data):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

        monkeypatch.setattr(Path, "write_bytes", denied)
    with pytest.raises(OSError, match=r"read-only is not writable \(Permission denied\).*hydra.run.dir"):
        run(compose_train([*TINY, *SMALL], folder))
    assert list(folder.iterdir()) == []


def test_too_little_free_space_fails_before_training(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(bokeh.train, "build_module", lambda cfg: built.append(cfg))
    with pytest.raises(OSError, match="MiB free under .* at least min_free_mib=10000000000 MiB"):
        run(compose_train([*TINY, *SMALL, "min_free_mib=10000000000"], tmp_path))
    monkeypatch.setattr(bokeh.train.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 50 * 2**20})())
    with pytest.raises(OSError, match="only 50 MiB free"):
        run(compose_train([*TINY, *SMALL], tmp_path))
    assert not built and not (tmp_path / "checkpoints").exists()


# ----------------------------------------------------------------- bad configs: one clear error each, before training
@pytest.mark.parametrize("override", ["trainer.max_step=10", "loss.perceptual=1.0", "data.crop=[64,64]"])
def test_unknown_keys_fail_at_compose_time(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException, match=f"Could not override '{key}'") as error:
        compose_train([override])
    assert f"Key '{key.split('.')[-1]}' is not in struct" in str(error.value.__cause__)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+loss.perceptual=1.0"], r"unknown loss option\(s\) \['perceptual'\]"),
        (["loss.l1=-0.5"], r"loss.l1 must be >= 0, got -0.5"),
        (["loss.vgg.weight=-1"], r"loss.vgg.weight must be >= 0"),
        (["optim.lr_g=-1e-4"], r"optim.lr_g must be >= 0"),
        (["model.width1=0"], r"width1"),
        (["model.width2=-8"], r"width2"),
        (["max_bad_steps=0"], r"max_bad_steps must be >= 1"),
    ],
)
def test_bad_model_settings_fail_when_the_module_is_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_module(compose_train([*TINY, *overrides]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.crop_size=[512,512]"], r"crop_size \[512, 512\] is larger than the synthetic images' size \[32, 48\]: lower data.crop_size"),
        (["data.crop_size=[20,24]"], r"crop_size must be multiples of 8"),
        (["stage=finetune", "init_from=null", "data.crop_size=[16,24]"], r"data.crop_size \[16, 24\] is too small for critic.depths \[3\]: .* at least 24 x 24 px"),
    ],
)
def test_bad_crops_fail_before_training(overrides, message, tmp_path):
    cfg = compose_train([*TINY, *SMALL, *overrides], tmp_path)
    with pytest.raises((ValueError, InstantiationException), match=message):  # Hydra wraps the datamodule's error
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_an_unknown_key_on_the_command_line_names_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bokeh.train", "trainer.max_step=10", "hydra.run.dir=run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Could not override 'trainer.max_step'" in result.stderr and "Key 'max_step' is not in struct" in result.stderr
    assert not (tmp_path / "run").exists(), "nothing was written"


# ----------------------------------------------------------------- issue 15: resuming a run stopped by a limit
def logged_run(overrides: list[str], folder: Path, name: str) -> list[dict]:
    """Train in this process with the loss log on; return the log's lines (one per batch)."""
    from reliability_hooks import read_log

    log = folder / f"{name}.jsonl"
    run(compose_train([*TINY, *SMALL, "+callbacks.log._target_=reliability_hooks.LossLog", f"+callbacks.log.path={log}", *overrides], folder / name))
    return read_log(log)


@pytest.mark.parametrize("stop", ["trainer.max_steps=2", "+callbacks.stop._target_=reliability_hooks.StopAtStep"],
                         ids=["max_steps", "should_stop (max_time's way)"])
def test_a_run_stopped_mid_epoch_by_a_limit_resumes_in_that_epoch(stop, tmp_path):
    # 4 training pairs, batch 1: 4 batches per epoch; 6 steps = 1.5 epochs
    reference = logged_run(["trainer.max_steps=6"], tmp_path, "whole")
    assert [(line["step"], line["epoch"]) for line in reference] == [(1, 0), (2, 0), (3, 0), (4, 0), (5, 1), (6, 1)]
    stopped = [stop] if "max_steps" in stop else ["trainer.max_steps=6", stop, "+callbacks.stop.step=2"]
    first = logged_run(stopped, tmp_path, "stopped")
    assert [line["step"] for line in first] == [1, 2]
    last = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 0, "samples": 2}]
    assert saved["epoch"] == 0, "the checkpoint says epoch 0 is not finished"
    resumed = logged_run(["trainer.max_steps=6", f"ckpt_path={last}"], tmp_path, "resumed")
    # the rest of epoch 0 (steps 3 and 4), then epoch 1: what the uninterrupted run trained, loss for loss
    by_step = {line["step"]: line for line in reference}
    assert [(line["step"], line["epoch"]) for line in resumed] == [(3, 0), (4, 0), (5, 1), (6, 1)]
    for line in resumed:
        assert line["names"] == by_step[line["step"]]["names"]
        assert line["train/loss"] == pytest.approx(by_step[line["step"]]["train/loss"], rel=1e-5, abs=1e-6)


def test_resuming_when_a_limit_is_already_reached_says_so_and_trains_nothing(tmp_path):
    run(compose_train([*TINY, *SMALL, "trainer.max_time=00:00:00:01", "trainer.max_epochs=1000"], tmp_path / "timed"))
    last = tmp_path / "timed" / "checkpoints" / "last.ckpt"
    spent = torch.load(last, weights_only=True)["callbacks"]["Timer"]["time_elapsed"]["train"]
    assert spent >= 1
    with pytest.raises(bokeh.train.ResumeLimitError, match=r"trainer.max_time=00:00:00:01 counts the whole run.*give a larger one"):
        run(compose_train([*TINY, *SMALL, "trainer.max_time=00:00:00:01", f"ckpt_path={last}"], tmp_path / "again"))
    step = torch.load(last, weights_only=True)["global_step"]
    with pytest.raises(bokeh.train.ResumeLimitError, match=rf"is at step {step}, and trainer.max_steps={step} counts the whole run"):
        run(compose_train([*TINY, *SMALL, f"trainer.max_steps={step}", f"ckpt_path={last}"], tmp_path / "again"))
    assert not (tmp_path / "again" / "checkpoints").exists(), "nothing was trained or written"


# ----------------------------------------------------------------- issue 15: a checkpoint of other settings
def test_resuming_with_other_model_settings_is_one_sentence(tmp_path):
    from bokeh.checkpoint import CheckpointError

    run(compose_train([*TINY, *SMALL, "trainer.max_steps=1"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as error:
        run(compose_train([*TINY, *SMALL, "model.width2=8", f"ckpt_path={last}"], tmp_path / "other"))
    message = str(error.value)
    assert "model.width2=4" in message and "model.width2=8" in message and "init_from=" in message
    assert len(message.splitlines()) == 1 and "Missing key" not in message
    with pytest.raises(CheckpointError, match=r"is a pretrain checkpoint but this run is stage=finetune.*init_from="):
        run(compose_train([*TINY, *SMALL, "stage=finetune", "init_from=null", f"ckpt_path={last}"], tmp_path / "fine"))


def test_a_checkpoint_whose_weights_do_not_fit_its_settings_is_one_sentence_everywhere(tmp_path):
    """render, evaluate and export load through load_generator; the notebooks through BokehGAN."""
    from bokeh.checkpoint import CheckpointError, load_generator
    from bokeh.lit import BokehGAN

    run(compose_train([*TINY, *SMALL, "trainer.max_steps=1"], tmp_path / "first"))
    checkpoint = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["generator"]["width2"] = 8  # settings and weights disagree
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    for load in (load_generator, lambda path: BokehGAN.load_from_checkpoint(path, map_location="cpu", weights_only=True)):
        with pytest.raises(CheckpointError, match=r"do not fit .*\d+ of another shape \(e\.g\. '") as error:
            load(edited)
        assert len(str(error.value).splitlines()) == 1
