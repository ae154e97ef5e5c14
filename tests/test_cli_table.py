"""Every command line against every kind of bad input, as a user runs it: one sentence, exit 2, and
nothing written or deleted.

One table: each row is a command (``bokeh.render``, ``bokeh.evaluate``, ``bokeh.export``,
``bokeh.train``, ``bokeh.data.photo_pairs``, ``bokeh.data.synthesize``, ``bokeh.pretrained``,
``bokeh.demo``), its arguments (``{tree}`` is a fresh copy of the files below) and a piece of the
one sentence it must print. The kinds of bad input: an option value of the wrong type or range, a
file that is not what it should be (an image as a model, a Git LFS pointer), a folder where a file
belongs (and a file where a folder belongs), an empty file, an output that exists, an unwritable
``out=`` (a path under a file, which no permission lets anyone write, root included).

Each case runs in its own subprocess (as a user would run it), all at once in a small pool: a
refusal happens before any work, so each takes about the command's import time. The tree is
snapshot (every path, size and modification time) before and after: a refused run writes and
deletes nothing. A new command joins :data:`CASES`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ENV = {**os.environ, "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 123\n"


def write_tree(root: Path) -> Path:
    """The files the cases point at: a photo, an empty photo, model files that are not models, a
    folder of photos, a finished earlier render, a non-empty folder."""
    root.mkdir(parents=True)
    photo = (np.arange(24 * 32 * 3) % 251).astype(np.uint8).reshape(24, 32, 3)
    Image.fromarray(photo).save(root / "photo.png")
    (root / "empty.png").write_bytes(b"")
    (root / "empty.ckpt").write_bytes(b"")
    (root / "pointer.ckpt").write_bytes(LFS_POINTER)
    (root / "notes.txt").write_text("not a model\n")
    (root / "models").mkdir()
    (root / "models" / "model.ckpt").write_bytes(b"x")  # a folder where a model file belongs
    (root / "photos").mkdir()
    Image.fromarray(photo).save(root / "photos" / "a.png")
    (root / "done").mkdir()  # an earlier run's output: render's out=done holds a.png already
    Image.fromarray(photo).save(root / "done" / "a.png")
    (root / "done" / "photo.png").write_bytes((root / "photo.png").read_bytes())
    (root / "portraits" / "images").mkdir(parents=True)  # a photo with its subject mask
    (root / "portraits" / "masks").mkdir()
    Image.fromarray(photo).save(root / "portraits" / "images" / "a.png")
    Image.fromarray(np.pad(np.full((12, 16), 255, np.uint8), ((6, 6), (8, 8)))).save(root / "portraits" / "masks" / "a.png")
    (root / "twins" / "images").mkdir(parents=True)  # portraits x.jpg and x.png: two photos of one name
    (root / "twins" / "masks").mkdir()
    for name in ("a.png", "a.jpg"):
        Image.fromarray(photo).save(root / "twins" / "images" / name)
    Image.fromarray(np.pad(np.full((12, 16), 255, np.uint8), ((6, 6), (8, 8)))).save(root / "twins" / "masks" / "a.png")
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("a user's file\n")
    return root


# command, arguments, a piece of the sentence
R = ("input={tree}/photo.png", "ckpt=reference")
CASES = [
    # bokeh.render
    ("bokeh.render", (*R, "out={tree}/o", "quality=abc"), "quality=abc: give a whole number from 1 to 100"),
    ("bokeh.render", (*R, "out={tree}/o", "short_side=-3"), "short_side=-3: give a whole number of at least 8"),
    ("bokeh.render", (*R, "out={tree}/o", "focus=50%,50%"), "focus=50%,50% is not a point"),
    ("bokeh.render", (*R, "out={tree}/o", "aperture=1.4"), "aperture=1.4 is wider than"),
    ("bokeh.render", (*R, "out={tree}/o", "colour=red"), "unknown argument 'colour=red'"),
    ("bokeh.render", ("input={tree}/photo.png", "ckpt={tree}/photo.png", "out={tree}/o"), "is an image, not a model"),
    ("bokeh.render", ("input={tree}/photo.png", "ckpt={tree}/models", "out={tree}/o"), "is a folder, not a model file"),
    ("bokeh.render", ("input={tree}/photo.png", "ckpt={tree}/empty.ckpt", "out={tree}/o"), "is empty (0 bytes)"),
    ("bokeh.render", ("input={tree}/photo.png", "ckpt={tree}/pointer.ckpt", "out={tree}/o"), "Git LFS pointer"),
    ("bokeh.render", ("input={tree}/empty.png", "ckpt=reference", "out={tree}/o"), "empty.png: empty file (0 bytes)"),
    ("bokeh.render", ("input={tree}/photos", "ckpt=reference", "out={tree}/done"), "already exist"),
    ("bokeh.render", (*R, "out={tree}/photo.png/o"), "{tree}/photo.png/o is not writable (Not a directory)"),
    # bokeh.evaluate (its real= and portraits= modes, and the synthetic one through Hydra)
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/photos", "bokeh_aperture=x"), "bokeh_aperture=x: give an f-number above 0"),
    ("bokeh.evaluate", ("ckpt=reference", "out={tree}/notes.txt"), "1 output file(s) already exist"),
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/photos", "out={tree}/notes.txt"), "1 output file(s) already exist"),
    ("bokeh.evaluate", ("ckpt=reference", "portraits={tree}/portraits", "aperture=1.4"), "aperture=1.4 is wider than"),
    ("bokeh.evaluate", ("ckpt=reference", "portraits={tree}/portraits", "tap=maybe"), "tap=maybe: use auto, true or false"),
    ("bokeh.evaluate", ("ckpt={tree}/photo.png", "real={tree}/photos"), "is an image, not a model"),
    ("bokeh.evaluate", ("ckpt={tree}/models", "portraits={tree}/photos"), "is a folder, not a model file"),
    ("bokeh.evaluate", ("ckpt={tree}/empty.ckpt",), "is empty (0 bytes)"),
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/photo.png"), "photo.png"),
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/photos", "out={tree}/photo.png/m.json"), "photo.png is a file, not a folder"),
    # bokeh.export
    ("bokeh.export", ("ckpt=reference", "size=8x16", "out={tree}/e"), "each side must be at least 16 px"),
    ("bokeh.export", ("ckpt={tree}/photo.png", "out={tree}/e"), "is an image, not a model"),
    ("bokeh.export", ("ckpt={tree}/models", "out={tree}/e"), "is a folder, not a model file"),
    ("bokeh.export", ("ckpt=reference", "out={tree}/e", "export.float16=maybe"), "export.float16=maybe: use true or false"),
    ("bokeh.export", ("ckpt=reference", "out={tree}/e", "export.opset=abc"), "export.opset=abc: give a whole number"),
    ("bokeh.export", ("ckpt=reference", "out={tree}/e", "verify.threads=-1"), "verify.threads=-1: give a whole number from 1"),
    # bokeh.train
    ("bokeh.train", ("experiment=demo", "trainer.max_epochs=abc", "hydra.run.dir={tree}/run"), "trainer.max_epochs=abc: give a whole number"),
    ("bokeh.train", ("experiment=demo", "model.focus_input=maybe", "hydra.run.dir={tree}/run"), "focus_input must be true or false"),
    ("bokeh.train", ("experiment=demo", "data.photo_share=1.5", "hydra.run.dir={tree}/full"), "photo_share must be in [0, 1)"),
    ("bokeh.train", ("experiment=demo", "init_from={tree}/photo.png", "hydra.run.dir={tree}/run"), "init_from={tree}/photo.png is an image"),
    ("bokeh.train", ("experiment=demo", "hydra.run.dir={tree}/photo.png/run"), "not writable"),
    # Hydra's own refusals (issue 32, F5): an unknown key, a value of the wrong type, an unknown group option, in every composed command
    ("bokeh.train", ("optim.lr=fast", "hydra.run.dir={tree}/run"), "optim.lr=fast: optim has no key 'lr' (did you mean optim.lr_g?)"),
    ("bokeh.train", ("data.foo=1", "hydra.run.dir={tree}/run"), "data.foo=1: data has no key 'foo'"),
    ("bokeh.train", ("stage=foo", "hydra.run.dir={tree}/run"), "stage=foo: there is no stage option 'foo'; available: finetune, pretrain"),
    ("bokeh.train", ("hydra.job.chdir=maybe", "hydra.run.dir={tree}/run"), "hydra.job.chdir takes true or false"),
    ("bokeh.train", ("experiment=demo", "optim.lr_g=fast", "hydra.run.dir={tree}/run"), "optim.lr_g=fast: give a number"),
    ("bokeh.train", ("stage=finetune", "hydra.run.dir={tree}/run"), "missing required setting(s) init_from"),
    ("bokeh.export", ("ckpt=reference", "sizee=16x16", "out={tree}/e"), "sizee=16x16: the config has no key 'sizee' (did you mean size?)"),
    ("bokeh.evaluate", ("ckpt=reference", "data.foo=1"), "data.foo=1: data has no key 'foo'"),
    ("bokeh.demo", ("out={tree}/d", "optim.lr=fast"), "optim.lr=fast: optim has no key 'lr'"),
    # a constructor's reason kept (F6), through evaluate and the demo too; missing VGG19 weights before anything runs (F7)
    ("bokeh.evaluate", ("ckpt=reference", "data.photo_share=1.5"), "photo_share must be in [0, 1)"),
    ("bokeh.demo", ("out={tree}/d", "data.photo_share=1.5"), "photo_share must be in [0, 1)"),
    ("bokeh.train", ("experiment=demo", "loss.vgg.weight=0.1", "loss.vgg.weights={tree}/vgg19.pth", "hydra.run.dir={tree}/run"),
     "loss.vgg.weights={tree}/vgg19.pth: no such file"),
    # one value twice in a list option (F17): a folder (also by another path to it), an f-number, a photo
    ("bokeh.train", ("experiment=demo", "data.photo_pairs=[{tree}/full,{tree}/photos/../full]", "hydra.run.dir={tree}/run"),
     "data.photo_pairs lists {tree}/full twice ({tree}/photos/../full is the same folder)"),
    ("bokeh.evaluate", ("ckpt=reference", "data.photo_pairs=[{tree}/full,{tree}/full]"), "data.photo_pairs lists {tree}/full twice"),
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/photos", "apertures=1.8,2.8,1.80"), "apertures=1.8,2.8,1.80: 1.8 is given twice (as 1.80)"),
    ("bokeh.demo", ("out={tree}/d", "photos=astronaut,coffee,astronaut"), "photos=astronaut,coffee,astronaut: astronaut is named twice"),
    # two files of one name where files are paired by name (F9)
    ("bokeh.evaluate", ("ckpt=reference", "portraits={tree}/twins"), "{tree}/twins/images holds two files named a (a.jpg and a.png)"),
    ("bokeh.data.photo_pairs", ("src={tree}/twins", "out={tree}/pp"), "would both be written to {tree}/pp/focal/twins-a.png"),
    # messages that name the real problem (F14): an empty matte, a folder as focus=, an empty image as a model,
    # a file or a folder as real=, a file as masks=
    ("bokeh.render", (*R, "out={tree}/o", "focus={tree}/empty.png"), "focus={tree}/empty.png: empty file (0 bytes)"),
    ("bokeh.render", (*R, "out={tree}/o", "focus={tree}/photos"), "focus={tree}/photos: is a folder"),
    ("bokeh.export", ("ckpt={tree}/empty.png", "out={tree}/e"), "ckpt={tree}/empty.png is an empty image file (0 bytes), not a model"),
    ("bokeh.demo", ("out={tree}/d", "real={tree}/notes.txt"), "real={tree}/notes.txt is a file, not a folder of real pairs"),
    ("bokeh.evaluate", ("ckpt=reference", "real={tree}/notes.txt"), "real={tree}/notes.txt is a file, not a folder of real pairs"),
    ("bokeh.data.photo_pairs", ("src={tree}/portraits", "masks={tree}/notes.txt", "out={tree}/pp"),
     "masks={tree}/notes.txt: {tree}/notes.txt is a file, not a folder of subject masks"),
    # bokeh.data.photo_pairs
    ("bokeh.data.photo_pairs", ("src={tree}/portraits", "out={tree}/pp", "seed=-1"), "seed=-1: give a whole number from 0"),
    ("bokeh.data.photo_pairs", ("src={tree}/portraits", "out={tree}/pp", "n=0"), "n=0: give a whole number of at least 1"),
    ("bokeh.data.photo_pairs", ("src={tree}/photo.png", "out={tree}/pp"), "photo.png"),
    ("bokeh.data.photo_pairs", ("src={tree}/portraits", "out={tree}/photo.png/pp"), "not writable"),
    # bokeh.data.synthesize
    ("bokeh.data.synthesize", ("out={tree}/s", "size=8x16"), "size=8x16: give HEIGHTxWIDTH"),
    ("bokeh.data.synthesize", ("out={tree}/s", "noise=abc"), "noise=abc: give a number"),
    ("bokeh.data.synthesize", ("out={tree}/full",), "not empty"),
    ("bokeh.data.synthesize", ("out={tree}/photo.png",), "photo.png"),
    # bokeh.pretrained
    ("bokeh.pretrained", ("show", "nosuchmodel"), "no shipped model named 'nosuchmodel'"),
    ("bokeh.pretrained", ("ship", "ckpt={tree}/photo.png", "name=mine"), "is an image, not a model"),
    ("bokeh.pretrained", ("ship", "ckpt={tree}/models", "name=mine"), "is a folder, not a model file"),
    ("bokeh.pretrained", ("ship", "name=mine"), "missing ckpt="),
    # bokeh.release (bokeh.pretrained is the same command under its earlier name)
    ("bokeh.release", ("show", "nosuchmodel"), "no shipped model named 'nosuchmodel'"),
    ("bokeh.release", ("ship", "ckpt={tree}/empty.ckpt", "name=mine"), "empty.ckpt"),
    ("bokeh.release", ("publish",), "'publish' is not ship or show"),
    # bokeh.runtimes
    ("bokeh.runtimes", ("cpu",), "usage: python -m bokeh.runtimes gpu"),
    # bokeh.demo
    ("bokeh.demo", ("out={tree}/d", "minutes=0"), "minutes=0: give a number of minutes above 0"),
    ("bokeh.demo", ("out={tree}/d", "photos=nosuch"), "unknown photo nosuch"),
    ("bokeh.demo", ("out={tree}/photo.png/d",), "not writable"),
]


def commands_in_source() -> set[str]:
    """Every ``python -m`` command of the package: a ``__main__.py`` names its package, a module with a
    ``__main__`` guard itself. A new command is found here, so it must join :data:`CASES`."""
    src = Path(__file__).resolve().parents[1] / "src"
    found = set()
    for path in (src / "bokeh").rglob("*.py"):
        module = ".".join(path.relative_to(src).with_suffix("").parts)
        if path.name == "__main__.py":
            found.add(module.removesuffix(".__main__"))
        elif 'if __name__ == "__main__":' in path.read_text():
            found.add(module)
    return found


COMMANDS = commands_in_source()


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, and for a file its size and modification time (ns).
    (A folder's own time is left out: the writability probe, a file made and removed, changes it.)"""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        seen[str(path.relative_to(root))] = (True, 0, 0) if path.is_dir() else (False, info.st_size, info.st_mtime_ns)
    return seen


def _run(index: int, base: Path) -> tuple[subprocess.CompletedProcess, dict, dict, Path]:
    module, args, _ = CASES[index]
    tree = write_tree(base / f"case{index}")
    cwd = base / f"cwd{index}"
    cwd.mkdir()
    before = snapshot(base / f"case{index}")
    argv = [arg.replace("{tree}", str(tree)) for arg in args]
    done = subprocess.run([sys.executable, "-m", module, *argv], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    return done, before, snapshot(tree), cwd


@pytest.fixture(scope="module")
def results(tmp_path_factory, request):
    """Every selected case run at once (a refusal is mostly import time, so a pool of a few
    processes); ``-k`` runs only the cases it selects."""
    base = tmp_path_factory.mktemp("table")
    selected = sorted({item.callspec.params["index"] for item in request.session.items
                       if getattr(item, "originalname", "") == "test_a_bad_input_is_one_sentence_exit_2_and_nothing_written"})
    with ThreadPoolExecutor(max_workers=max(2, min(6, os.cpu_count() or 2))) as pool:
        return dict(zip(selected, pool.map(lambda i: _run(i, base), selected)))


def test_every_command_is_in_the_table():
    assert {module for module, _, _ in CASES} == set(COMMANDS)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{m.split('.')[-1]}:{' '.join(a)[-60:]}" for m, a, _ in CASES])
def test_a_bad_input_is_one_sentence_exit_2_and_nothing_written(index, results, tmp_path_factory):
    module, _, message = CASES[index]
    done, before, after, cwd = results[index]
    tree = str(Path(str(cwd).replace(f"cwd{index}", f"case{index}")))
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    assert message.replace("{tree}", tree) in lines[0], lines[0]
    assert after == before, "a refused run wrote or deleted files: " + ", ".join(sorted(set(after) ^ set(before)))
    assert not any(cwd.iterdir()), f"a refused run wrote into its working folder: {sorted(p.name for p in cwd.iterdir())}"


def test_help_prints_the_options_everywhere(tmp_path):
    """``--help`` is usage and exit 0 for every command of the table (``pretrained show --help`` too)."""
    for argv in (["bokeh.render", "--help"], ["bokeh.evaluate", "--help"], ["bokeh.data.photo_pairs", "--help"],
                 ["bokeh.data.synthesize", "--help"], ["bokeh.pretrained", "show", "--help"], ["bokeh.pretrained", "ship", "--help"],
                 ["bokeh.demo", "--help"]):
        done = subprocess.run([sys.executable, "-m", *argv], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "usage:" in done.stdout and "options:" in done.stdout, (argv, done.stdout[-500:], done.stderr[-500:])
    assert not any(tmp_path.iterdir())
