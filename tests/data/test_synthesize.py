"""The data-set writer and its CLI: EBB! layout, same bytes for the same seed, no silent overwrite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bokeh.data.synthesize import ensure_dataset, parse_args, write_dataset
from bokeh.images import read_rgb
from test_photo_pairs import names_in
from user_cli import cli

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "bokeh.data.synthesize", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}


def test_cli_writes_the_ebb_layout_from_any_directory_and_refuses_to_overwrite(tmp_path):
    done = run_cli("out=set", "n=3", "size=48x64", "seed=1", "workers=1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote 3 pairs of 48x64" in done.stdout
    folder = tmp_path / "set"
    assert sorted(p.name for p in (folder / "original").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert sorted(p.name for p in (folder / "bokeh").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert read_rgb(folder / "bokeh" / "2.jpg").shape == (48, 64, 3)
    assert json.loads((folder / "meta.json").read_text())["seed"] == 1
    before = file_bytes(folder)
    again = run_cli("out=set", "n=3", "size=48x64", "seed=2", cwd=tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr and "overwrite=true" in again.stderr
    assert file_bytes(folder) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["out=x", "size=48by64"], "size=48by64: give HEIGHTxWIDTH"),
        (["out=x", "colour=red"], "unknown argument 'colour=red'"),
        (["n=3"], "missing out="),
        (["out=x", "n=many"], "n=many: give a whole number of at least 1"),
        (["out=x", "overwrite=maybe"], "overwrite=maybe: use true or false"),
        (["out=x", "seed=-1"], "seed=-1: give a whole number from 0"),
    ],
)
def test_bad_arguments_get_a_clear_message(args, message):
    with pytest.raises(ValueError, match=message):
        parse_args(args)


def test_cli_reports_bad_arguments_with_usage(tmp_path):
    done = run_cli("out=x", "size=tiny", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == "bokeh.data.synthesize: size=tiny: give HEIGHTxWIDTH in pixels, e.g. 512x768, each side at least 16 and at most 65500"
    assert not (tmp_path / "x").exists()


def test_same_seed_same_bytes_in_one_or_two_processes(tmp_path):
    one = write_dataset(tmp_path / "a", n=4, size=(32, 48), seed=5, workers=1)
    two = write_dataset(tmp_path / "b", n=4, size=(32, 48), seed=5, workers=2)
    other = write_dataset(tmp_path / "c", n=4, size=(32, 48), seed=6, workers=1)
    assert file_bytes(one) == file_bytes(two)
    assert file_bytes(one) != file_bytes(other)


def test_ensure_dataset_reuses_a_finished_set_and_refuses_a_foreign_folder(tmp_path):
    settings = dict(n=2, size=(32, 48), seed=0, noise=0.01, quality=95)
    folder = ensure_dataset(tmp_path / "cache" / "s", **settings)
    stamp = (folder / "original" / "0.jpg").stat().st_mtime_ns
    assert ensure_dataset(folder, **settings) == folder
    assert (folder / "original" / "0.jpg").stat().st_mtime_ns == stamp  # reused, not rewritten
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["s"]  # no temporary left behind
    with pytest.raises(FileExistsError, match="does not hold this synthetic set"):
        ensure_dataset(folder, **{**settings, "seed": 1})
    assert np.array_equal(read_rgb(folder / "original" / "1.jpg").shape, (32, 48, 3))


def test_ctrl_c_stops_with_a_line_and_complete_pairs_only(tmp_path):
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bokeh.data.synthesize", "out=set", "n=5000", "size=64x96", "workers=2"],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    bokeh = tmp_path / "set" / "bokeh"
    start = time.monotonic()
    while not (bokeh.is_dir() and len(list(bokeh.glob("*.jpg"))) >= 2):
        assert process.poll() is None and time.monotonic() - start < 600, process.communicate()[1][-2000:]
        time.sleep(0.02)
    assert process.poll() is None, "finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err, "no traceback, from the main process or a worker"
    originals = sorted(p.name for p in (tmp_path / "set" / "original").iterdir())
    targets = sorted(p.name for p in bokeh.iterdir())
    assert originals == targets and 2 <= len(originals) < 5000, "whole pairs only, no temporary file"
    assert f"interrupted (Ctrl-C); {len(originals)} of 5000 pairs written" in err
    assert not (tmp_path / "set" / "meta.json").exists(), "not marked as a finished set"
    for name in originals:
        read_rgb(tmp_path / "set" / "original" / name)


# ----------------------------------------------------------------------------- overwrite=true with fewer pairs (issue 25)
def test_synthesize_overwrite_with_fewer_pairs_leaves_none_of_the_older(tmp_path):
    out = tmp_path / "set"
    common = ("size=32x48", f"out={out}", "workers=1")
    assert cli("bokeh.data.synthesize", "n=3", *common, cwd=tmp_path).returncode == 0
    result = cli("bokeh.data.synthesize", "n=1", *common, "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for sub in ("original", "bokeh", "coc"):
        assert names_in(out / sub) == ["0"], sub
