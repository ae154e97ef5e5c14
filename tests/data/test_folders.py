"""bokeh.data.folders: a generated set knows whether it is finished; train and evaluate refuse an
interrupted one, or one whose files disagree with its metadata, in one sentence (issue 25)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from PIL import Image

from test_photo_pairs import bsds_source, photo_pairs
from test_render import gradient_photo
from user_cli import cli, one_line


# ----------------------------------------------------------------------------- sets that know they are finished
def interrupted_set(tmp_path: Path) -> Path:
    """A finished photo-pair set, then the marks of an interruption: meta.json gone."""
    src, out = bsds_source(tmp_path / "src"), tmp_path / "set"
    assert photo_pairs(f"src={src}", f"out={out}", cwd=tmp_path).returncode == 0
    return out


def train_on(photo_set: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    return cli("bokeh.train", "experiment=demo", "trainer.max_steps=1", f"data.photo_pairs={photo_set}",
               f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)


def test_an_interrupted_photo_pair_set_is_refused_by_train_and_evaluate(tiny_ckpt, tmp_path):
    out = interrupted_set(tmp_path)
    (out / "meta.json").unlink()
    err = one_line(train_on(out, tmp_path))
    assert "unfinished generated set" in err and "overwrite=true" in err
    assert not (tmp_path / "run").exists()
    evaluated = cli("bokeh.evaluate", f"ckpt={tiny_ckpt}", f"real={out}", f"out={tmp_path / 'r.json'}", cwd=tmp_path)
    assert "unfinished generated set" in one_line(evaluated)


def test_a_set_whose_files_disagree_with_its_metadata_is_refused(tmp_path):
    out = interrupted_set(tmp_path)
    stale = "bsds-old-9"
    for sub, suffix in (("original", ".jpg"), ("bokeh", ".jpg")):
        Image.fromarray(gradient_photo(128, 192)).save(out / sub / f"{stale}{suffix}")
    assert "says 2" in one_line(train_on(out, tmp_path))
    for sub in ("original", "bokeh"):
        (out / sub / f"{stale}.jpg").unlink()
    f_numbers = json.loads((out / "f_numbers.json").read_text())
    (out / "f_numbers.json").write_text(json.dumps({**dict(list(f_numbers.items())[:1]), stale: 1.8}))
    assert "disagree" in one_line(train_on(out, tmp_path))
