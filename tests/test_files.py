"""bokeh.files: atomic writes, and every name one run writes checked before the first write.

The CLI cases run ``python -m bokeh.<cli>`` as a subprocess, as a user does (issue 32, item 3).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from bokeh.checkpoint import save_generator
from bokeh.files import NAME_MAX, OutputPlanError, atomic_file, check_planned, write_text_atomic
from bokeh.images import write_image
from user_cli import cli
from user_cli import one_line as refused
from bokeh.models.glassnet import GlassNet
from bokeh.models.init import trained_like
import torch
from test_render import gradient_photo

BLEND = dict(width1=4, width2=4, blocks=1, blend=True)


@pytest.fixture(scope="module")
def matte_ckpt(tmp_path_factory) -> Path:
    """A tiny Glass-Net with a matte (model.blend=true)."""
    return save_generator(tmp_path_factory.mktemp("ckpt") / "blend.ckpt", trained_like(GlassNet(**BLEND), 0), BLEND)


def photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} if folder.exists() else {}


# ----------------------------------------------------------------------------- the module
def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text_atomic(tmp_path / "report.json", "old")
    with pytest.raises(RuntimeError, match="half-way"):
        with atomic_file(target, "w") as stream:
            stream.write("new, half")
            raise RuntimeError("half-way")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"], "the temporary file is removed"


def test_atomic_files_get_the_mode_open_gives_not_mkstemps(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    written = write_text_atomic(tmp_path / "meta.json", "{}")
    opened = tmp_path / "plain.json"
    opened.write_text("{}")
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(opened.stat().st_mode)


def test_a_longest_legal_name_is_written_atomically(tmp_path):
    name = "n" * (NAME_MAX - 4) + ".png"
    write_image(tmp_path / name, photo(0))
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_the_plan_refuses_collisions_long_names_and_existing_files(tmp_path):
    with pytest.raises(OutputPlanError, match="the matte of a.jpg and the matte of a.png would both be written"):
        check_planned([(tmp_path / "a.matte.png", "the matte of a.jpg"), (tmp_path / "a.matte.png", "the matte of a.png")])
    with pytest.raises(OutputPlanError, match="260 bytes"):
        check_planned([(tmp_path / ("x" * 250 + ".matte.png"), "the matte of x")])
    (tmp_path / "b.png").write_bytes(b"mine")
    with pytest.raises(OutputPlanError, match="overwrite=true"):
        check_planned([(tmp_path / "b.png", "the render of b.png")], overwrite=False)
    assert check_planned([(tmp_path / "b.png", "the render of b.png")]) == [tmp_path / "b.png"]


def test_names_that_differ_in_case_collide_where_the_file_system_folds_case(tmp_path, monkeypatch):
    import bokeh.files

    planned = [(tmp_path / "IMG.jpg", "the render of IMG.jpg"), (tmp_path / "img.jpg", "the render of img.jpg")]
    monkeypatch.setattr(bokeh.files, "case_insensitive", lambda folder: False)  # Linux: two files
    assert len(check_planned(planned)) == 2
    monkeypatch.setattr(bokeh.files, "case_insensitive", lambda folder: True)  # macOS, Windows: one file
    with pytest.raises(OutputPlanError, match="would both be written"):
        check_planned(planned)


def test_the_case_probe_tells_this_file_system_and_leaves_nothing(tmp_path):
    from bokeh.files import case_insensitive

    (tmp_path / "a").write_bytes(b"")
    assert case_insensitive(tmp_path / "not" / "yet") == (tmp_path / "A").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["a"]


# ----------------------------------------------------------------------------- bokeh.render (issue 32, item 3)
def test_render_refuses_two_photos_that_would_share_one_matte(matte_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    write_image(folder / "a.jpg", photo(0))
    write_image(folder / "a.png", photo(1))
    err = refused(cli("bokeh.render", f"input={folder}", f"ckpt={matte_ckpt}", f"out={out}", "matte=true", cwd=tmp_path))
    assert "a.matte.png" in err and "a.jpg" in err and "a.png" in err and "rename" in err
    assert not out.exists(), "nothing written"
    # without mattes the two outputs differ (a.jpg, a.png): rendered as before
    assert cli("bokeh.render", f"input={folder}", f"ckpt={matte_ckpt}", f"out={out}", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.png"]


def test_render_refuses_a_photo_whose_matte_would_replace_another_photos_render(matte_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    write_image(folder / "a.png", photo(0))
    write_image(folder / "a.matte.png", photo(1))  # its render is out/a.matte.png: a.png's matte
    err = refused(cli("bokeh.render", f"input={folder}", f"ckpt={matte_ckpt}", f"out={out}", "matte=true", cwd=tmp_path))
    assert "would both be written" in err and "a.matte.png" in err
    assert not out.exists()


def test_render_refuses_a_name_too_long_for_its_matte_before_any_work(matte_ckpt, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    long = "p" * 250 + ".jpg"  # 254 bytes: a legal name, but its .matte.png would be 260
    write_image(folder / long, photo(0))
    write_image(folder / "b.jpg", photo(1))
    err = refused(cli("bokeh.render", f"input={folder}", f"ckpt={matte_ckpt}", f"out={out}", "matte=true", cwd=tmp_path))
    assert "260 bytes" in err and "shorter name" in err
    assert not out.exists(), "no half-finished run: nothing written"
    done = cli("bokeh.render", f"input={folder}", f"ckpt={matte_ckpt}", f"out={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == sorted([long, "b.jpg"])


# ----------------------------------------------------------------------------- bokeh.export: out/failed/ is an export's own
def test_export_never_removes_a_users_folder_named_failed(matte_ckpt, tmp_path):
    out = tmp_path / "out"
    (out / "failed").mkdir(parents=True)
    (out / "failed" / "notes.txt").write_text("mine")  # a good export removes out/failed: only an earlier export's own
    err = refused(cli("bokeh.export", f"ckpt={matte_ckpt}", f"out={out}", "size=16x24", cwd=tmp_path))
    assert "failed" in err and "not an earlier failed export" in err
    assert (out / "failed" / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- long names; a full disk while probing out= (issues 21, 25)
def test_long_file_names_are_written_atomically(tmp_path):
    name = "é" * 125 + ".png"  # 254 bytes
    assert len(os.fsencode(name)) == 254
    write_image(tmp_path / name, gradient_photo(8, 8))
    from bokeh.checkpoint_io import AtomicCheckpointIO

    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(2)}}, tmp_path / ("c" * 250 + ".ckpt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "c" * 250 + ".ckpt"])


def test_a_full_disk_leaves_no_write_probe_behind(tmp_path, monkeypatch):
    import errno

    from bokeh.cli import OutputFolderError, check_output_folder

    def full(self, data):
        self.touch()  # the file is created, then the write fails: what a full disk does
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputFolderError, match="No space left on device"):
        check_output_folder(tmp_path / "out", "out")
    assert list((tmp_path / "out").iterdir()) == []
