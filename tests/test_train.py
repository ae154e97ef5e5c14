"""bokeh.train's faults: non-finite losses, full or unwritable disks, bad configs (one clear error each,
before training) and runs stopped by a limit, in this process; then ``python -m bokeh.train`` killed
mid-save and mid-epoch and resumed, and both stages under DDP on CPU, as subprocesses.

Fault injection: callbacks from ``tests/reliability_hooks.py`` added with Hydra ``+callbacks.<name>``
overrides (this folder is on ``sys.path`` here, and on ``PYTHONPATH`` in the subprocesses).
The command line's other cases are in test_train_cli.py.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf import OmegaConf

import bokeh.train
from bokeh.checkpoint import load_generator
from bokeh.checkpoint_io import partial_path
from bokeh.lit import BokehGAN, NonFiniteLossError
from bokeh.train import CONF_DIR, build_module, run
from reliability_hooks import read_log

TINY = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]"]
# 4 training pairs of 32 x 48 rendered in memory (nothing written), batch 1, no progress bar
SMALL = ["data.n=6", "data.val_count=2", "data.batch_size=1", "data.size=[32,48]", "data.crop_size=[24,24]", "data.on_the_fly=true", "callbacks.progress=null", "callbacks.samples=null", "logger=csv"]

# the subprocess runs (also tests/test_train_cli.py's tiny_train)
HOOKS = str(Path(__file__).resolve().parent)
TINY_CLI = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]", "loss.vgg.weights=random"]
# 8 training pairs (batch 1: 8 batches, 16 optimizer steps per finetune epoch), rendered in memory
DATA = ["data.n=10", "data.val_count=2", "data.batch_size=1", "data.size=[32,48]", "data.crop_size=[24,24]", "data.on_the_fly=true"]
QUIET = ["callbacks.progress=null", "logger=csv", "trainer.enable_progress_bar=false"]


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


# ----------------------------------------------------------------------------- non-finite losses
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


# ----------------------------------------------------------------------------- disk full, unwritable folder
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


# ----------------------------------------------------------------------------- bad configs: one clear error each, before training
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


# ----------------------------------------------------------------------------- issue 15: resuming a run stopped by a limit
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


# ----------------------------------------------------------------- killed and resumed, and DDP on CPU: subprocesses, as a user runs them
def train(cwd: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # one thread per process: faster on a busy 2-core machine, and the same arithmetic in every run
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HOOKS, os.environ.get("PYTHONPATH", "")]), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bokeh.train", *TINY_CLI, *DATA, *QUIET, *overrides],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def logged(name: str, cwd: Path) -> list[str]:
    return ["+callbacks.log._target_=reliability_hooks.LossLog", f"+callbacks.log.path={cwd / (name + '.jsonl')}", f"hydra.run.dir=runs/{name}"]


def assert_same_steps(resumed: list[dict], reference: list[dict]) -> None:
    """Every step of ``resumed`` has the losses, data and counters that ``reference`` had at that step."""
    by_step = {line["step"]: line for line in reference}
    for line in resumed:
        expected = by_step[line["step"]]
        assert (line["epoch"], line["batch"], line["names"]) == (expected["epoch"], expected["batch"], expected["names"]), line["step"]
        for key in ("train/loss", "train/d_loss", "train/gp", "train/adv", "train/vgg"):
            assert line[key] == pytest.approx(expected[key], rel=1e-5, abs=1e-6), (line["step"], key)


@pytest.mark.slow
def test_finetune_killed_mid_save_and_mid_epoch_resumes_with_the_same_losses(tmp_path):
    common = ["stage=finetune", "init_from=null", "trainer.max_steps=40", "callbacks.last.every_n_train_steps=4"]
    # A: the uninterrupted run (40 optimizer steps = 20 batches, 2.5 epochs)
    a = train(tmp_path, *common, *logged("a", tmp_path))
    assert a.returncode == 0, a.stderr[-3000:]
    reference = read_log(tmp_path / "a.jsonl")
    assert [line["step"] for line in reference] == list(range(2, 41, 2))

    # B: SIGKILL halfway through writing the checkpoint due at step 20: last.ckpt stays the step-16 one
    b = train(tmp_path, *common, *logged("b", tmp_path), "+callbacks.kill._target_=reliability_hooks.KillWhileSaving", "+callbacks.kill.step=20")
    assert b.returncode == -signal.SIGKILL, b.stderr[-3000:]
    last_b = tmp_path / "runs" / "b" / "checkpoints" / "last.ckpt"
    assert partial_path(last_b).stat().st_size > 0, "the torn write happened beside last.ckpt"
    with pytest.raises(Exception):
        torch.load(partial_path(last_b), weights_only=True)
    assert torch.load(last_b, weights_only=True)["global_step"] == 16
    assert_same_steps(read_log(tmp_path / "b.jsonl"), reference)

    # C: resume from it (an end-of-epoch checkpoint); SIGKILL at step 26, mid-epoch, between two saves (24 and 28)
    c = train(tmp_path, *common, *logged("c", tmp_path), f"ckpt_path={last_b}", "+callbacks.kill._target_=reliability_hooks.KillAtStep", "+callbacks.kill.step=26")
    assert c.returncode == -signal.SIGKILL, c.stderr[-3000:]
    resumed_c = read_log(tmp_path / "c.jsonl")
    assert [line["step"] for line in resumed_c] == [18, 20, 22, 24, 26]
    assert_same_steps(resumed_c, reference)
    last_c = tmp_path / "runs" / "c" / "checkpoints" / "last.ckpt"
    saved = torch.load(last_c, weights_only=True)
    assert saved["global_step"] == 24 and saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "samples": 4}]

    # D: resume mid-epoch and finish: same losses, and the same weights and optimizer moments at the end
    d = train(tmp_path, *common, *logged("d", tmp_path), f"ckpt_path={last_c}")
    assert d.returncode == 0, d.stderr[-3000:]
    resumed_d = read_log(tmp_path / "d.jsonl")
    assert [line["step"] for line in resumed_d] == list(range(26, 41, 2))
    assert_same_steps(resumed_d, reference)
    end_a = torch.load(tmp_path / "runs" / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    end_d = torch.load(tmp_path / "runs" / "d" / "checkpoints" / "last.ckpt", weights_only=True)
    assert end_a["global_step"] == end_d["global_step"] == 40
    for key, value in end_a["state_dict"].items():
        torch.testing.assert_close(end_d["state_dict"][key], value, rtol=1e-5, atol=1e-6, msg=key)
    for opt_a, opt_d in zip(end_a["optimizer_states"], end_d["optimizer_states"], strict=True):
        for index, state in opt_a["state"].items():
            for name in ("exp_avg", "exp_avg_sq", "step"):
                torch.testing.assert_close(opt_d["state"][index][name], state[name], rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_both_stages_train_under_ddp_on_two_cpu_processes(tmp_path):
    ddp = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]
    pre = train(tmp_path, *ddp, "trainer.max_steps=3", *logged("pre", tmp_path))
    assert pre.returncode == 0, pre.stderr[-3000:]
    assert "distributed_backend=gloo" in pre.stderr + pre.stdout and "MEMBER: 2/2" in pre.stderr + pre.stdout
    # each rank trained on its own half of the pairs: 3 batches each, no pair on both
    seen = {rank: [n for line in read_log(tmp_path / "pre.jsonl") if line["rank"] == rank for n in line["names"]] for rank in (0, 1)}
    assert len(seen[0]) == len(seen[1]) == 3 and not set(seen[0]) & set(seen[1])
    first = tmp_path / "runs" / "pre" / "checkpoints" / "last.ckpt"
    fine = train(tmp_path, *ddp, "stage=finetune", f"init_from={first}", "trainer.max_steps=8", "hydra.run.dir=runs/fine")
    assert fine.returncode == 0, fine.stderr[-3000:]
    # both ranks ran in the one run folder (Lightning re-runs the command with hydra.run.dir for rank 1)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["fine", "pre"]
    assert (tmp_path / "runs" / "fine" / "train_ddp_process_1.log").is_file()
    # rank 0 alone wrote validation samples (asking trainer.log_dir there used to hang the run)
    assert list((tmp_path / "runs" / "fine" / "logs" / "samples").glob("epoch=000_batch=0.png"))
    second = tmp_path / "runs" / "fine" / "checkpoints" / "last.ckpt"
    saved = torch.load(second, weights_only=True)
    assert saved["global_step"] == 8 and saved["hyper_parameters"]["stage"] == "finetune"
    # the DDP checkpoint loads in this single process, through Lightning and without it
    module = BokehGAN.load_from_checkpoint(second, map_location="cpu").eval()
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_generator(second)(image)[0], module(image), rtol=0, atol=0)
    before, after = load_generator(first).state_dict(), module.generator.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "finetune trained the generator"
