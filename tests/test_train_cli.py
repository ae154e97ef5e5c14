"""`python -m bokeh.train` as a user runs it: a subprocess, from another working directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from bokeh.checkpoint import load_generator
from user_cli import cli, one_line

TINY = ["model.width1=4", "model.width2=4", "model.blocks=1", "critic.ndf=4", "critic.depths=[3]"]
SMALL_DATA = ["data.n=6", "data.val_count=1", "data.batch_size=2"]


def train(cwd: Path, *overrides: str, data: list[str] = SMALL_DATA) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    given = {o.partition("=")[0] for o in overrides}  # a key is given once (bokeh.train refuses two): the test's own wins
    return subprocess.run(
        [sys.executable, "-m", "bokeh.train", *[o for o in (*TINY, *data) if o.partition("=")[0] not in given], *overrides],
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


# ----------------------------------------------------------------------------- issue 15
AWKWARD = "epoch=3-step=9/my model's \"run\" [1], final"  # '=', spaces, quotes, brackets, a comma


@pytest.mark.slow
def test_any_path_works_for_train_and_evaluate(tmp_path):
    """ckpt_path=, init_from=, data.root=, data.include_list=, hydra.run.dir= and evaluate's ckpt=/out=
    used to fail in Hydra's parser (`mismatched input '='`) or split at the comma."""
    from bokeh.data.synthesize import write_dataset

    root = write_dataset(tmp_path / "data=1" / "my ebb, v2", n=6, size=(32, 48), seed=1)
    listing = tmp_path / "lists=1" / "keep it's.txt"
    listing.parent.mkdir()
    listing.write_text("0\n1\n2\n")
    ebb = ["data=ebb", f"data.root={root}", f"data.include_list={listing}", "data.crop_size=[16,24]", "data.train_ids=[0,3]",
           "data.val_ids=[4,5]", "data.num_workers=0", "data.batch_size=1"]
    run_dir = tmp_path / "runs" / AWKWARD
    first = train(tmp_path, "trainer.max_steps=2", f"hydra.run.dir={run_dir}", data=ebb)
    assert first.returncode == 0, first.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    resumed = train(tmp_path, "trainer.max_steps=3", f"ckpt_path={last}", f"hydra.run.dir={run_dir} resumed", data=ebb)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(Path(f"{run_dir} resumed") / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    finetune = subprocess.run([sys.executable, "-m", "bokeh.train", "stage=finetune", f"init_from={last}", "--cfg", "job"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert finetune.returncode == 0, finetune.stderr[-2000:]
    assert yaml.safe_load(finetune.stdout)["init_from"] == str(last)  # the composed config holds the exact path
    report = tmp_path / "reports" / AWKWARD / "report.json"
    report.parent.mkdir(parents=True)
    evaluated = subprocess.run([sys.executable, "-m", "bokeh.evaluate", f"ckpt={last}", f"out={report}", *ebb],
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(report.read_text())["model"]["images"] == 2


def test_an_unwritable_run_folder_is_one_line_before_hydra_creates_it(tmp_path):
    result = train(tmp_path, "trainer.fast_dev_run=true", "hydra.run.dir=/proc/bokeh-run")
    assert result.returncode == 2
    assert "bokeh.train: output folder /proc/bokeh-run is not writable" in result.stderr and "hydra.run.dir=" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ctrl_c_during_training_names_the_checkpoint_to_resume_from(tmp_path):
    import signal
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "bokeh.train", *TINY, *SMALL_DATA, "data.on_the_fly=true", "trainer.max_steps=100000",
         "callbacks.last.every_n_train_steps=2", "callbacks.progress=null", "trainer.enable_progress_bar=false", "hydra.run.dir=run"],
        cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    start = time.monotonic()
    while not last.exists():
        assert process.poll() is None and time.monotonic() - start < 600, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-3000:]
    assert f"the last checkpoint is {last}" in err and f"resume with ckpt_path='{last}'" in err
    assert "Traceback" not in err
    assert not [p for p in last.parent.iterdir() if p.name.endswith(".partial")], "no half-written checkpoint"
    torch.load(last, weights_only=True)  # complete


# ----------------------------------------------------------------------------- run folders (issue 32, item 5)
def fake_earlier_run(run: Path) -> dict[str, bytes]:
    """A run folder as a finished run leaves it (experiment=demo's is always outputs/demo/pretrain)."""
    for name, data in ((".hydra/config.yaml", b"seed: 0\n"), ("checkpoints/last.ckpt", b"earlier last"),
                       ("checkpoints/best-step=2.ckpt", b"earlier best")):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_bytes(data)
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_a_run_folder_holding_an_earlier_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    run = tmp_path / "run"
    before = fake_earlier_run(run)
    refused = train(tmp_path, "trainer.fast_dev_run=true", "callbacks.progress=null", f"hydra.run.dir={run}")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert "holds an earlier run" in refused.stderr and "ckpt_path=" in refused.stderr and "overwrite=true" in refused.stderr
    after = {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}
    assert after == before, "the earlier run's checkpoints and .hydra/ are untouched, no log added"
    (run / "checkpoints" / "my_best.ckpt").write_bytes(b"mine")  # a user's own file beside the run's: not the run's to remove
    replaced = train(tmp_path, "trainer.max_steps=1", "callbacks.progress=null", "trainer.enable_progress_bar=false",
                     f"hydra.run.dir={run}", "overwrite=true")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert not (run / "checkpoints" / "best-step=2.ckpt").exists(), "the earlier run's best checkpoint cannot pass for this run's"
    assert (run / "checkpoints" / "my_best.ckpt").read_bytes() == b"mine", "overwrite=true removes only the earlier run's files"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 1
    assert (run / ".hydra" / "config.yaml").read_bytes() != before[".hydra/config.yaml"]


# ----------------------------------------------------------------------------- bad input: one line, nothing written (issues 7, 21)
def test_an_unknown_key_on_the_command_line_names_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bokeh.train", "trainer.max_step=10", "hydra.run.dir=run"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [  # one sentence, not Hydra's seven lines (issue 32, F5)
        "bokeh.train: trainer.max_step=10: trainer has no key 'max_step' (did you mean trainer.max_steps?); its keys are "
        + result.stderr.split("its keys are ")[1].split(":")[0] + ": use one of them, or write +trainer.max_step=10 to add a new key"]
    assert "max_steps" in result.stderr.split("its keys are ")[1]
    assert not (tmp_path / "run").exists(), "nothing was written"


def test_a_wrong_data_root_is_one_line_before_anything_is_built(tmp_path):
    result = cli("bokeh.train", "data=ebb", f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Params" not in result.stdout  # no model summary either
    assert "nowhere does not exist" in result.stderr


# ----------------------------------------------------------------------------- a refused run touches no run folder (issue 25)
def tiny_train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    from test_train import DATA, QUIET, TINY_CLI

    return cli("bokeh.train", *TINY_CLI, *DATA, *QUIET, *overrides, cwd=cwd, timeout=300)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_refused_run_leaves_the_run_folder_it_was_pointed_at_as_it_was(tmp_path):
    run = tmp_path / "run"
    first = tiny_train(tmp_path, "trainer.max_steps=2", f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (run / ".hydra" / "config.yaml").is_file() and (run / ".hydra" / "overrides.yaml").is_file()
    before = snapshot(run)
    # overwrite=true: an earlier run is cleared only once this one has passed its checks
    refused = tiny_train(tmp_path, "trainer.max_steps=2", f"init_from={tmp_path / 'typo.ckpt'}", f"hydra.run.dir={run}", "overwrite=true")
    assert "typo.ckpt does not exist" in one_line(refused)
    assert snapshot(run) == before, "the .hydra files and train.log of the earlier run are untouched"


def test_a_refused_run_leaves_no_folder_of_its_own(tmp_path):
    refused = tiny_train(tmp_path, f"init_from={tmp_path / 'typo.ckpt'}", f"hydra.run.dir={tmp_path / 'runs' / 'new'}")
    one_line(refused)
    assert not (tmp_path / "runs").exists()


def test_a_resumed_run_appends_to_metrics_csv(tmp_path):
    run = tmp_path / "run"
    first = tiny_train(tmp_path, "trainer.max_steps=4", "trainer.log_every_n_steps=1", f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = run / "logs" / "metrics.csv"
    rows = metrics.read_text().splitlines()
    resumed = tiny_train(tmp_path, "trainer.max_steps=8", "trainer.log_every_n_steps=1", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
                         f"hydra.run.dir={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    import csv

    after = list(csv.DictReader(metrics.open()))
    steps = [int(row["step"]) for row in after]
    assert len(after) > len(rows) - 1 and min(steps) < 4 <= max(steps), "the earlier rows are kept, the new ones follow"


def test_fast_dev_run_writes_nothing_outside_its_run_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = tiny_train(work, "trainer.fast_dev_run=true", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(work.iterdir()) == [], "the validation strip (and everything else) goes under the run folder"
