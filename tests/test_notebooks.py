"""The notebooks run, top to bottom, on tiny checkpoints, so they cannot rot; and git holds them
without outputs.

``01_load_checkpoint_and_render`` runs on a paper-configuration checkpoint and on one with the
controls (tap to focus, aperture). ``02_torch_vs_tflite`` converts the tiny model with the controls
itself at 64 x 96 (its conversion cell is what a user without a TFLite file runs) and asserts
torch-vs-TFLite parity inside the notebook, at the defaults and with the controls set.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from test_render import write_tiny_checkpoint

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def execute(name: str, env: dict[str, str]) -> nbformat.NotebookNode:
    """Run ``notebooks/<name>`` in a fresh kernel with ``env`` set; raises on the first failing cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def outputs(notebook: nbformat.NotebookNode, kind: str) -> list:
    """Every output of ``kind`` (``text`` for streams, else a MIME type such as ``image/png``)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if kind == "text" and output.get("output_type") == "stream":
                found.append(output["text"])
            elif kind in output.get("data", {}):
                found.append(output["data"][kind])
    return found


CONTROLS = {"focus_input": True, "aperture_input": True}


def environment(root: Path, **generator) -> dict[str, str]:
    checkpoint = write_tiny_checkpoint(root / "tiny.ckpt", **generator)
    return {"BOKEH_NOTEBOOK_CKPT": str(checkpoint), "BOKEH_NOTEBOOK_OUT": str(root / "out"),
            "BOKEH_NOTEBOOK_EXPORT_SIZE": "64x96", "BOKEH_NOTEBOOK_REPEATS": "2", "BOKEH_NOTEBOOK_THREADS": "2",
            "BOKEH_NOTEBOOK_TFLITE": ""}


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory) -> dict[str, str]:
    """A paper-configuration checkpoint (image input only)."""
    return environment(tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(scope="module")
def controls_env(tmp_path_factory) -> dict[str, str]:
    """A checkpoint that takes both controls."""
    return environment(tmp_path_factory.mktemp("notebooks_controls"), **CONTROLS)


def test_notebooks_are_stored_without_outputs():
    assert [p.name for p in ALL] == ["01_load_checkpoint_and_render.ipynb", "02_torch_vs_tflite.ipynb"]
    for path in ALL:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


@pytest.mark.slow
def test_load_checkpoint_and_render_runs(notebook_env):
    notebook = execute("01_load_checkpoint_and_render.ipynb", notebook_env)
    assert len(outputs(notebook, "image/png")) == 3  # input | output | difference per photo
    text = "".join(outputs(notebook, "text"))
    assert "stage: pretrain" in text and "astronaut: 512 x 512" in text
    assert "model inputs: image\n" in text and "takes no controls" in text
    written = sorted(p.name for p in (Path(notebook_env["BOKEH_NOTEBOOK_OUT"])).glob("*_input_output_difference.png"))
    assert written == ["astronaut_input_output_difference.png", "chelsea_input_output_difference.png",
                       "coffee_input_output_difference.png"]


@pytest.mark.slow
def test_load_checkpoint_and_render_shows_the_controls(controls_env):
    notebook = execute("01_load_checkpoint_and_render.ipynb", controls_env)
    assert len(outputs(notebook, "image/png")) == 3 + 2  # and photo | f/1.8 | f/8 per tap
    text = "".join(outputs(notebook, "text"))
    assert "model inputs: image, focus, aperture" in text
    assert "tap face (0.45, 0.2), f/8" in text and "tap lower right (0.8, 0.85), f/1.8" in text
    written = sorted(p.name for p in Path(controls_env["BOKEH_NOTEBOOK_OUT"]).glob("astronaut_tap_*.png"))
    assert written == ["astronaut_tap_face.png", "astronaut_tap_lower_right.png"]


@pytest.mark.slow
@pytest.mark.export
def test_torch_vs_tflite_runs_and_agrees(controls_env):
    notebook = execute("02_torch_vs_tflite.ipynb", controls_env)  # asserts max |diff| < 1e-4 itself
    text = "".join(outputs(notebook, "text"))
    assert "static input size 64 x 96" in text and "model inputs: image, focus, aperture" in text
    assert "tap, f/4" in text
    assert "TFLite float32" in text and "TFLite float16" in text and "x torch" in text
    assert len(outputs(notebook, "image/png")) == 3
    again = execute("02_torch_vs_tflite.ipynb", controls_env)  # a second run: its own earlier export is reused, not refused
    assert "reusing the export of" in "".join(outputs(again, "text")) and len(outputs(again, "image/png")) == 3
