"""`python -m bokeh.train` as a user runs it: a subprocess, from another working directory."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from bokeh.checkpoint import load_generator

TINY = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]"]
SMALL_DATA = ["data.n=6", "data.val_count=1", "data.batch_size=2"]


def train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bokeh.train", *TINY, *SMALL_DATA, *overrides],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


def checkpoint_in(folder: Path, name: str = "last.ckpt") -> Path:
    found = sorted(folder.rglob(name))
    assert found, f"no {name} under {folder}"
    return found[-1]


def test_both_stages_fast_dev_run_from_another_directory(tmp_path):
    pretrain = train(tmp_path, "stage=pretrain", "trainer.fast_dev_run=true", "hydra.run.dir=runs/pre")
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    first = checkpoint_in(tmp_path / "runs" / "pre")
    assert torch.load(first)["hyper_parameters"]["stage"] == "pretrain"

    finetune = train(
        tmp_path, "stage=finetune", f"init_from={first}", "loss.vgg.weights=random",
        "trainer.fast_dev_run=true", "hydra.run.dir=runs/fine",
    )
    assert finetune.returncode == 0, finetune.stderr[-3000:]
    second = checkpoint_in(tmp_path / "runs" / "fine")
    state = torch.load(second)
    assert state["hyper_parameters"]["stage"] == "finetune"
    assert any(key.startswith("critics.") for key in state["state_dict"])
    assert not any(key.startswith("vgg.") for key in state["state_dict"]), "frozen VGG is not saved"
    load_generator(second)  # the generator alone loads without Lightning


def test_finetune_without_init_from_fails_before_training(tmp_path):
    result = train(tmp_path, "stage=finetune", "trainer.fast_dev_run=true", "hydra.run.dir=runs/x")
    assert result.returncode != 0
    assert "init_from" in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_init_from_with_other_widths_is_a_clear_error(tmp_path):
    pretrain = train(tmp_path, "trainer.fast_dev_run=true", "hydra.run.dir=runs/pre")
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    result = train(
        tmp_path, "stage=finetune", f"init_from={checkpoint_in(tmp_path / 'runs' / 'pre')}", "model.width2=8",
        "loss.vgg.weights=random", "trainer.fast_dev_run=true", "hydra.run.dir=runs/fine",
    )
    assert result.returncode != 0
    assert "same model settings" in result.stderr
