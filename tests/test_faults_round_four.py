"""Faults a new user meets, round four (issue 25), each a kind: colour by what a profile does,
data sets that know whether they are finished, run folders nothing else touches, values the model
never learned, one sentence instead of a traceback, model files that say how to feed them.

CLI cases run ``python -m bokeh.<cli>`` as a subprocess (or ``main(argv)``), as a user does.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from test_new_user_faults import SRGB_PRIMARIES, cli, expected_srgb, icc_profile, patches
from test_render import gradient_photo, write_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    """The command failed with ``code`` and said why without a traceback; its stderr."""
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr


# ----------------------------------------------------------------------------- 1. colour by content
LINEAR_SRGB = {"primaries": SRGB_PRIMARIES, "gamma": 1.0}


def test_a_linear_profile_named_srgb_is_converted_by_what_it_does(tiny_ckpt, tmp_path):
    raw = patches()
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    # Elle Stone's sRGB-elle-V2-g10 (shipped with Krita): sRGB's primaries, a linear curve
    Image.fromarray(raw).save(folder / "linear.png", icc_profile=icc_profile(SRGB_PRIMARIES, 1.0, "sRGB-elle-V2-g10.icc"))
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={out}", "--side-by-side", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    with Image.open(out / "linear.png") as written:
        left = np.asarray(written.convert("RGB"), np.float64)[:, :64]
    expected = expected_srgb(raw.astype(np.float64), LINEAR_SRGB)
    assert np.abs(expected - raw).max() > 40, "the test colours must change when converted"
    assert np.abs(left - expected).max() <= 2.5, "the unchanged half shows the colours the profile means"



# ----------------------------------------------------------------------------- 7. still failing from round three
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 123456\n"


@pytest.mark.parametrize("suffix", [".ckpt", ".onnx", ".tflite"])
def test_a_git_lfs_pointer_as_ckpt_is_called_one(tmp_path, suffix):
    Image.fromarray(gradient_photo(16, 16)).save(tmp_path / "p.png")
    (tmp_path / f"model{suffix}").write_text(LFS_POINTER)
    result = cli("bokeh.render", f"input={tmp_path / 'p.png'}", f"ckpt={tmp_path / f'model{suffix}'}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    err = one_line(result)
    assert "is a Git LFS pointer, not a model file" in err and "git lfs pull" in err and "weights_only" not in err


def test_a_git_lfs_pointer_is_one_sentence_in_train_and_evaluate(tmp_path):
    pointer = tmp_path / "last.ckpt"
    pointer.write_text(LFS_POINTER)
    evaluated = cli("bokeh.evaluate", f"ckpt={pointer}", f"out={tmp_path / 'r.json'}", cwd=tmp_path)
    assert "is a Git LFS pointer" in one_line(evaluated)
    trained = cli("bokeh.train", "experiment=demo", f"init_from={pointer}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert "is a Git LFS pointer" in one_line(trained)
