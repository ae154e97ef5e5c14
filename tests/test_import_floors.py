"""The floors of the package (issue 31): import-linter's contracts in pyproject.toml hold, and they
can fail: a model module that imports Lightning, or a floor that imports one above it, breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (make venv installs it)")


def lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "src" / "bokeh", tmp_path / "src" / "bokeh", ignore=shutil.ignore_patterns("*.pt", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path / "src"


def test_the_package_keeps_its_floors(tmp_path):
    done = lint(copy_package(tmp_path), tmp_path)
    assert done.returncode == 0 and "0 broken" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]


def test_a_model_importing_lightning_and_a_floor_importing_upwards_break_the_contracts(tmp_path):
    src = copy_package(tmp_path)
    norms = src / "bokeh" / "models" / "norms.py"
    norms.write_text("import pytorch_lightning  # noqa: F401\n" + norms.read_text())
    composite = src / "bokeh" / "composite.py"
    composite.write_text("import bokeh.render  # noqa: F401\n" + composite.read_text())
    done = lint(src, tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    assert "2 broken" in done.stdout or ("BROKEN" in done.stdout and "pytorch_lightning" in done.stdout), done.stdout[-3000:]
    assert "bokeh.composite -> bokeh.render" in done.stdout and "pytorch_lightning" in done.stdout, done.stdout[-3000:]
