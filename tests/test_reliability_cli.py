"""`python -m bokeh.train` killed and resumed, and run under DDP on CPU: subprocesses, as a user runs them.

Fault injection: callbacks from ``tests/reliability_hooks.py`` added with Hydra ``+callbacks.<name>``
overrides (this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bokeh.checkpoint import load_generator
from bokeh.checkpoint_io import partial_path
from bokeh.lit import BokehGAN
from reliability_hooks import read_log

HOOKS = str(Path(__file__).resolve().parent)
TINY = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]", "loss.vgg.weights=random"]
# 8 training pairs (batch 1: 8 batches, 16 optimizer steps per finetune epoch), rendered in memory
DATA = ["data.n=10", "data.val_count=2", "data.batch_size=1", "data.size=[32,48]", "data.crop_size=[24,24]", "data.on_the_fly=true"]
QUIET = ["callbacks.progress=null", "logger=csv", "trainer.enable_progress_bar=false"]


def train(cwd: Path, *overrides: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # one thread per process: faster on a busy 2-core machine, and the same arithmetic in every run
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HOOKS, os.environ.get("PYTHONPATH", "")]), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bokeh.train", *TINY, *DATA, *QUIET, *overrides],
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
