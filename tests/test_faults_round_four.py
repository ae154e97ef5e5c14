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




# ----------------------------------------------------------------------------- 2. sets that know they are finished
def bsds_source(root: Path) -> Path:
    """The BSDS500-like folder of the photo-pair tests (two photos with subjects, one without)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("photo_pair_tests", Path(__file__).parent / "data" / "test_photo_pairs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_source(root)


def photo_pairs(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return cli("bokeh.data.photo_pairs", *args, cwd=cwd, timeout=300)


def names_in(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.iterdir())


def test_photo_pairs_overwrite_removes_the_older_sets_pairs(tmp_path):
    src, out = bsds_source(tmp_path / "src"), tmp_path / "set"
    for sub in ("original", "bokeh", "coc", "focal"):  # an older set: other pairs, other names
        (out / sub).mkdir(parents=True)
        Image.fromarray(gradient_photo(32, 48)).save(out / sub / ("bsds-old-9" + (".png" if sub in ("coc", "focal") else ".jpg")))
    (out / "meta.json").write_text(json.dumps({"generator": "bokeh.data.photo_pairs", "pairs": 1}))
    result = photo_pairs(f"src={src}", f"out={out}", "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(json.loads((out / "f_numbers.json").read_text()))
    for sub in ("original", "bokeh", "coc", "focal"):
        assert names_in(out / sub) == written, sub


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


def test_synthesize_overwrite_with_fewer_pairs_leaves_none_of_the_older(tmp_path):
    out = tmp_path / "set"
    common = ("size=32x48", f"out={out}", "workers=1")
    assert cli("bokeh.data.synthesize", "n=3", *common, cwd=tmp_path).returncode == 0
    result = cli("bokeh.data.synthesize", "n=1", *common, "overwrite=true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for sub in ("original", "bokeh", "coc"):
        assert names_in(out / sub) == ["0"], sub



# ----------------------------------------------------------------------------- 3. a refused run touches no run folder
def tiny_train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    from test_reliability_cli import DATA, QUIET, TINY

    return cli("bokeh.train", *TINY, *DATA, *QUIET, *overrides, cwd=cwd, timeout=300)


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



# ----------------------------------------------------------------------------- 4. values the model never learned
def real_set(root: Path, targets: tuple[str, ...] = ("bokeh",), side: int = 48, mask: Image.Image | None = None) -> Path:
    for folder in ("original", *targets):
        (root / folder).mkdir(parents=True)
        Image.fromarray(gradient_photo(side, side + 16)).save(root / folder / "a.png")
    if mask is not None:
        (root / "focal").mkdir()
        mask.save(root / "focal" / "a.png")
    return root


def test_an_aperture_wider_than_trained_is_refused_in_one_sentence(tmp_path):
    Image.fromarray(gradient_photo(32, 48)).save(tmp_path / "p.png")
    result = cli("bokeh.render", f"input={tmp_path / 'p.png'}", "ckpt=reference", "aperture=1.2", f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert "wider than the model was trained for (f/1.8 to f/11)" in one_line(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("entry, targets, extra", [
    ("bokeh.evaluate", ("f100",), ()), ("bokeh.evaluate", ("f0.4",), ()), ("bokeh.evaluate", ("bokeh",), ("bokeh_aperture=100",)),
    ("bokeh.demo", ("f100",), ()), ("bokeh.demo", ("f0.4",), ()),  # the demo takes no bokeh_aperture=
], ids=["evaluate-f100", "evaluate-f0.4", "evaluate-bokeh_aperture=100", "demo-f100", "demo-f0.4"])
def test_real_pair_f_numbers_out_of_range_are_refused_before_any_work(entry, targets, extra, tmp_path):
    folder = real_set(tmp_path / "real", targets)
    args = ["ckpt=reference", f"real={folder}", *extra] if entry == "bokeh.evaluate" else [f"real={folder}", f"out={tmp_path / 'demo'}"]
    err = one_line(cli(entry, *args, cwd=tmp_path, timeout=120))
    assert "f-number" in err or "wider than the model" in err
    assert "rendered as bokeh.render renders" not in err + "" and not (tmp_path / "demo").exists()


# ----------------------------------------------------------------------------- 5. one sentence, not a traceback
def test_an_rgba_cut_out_subject_mask_is_read_by_its_alpha(tmp_path):
    cut_out = np.zeros((48, 64, 4), np.uint8)
    cut_out[..., :3] = 40  # a dark subject: its brightness alone would say "background"
    cut_out[12:36, 16:48, 3] = 255
    folder = real_set(tmp_path / "real", mask=Image.fromarray(cut_out, "RGBA"))
    result = cli("bokeh.evaluate", "ckpt=reference", f"real={folder}", "tap=true", f"out={tmp_path / 'm.json'}", cwd=tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    from bokeh.images import read_mask

    assert read_mask(folder / "focal" / "a.png").sum() == 24 * 32


def test_real_pairs_too_small_to_score_are_refused_in_one_sentence(tmp_path):
    folder = real_set(tmp_path / "real", side=24)
    err = one_line(cli("bokeh.evaluate", "ckpt=reference", f"real={folder}", cwd=tmp_path))
    assert "too small to score" in err


def test_pretrained_show_an_unknown_name_is_one_sentence_listing_the_known(tmp_path):
    err = one_line(cli("bokeh.pretrained", "show", "name=foo", cwd=tmp_path))
    assert "no shipped model named 'foo'; shipped: reference" in err


def test_pretrained_show_a_positional_name_shows_that_model_or_refuses(tmp_path):
    shown = cli("bokeh.pretrained", "show", "reference", cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["name"] == "reference", shown.stderr
    refused = cli("bokeh.pretrained", "show", "reference_v1", cwd=tmp_path)  # not shipped: refused, not v2 shown
    assert "no shipped model named 'reference_v1'" in one_line(refused) and refused.stdout == ""


def test_a_truncated_png_is_called_truncated_not_malformed_exif(tiny_ckpt, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "full.png")
    (folder / "cut.png").write_bytes((tmp_path / "full.png").read_bytes()[:3000])
    Image.fromarray(gradient_photo(16, 24)).save(folder / "good.png")
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    err = one_line(result, code=1)
    assert "cut.png: corrupt or truncated image" in err and "EXIF" not in err


@pytest.mark.parametrize("module, args", [
    ("bokeh.data.photo_pairs", ("src=nowhere", "overwrite=true")),
    ("bokeh.data.synthesize", ("n=1", "size=32x48", "overwrite=true")),
    ("bokeh.render", ("input=p.png", "ckpt=reference", "overwrite=true")),
    ("bokeh.evaluate", ("ckpt=reference", "real=nowhere")),
    ("bokeh.demo", ("overwrite=true",)),
    ("bokeh.export", ("ckpt=reference", "overwrite=true")),
])
def test_an_empty_out_is_refused_everywhere(module, args, tmp_path):
    Image.fromarray(gradient_photo(16, 16)).save(tmp_path / "p.png")
    before = sorted(p.name for p in tmp_path.iterdir())
    err = one_line(cli(module, *args, "out=", cwd=tmp_path, timeout=120))
    assert "out=" in err and ("empty" in err or "required" in err or "missing" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing was written into the current folder"


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


def compose_export(*overrides: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf" / "export"), version_base="1.3"):
        return compose("tflite", overrides=list(overrides))


def quick_steps(names: tuple[str, ...]):
    """The export's steps replaced by writing ``names`` (the conversion takes minutes): the rest of
    the pipeline (temporary folder, report, moving files into out=) runs as it is."""
    def steps(report, s, generator, work, interrupts):
        for name in names:
            doubling_model(work / name)
    return steps


def test_a_re_export_without_int8_removes_the_earlier_int8_file(tiny_ckpt, tmp_path, monkeypatch):
    from bokeh.export import pipeline

    out = tmp_path / "tflite"
    out.mkdir()
    (out / "bokeh_int8.tflite").write_bytes(b"an earlier int8 export")
    monkeypatch.setattr(pipeline, "_steps", quick_steps(("bokeh.onnx", "bokeh_float32.tflite")))
    report = pipeline.run(compose_export(f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true")).to_json()
    assert report["passed"]
    assert sorted(p.name for p in out.iterdir()) == ["bokeh.onnx", "bokeh_float32.tflite", "report.json"]
    from bokeh.model_files import read_metadata

    for name in ("bokeh.onnx", "bokeh_float32.tflite"):  # each file says how to feed it (item 6)
        assert read_metadata(out / name) == {"value_range": "signed", "inputs": ["image"], "layout": "NCHW" if name.endswith(".onnx") else "NHWC"}


def test_a_full_disk_during_export_is_one_sentence_and_keeps_the_earlier_export(tiny_ckpt, tmp_path, monkeypatch, capsys):
    import errno

    from bokeh.export import __main__ as export_main
    from bokeh.export import pipeline

    out = tmp_path / "tflite"
    out.mkdir()
    (out / "report.json").write_text("{}")
    monkeypatch.setattr(pipeline, "_steps", quick_steps(("bokeh.onnx",)))
    write_text = Path.write_text

    def full(self, *args, **kwargs):
        if self.name == "report.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SystemExit) as exited:  # the CLI's body, on the config its Hydra decorator composes
        export_main.main.__wrapped__(compose_export(f"ckpt={tiny_ckpt}", f"out={out}", "overwrite=true"))
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert "No space left on device" in err and "free some space" in err
    assert sorted(p.name for p in out.iterdir()) == ["report.json"] and (out / "report.json").read_text() == "{}"


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


def test_an_unreadable_input_folder_is_one_sentence_and_exit_2(tiny_ckpt, tmp_path, monkeypatch, capsys):
    from bokeh.render import __main__ as render_main

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 16)).save(folder / "p.png")
    iterdir = Path.iterdir

    def refuse(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))  # root reads chmod 000 folders: refuse as the OS would
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    code = render_main.main([f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}"])
    err = capsys.readouterr().err
    assert code == 2 and "the folder cannot be read (Permission denied)" in err and "Traceback" not in err


def test_an_animated_gif_in_a_folder_is_reported_not_silently_skipped(tiny_ckpt, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(gradient_photo(16, 24)).save(folder / "a.png")
    frames = [Image.fromarray(gradient_photo(16, 24, seed=k)) for k in range(3)]
    frames[0].save(folder / "b.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = cli("bokeh.render", f"input={folder}", f"ckpt={tiny_ckpt}", f"out={tmp_path / 'out'}", cwd=tmp_path)
    err = one_line(result, code=1)
    assert any("b.gif" in line and "GIF" in line for line in err.splitlines()), err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


def test_evaluate_writes_nothing_into_the_working_folder(tiny_ckpt, tmp_path, monkeypatch, capsys):
    from bokeh import evaluate

    work = tmp_path / "read-only"
    work.mkdir()
    monkeypatch.chdir(work)  # root ignores chmod: prove instead that nothing is written here
    evaluate.main([f"ckpt={tiny_ckpt}", "experiment=demo", "data.n=6", "data.val_count=2", "data.size=[32,48]", "data.crop_size=[24,24]", f"out={tmp_path / 'r.json'}"])
    assert list(work.iterdir()) == [] and json.loads((tmp_path / "r.json").read_text())["model"]


# ----------------------------------------------------------------------------- 6. a model file says how to feed it
def doubling_model(path: Path) -> Path:
    """``image + image`` as a .tflite (NHWC) or .onnx (NCHW) of 8 x 8: what an export of any range looks like to a runtime."""
    if path.suffix == ".tflite":
        from bokeh.runtimes import tiny_tflite

        return tiny_tflite.add_model(path)
    import onnx
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])  # ONNX exports take NCHW
    output = helper.make_tensor_value_info("bokeh", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Add", ["image", "image"], ["bokeh"])], "double", [image], [output])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_lone_exported_file_renders_by_what_it_says_or_is_refused(suffix, tmp_path):
    from bokeh.model_files import embed_metadata, read_metadata

    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / "gray.png")
    model = doubling_model(tmp_path / f"model{suffix}")  # copied without its report.json
    args = (f"input={tmp_path / 'gray.png'}", f"ckpt={model}")
    refused = cli("bokeh.render", *args, f"out={tmp_path / 'refused'}", cwd=tmp_path)
    assert "does not say which value range it takes" in one_line(refused) and not (tmp_path / "refused").exists()
    embed_metadata(model, {"value_range": "pixel", "inputs": ["image"]})
    assert read_metadata(model)["value_range"] == "pixel"
    rendered = cli("bokeh.render", *args, f"out={tmp_path / 'out'}", cwd=tmp_path)
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    from bokeh.images import read_rgb

    assert abs(float(read_rgb(tmp_path / "out" / "gray.png").mean()) - 200) <= 2, "fed 0-255 as the file says: 100 + 100"
