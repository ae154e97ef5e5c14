"""The phone pipeline's pair at the paper's size, and an export without the segmenter (issue 30).

The pair's contents, names and parity with torch are checked on the small controls export
(``test_export_controls.py``); here: the exported Glass-Net and segmenter compile fully accelerated
for LiteRT's GPU accelerator at 1024 x 1536 (compile only: a software adapter is too slow to run
Glass-Net at that size), and ``python -m bokeh.export`` without the segmenter stops before any work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bokeh.export import pair
from bokeh.runtimes import LiteRTGpuRuntime
from bokeh.runtimes.segmenter import SubjectSegmenter

pytestmark = pytest.mark.export

from test_export_controls import REFERENCE_LIKE  # tests/export/ is on sys.path

REPO = Path(__file__).resolve().parents[2]
PAPER_SIZE = (1024, 1536)


def export_cli(*args: str, prelude: str = "", cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m bokeh.export ARGS`` in a subprocess, after ``prelude`` (Python run first)."""
    code = f"{prelude}\nimport runpy, sys\nsys.argv = ['bokeh.export', *{list(args)!r}]\nrunpy.run_module('bokeh.export', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=600)


def test_export_without_the_segmenter_is_one_sentence_exit_2_and_writes_nothing(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    result = export_cli(f"ckpt={tiny_checkpoint}", f"out={out}", "size=64x96",
                        prelude="import bokeh.runtimes.segmenter as s; s.find_spec = lambda name: None")
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("bokeh.export")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "mediapipe" in lines[0] and "pip install mediapipe==0.10.21" in lines[0]
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


@pytest.mark.slow
def test_the_pair_compiles_fully_accelerated_at_the_papers_size(make_checkpoint, tmp_path, vulkan_adapter):
    checkpoint = make_checkpoint(tmp_path / "controls.ckpt", seed=3, **REFERENCE_LIKE)
    out = tmp_path / "paper"
    result = export_cli(f"ckpt={checkpoint}", f"out={out}", f"size={PAPER_SIZE[0]}x{PAPER_SIZE[1]}", "export.float16=false",
                        "verify.gpu_accelerator=off", "verify.latency_repeats=1", "verify.tf_analyzer=false")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / pair.SEGMENTER_FILE).is_file() and (out / pair.PIPELINE_FILE).is_file()
    with LiteRTGpuRuntime(out / "bokeh_float32.tflite") as glassnet:  # the GPU alone: raises unless fully accelerated
        assert glassnet.fully_accelerated and glassnet.input_size == PAPER_SIZE
        assert glassnet.output_names == ["bokeh", "matte", "background"]
    segmenter = SubjectSegmenter(out / pair.SEGMENTER_FILE, "gpu")
    assert segmenter.model.fully_accelerated and segmenter.size == (256, 256)
    segmenter.close()
