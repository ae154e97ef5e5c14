"""What the set writers (bokeh.data.photo_pairs, bokeh.data.synthesize) may remove and when they check
(issue 32, item 4): ``overwrite=true`` removes only the files an earlier set of ours lists, never a
user's own; every value and input is checked before the first file is touched; the names of one run
do not collide. Each case runs the real command line as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bokeh.images import write_image
from user_cli import cli
from user_cli import one_line as refused



def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def masked_source(root: Path, names=("a", "b"), mask_size=None) -> Path:
    """Portraits with subject masks: images/<name>.jpg + masks/<name>.png (64 x 96, an ellipse)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :96]
    subject = ((yy - 34) / 20.0) ** 2 + ((xx - 48) / 14.0) ** 2 <= 1
    for name in names:
        write_image(root / "images" / f"{name}.jpg", rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
        mask = np.where(subject, 255, 0).astype(np.uint8)
        if mask_size is not None and name == names[-1]:
            mask = np.zeros(mask_size, np.uint8)
            mask[8:-8, 8:-8] = 255
        write_image(root / "masks" / f"{name}.png", mask)
    return root


def photo_pairs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return cli("bokeh.data.photo_pairs", *args, "short_side=32", cwd=cwd)


@pytest.fixture
def finished(tmp_path) -> tuple[Path, Path]:
    """``(src, out)``: a finished photo-pair set of two portraits."""
    src, out = masked_source(tmp_path / "portraits"), tmp_path / "set"
    done = photo_pairs(f"src={src}", f"out={out}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return src, out


def test_overwrite_never_removes_a_users_own_pairs(tmp_path):
    src, out = masked_source(tmp_path / "portraits"), tmp_path / "ebb"
    for folder in ("original", "bokeh"):  # the user's own pairs in the EBB! layout (or out= mistyped as EBB! itself)
        write_image(out / folder / "IMG_0001.jpg", np.full((16, 24, 3), 90, np.uint8))
    before = tree(out)
    err = refused(photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path))
    assert "original/IMG_0001.jpg" in err and "never other files" in err
    assert tree(out) == before, "nothing removed, nothing written"


def test_overwrite_replaces_exactly_the_files_of_our_earlier_set(finished, tmp_path):
    src, out = finished
    meta = json.loads((out / "meta.json").read_text())
    assert "original/portraits-a.jpg" in meta["files"] and "f_numbers.json" in meta["files"], "meta.json lists the set's files"
    image_mode = (out / "original" / "portraits-a.jpg").stat().st_mode
    assert (out / "meta.json").stat().st_mode == (out / "f_numbers.json").stat().st_mode == image_mode, "one writer, one file mode"
    (out / "notes.txt").write_text("mine")  # beside the set: not in its places, kept
    done = photo_pairs(f"src={src}", f"out={out}", "seed=3", "overwrite=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "meta.json").read_text())["seed"] == 3
    assert not (out / ".bokeh-writing.json").exists(), "the manifest goes once the set is finished"
    (out / "original" / "holiday.jpg").write_bytes((out / "original" / "portraits-a.jpg").read_bytes())  # a user's photo put in it
    before = tree(out)
    err = refused(photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path))
    assert "original/holiday.jpg" in err
    assert tree(out) == before


def test_a_bad_seed_is_refused_before_a_finished_set_is_touched(finished, tmp_path):
    src, out = finished
    before = tree(out)
    err = refused(photo_pairs(f"src={src}", f"out={out}", "seed=-1", "overwrite=true", cwd=tmp_path))
    assert "seed=-1" in err
    assert tree(out) == before
    new = tmp_path / "new"
    assert "seed=-1" in refused(photo_pairs(f"src={src}", f"out={new}", "seed=-1", cwd=tmp_path))
    assert not new.exists(), "no folder made for a refused run"


def test_a_mask_of_the_wrong_size_is_refused_before_any_pair_is_written(finished, tmp_path):
    _, out = finished
    src = masked_source(tmp_path / "odd", names=("a", "b", "c"), mask_size=(40, 40))
    before = tree(out)
    err = refused(photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path))
    assert "c.png" in err and "40 x 40" in err and "96 x 64" in err and "src=" in err  # the masks are src's own masks/ folder
    assert tree(out) == before
    new = tmp_path / "new"
    refused(photo_pairs(f"src={src}", f"out={new}", cwd=tmp_path))
    assert not new.exists()


def test_two_photos_of_one_name_are_refused_not_written_over_each_other(tmp_path):
    src = masked_source(tmp_path / "portraits", names=("a",))
    (src / "images" / "a.jpg").rename(src / "images" / "a.png")  # a.png ...
    masked_source(tmp_path / "portraits", names=("a",))  # ... and a.jpg: both would be pair portraits-a
    out = tmp_path / "set"
    err = refused(photo_pairs(f"src={src}", f"out={out}", cwd=tmp_path))
    assert "portraits-a" in err and "would both be written" in err
    assert not out.exists()


def test_an_interrupted_set_of_ours_is_replaced_by_overwrite(finished, tmp_path):
    src, out = finished
    files = json.loads((out / "meta.json").read_text())["files"]
    (out / "meta.json").unlink()  # as a run interrupted before its end leaves it: the manifest says what is ours
    (out / ".bokeh-writing.json").write_text(json.dumps(files))
    done = photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "meta.json").is_file()


def test_synthesize_checks_its_seed_before_touching_a_finished_set(tmp_path):
    out = tmp_path / "set"
    common = ("size=32x48", f"out={out}", "workers=1", "n=2")
    assert cli("bokeh.data.synthesize", *common, cwd=tmp_path).returncode == 0
    before = tree(out)
    assert "seed=-1" in refused(cli("bokeh.data.synthesize", *common, "seed=-1", "overwrite=true", cwd=tmp_path))
    assert tree(out) == before
    (out / "original" / "mine.jpg").write_bytes(before["original/0.jpg"])
    assert "original/mine.jpg" in refused(cli("bokeh.data.synthesize", *common, "overwrite=true", cwd=tmp_path))
    assert (out / "original" / "mine.jpg").is_file()


def test_a_truncated_or_empty_photo_is_refused_before_any_pair_is_written(finished, tmp_path):
    _, out = finished
    src = masked_source(tmp_path / "cut", names=("a", "b", "c"))
    data = (src / "images" / "c.jpg").read_bytes()
    (src / "images" / "c.jpg").write_bytes(data[: len(data) // 2])  # truncated, the last photo of the sorted list
    before = tree(out)
    err = refused(photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path))
    assert "c.jpg" in err and "src=" in err and "nothing was written" in err
    assert tree(out) == before, "the finished set is untouched: no half-made set"
    (src / "images" / "c.jpg").write_bytes(b"")
    assert "empty (0 bytes)" in refused(photo_pairs(f"src={src}", f"out={tmp_path / 'new'}", cwd=tmp_path))
    assert not (tmp_path / "new").exists()


def test_a_meta_json_listing_files_outside_the_set_removes_none_of_them(finished, tmp_path):
    src, out = finished
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "files": [*meta["files"], "../precious.txt", "notes.txt"]}))
    (out / "notes.txt").write_text("mine too")
    (out / "original" / ".portraits-a.jpg.k2j4h5g3").write_bytes(b"half")  # a killed write's temporary file
    done = photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert outside.read_text() == "mine" and (out / "notes.txt").read_text() == "mine too"
    assert not (out / "original" / ".portraits-a.jpg.k2j4h5g3").exists(), "a stale temporary of the set is removed"


def test_synthesize_does_not_half_replace_a_photo_pair_set(finished, tmp_path):
    """overwrite=true replaces a set the same command wrote: a photo-pair set (with focal/, which
    synthesize does not write) is refused whole, not emptied with its focal/ files left behind."""
    _, out = finished
    before = tree(out)
    err = refused(cli("bokeh.data.synthesize", "size=32x48", f"out={out}", "n=2", "workers=1", "overwrite=true", cwd=tmp_path))
    assert "focal/" in err and "another command" in err
    assert tree(out) == before


@pytest.mark.parametrize("module", ["bokeh.data.photo_pairs", "bokeh.data.synthesize"])
def test_a_users_folder_is_refused_before_anything_is_probed_inside_it(module, tmp_path):
    """issue 32, F16: without overwrite=, a non-empty out= is refused before any probe file is made
    in it or in its subfolders (a probe changes the folders' times, and needs write permission there)."""
    src = masked_source(tmp_path / "portraits")
    out = tmp_path / "mine"
    write_image(out / "original" / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    write_image(out / "bokeh" / "x.jpg", np.zeros((8, 8, 3), np.uint8))
    times = {p: p.stat().st_mtime_ns for p in (out, out / "original", out / "bokeh")}
    args = (f"src={src}", f"out={out}") if module.endswith("photo_pairs") else (f"out={out}", "n=2", "size=32x48")
    err = refused(cli(module, *args, cwd=tmp_path))
    assert "exists and is not empty" in err
    assert {p: p.stat().st_mtime_ns for p in times} == times, "nothing was made and removed inside the user's folders"
