"""Shipped models by name: files checked against their description, loadable everywhere a checkpoint is."""

from __future__ import annotations

import json

import pytest
import torch

from bokeh import pretrained
from bokeh.checkpoint import load_generator
from bokeh.models.glassnet import GlassNet
from user_cli import cli, one_line

SETTINGS = {"width1": 4, "width2": 4, "blocks": 1, "global_residual": True}
INPUT = {"layout": "NCHW RGB", "value_range": [-1.0, 1.0], "multiple_of": 8, "trained_at": [32, 48], "short_side": 64}


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny model 'tiny' shipped into a temporary package folder."""
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    torch.manual_seed(0)
    generator = GlassNet(**SETTINGS)
    pretrained.save("tiny", generator, SETTINGS, {"input": INPUT}, folder=tmp_path)
    return generator


def test_a_shipped_model_loads_by_name_in_float32_and_matches_its_fp16_weights(shipped, tmp_path):
    assert pretrained.names() == ["tiny"] and pretrained.is_name("tiny") and not pretrained.is_name("tiny.ckpt")
    model = pretrained.load("tiny")
    assert not model.training and next(model.parameters()).dtype == torch.float32
    for (name, a), (_, b) in zip(shipped.state_dict().items(), model.state_dict().items()):
        torch.testing.assert_close(a.half().float(), b, msg=name)
    # fp16 storage: tensors only, readable with torch's default weights_only=True
    state = torch.load(tmp_path / "tiny.pt", weights_only=True)
    assert all(t.dtype == torch.float16 for t in state.values())
    assert json.loads((tmp_path / "tiny.json").read_text())["model"] == SETTINGS


def test_the_typed_handle_gives_settings_input_convention_and_the_model(shipped, tmp_path):
    handle = pretrained.weights("tiny")
    assert handle.name == "tiny" and dict(handle.settings) == SETTINGS
    assert handle.input == pretrained.InputConvention("NCHW RGB", (-1.0, 1.0), 8, (32, 48), 64)
    assert handle.meta["sha256"] == json.loads((tmp_path / "tiny.json").read_text())["sha256"]
    with pytest.raises(TypeError):
        handle.settings["blocks"] = 9  # read-only: the description on disk is the truth
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(handle.load()(image)[0], pretrained.load("tiny")(image)[0])
    broken = json.loads((tmp_path / "tiny.json").read_text())
    del broken["input"]["short_side"]
    (tmp_path / "tiny.json").write_text(json.dumps(broken))
    with pytest.raises(pretrained.PretrainedError, match=r"tiny.json lacks a valid 'short_side' entry"):
        pretrained.weights("tiny")
    with pytest.raises(pretrained.PretrainedError, match="no shipped model named 'nope'"):
        pretrained.weights("nope")


def test_the_shipped_reference_has_a_complete_handle():
    handle = pretrained.weights("reference")
    assert handle.input.multiple_of == 8 and handle.input.short_side > 0 and handle.input.value_range == (-1.0, 1.0)
    assert list(handle.load().contract.names) == handle.meta["controls"]["inputs"]


def test_every_checkpoint_path_also_takes_a_name(shipped):
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(load_generator("tiny")(image)[0], pretrained.load("tiny")(image)[0])


def test_a_damaged_or_missing_weights_file_is_named(shipped, tmp_path):
    weights = tmp_path / "tiny.pt"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(pretrained.PretrainedError, match="does not match its description"):
        pretrained.load("tiny")
    weights.unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing"):
        pretrained.load("tiny")
    with pytest.raises(pretrained.PretrainedError, match="no shipped model named 'nope'"):
        pretrained.load("nope")


# ----------------------------------------------------------------------------- ship (issue 32, item 5)
def ship_cli(*args: str, cwd) -> "subprocess.CompletedProcess":
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run([sys.executable, "-m", "bokeh.pretrained", "ship", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def package_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(pretrained.FOLDER.iterdir()) if p.suffix in (".pt", ".json")}


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from bokeh.checkpoint import save_generator

    torch.manual_seed(0)
    return save_generator(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt", GlassNet(**SETTINGS), SETTINGS)


@pytest.mark.parametrize("bad, said", [("missing.ckpt", "no such file"), ("photo.png", "is an image, not a model"),
                                       ("run", "is a folder"), ("empty.ckpt", "is empty (0 bytes)"), ("TINY", "shipped already")])
def test_ship_checks_its_file_and_name_first_in_one_sentence(bad, said, tiny_ckpt, tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    (tmp_path / "run").mkdir()
    (tmp_path / "empty.ckpt").write_bytes(b"")
    before = package_files()
    result = ship_cli(f"ckpt={tiny_ckpt if bad == 'TINY' else tmp_path / bad}", cwd=tmp_path)  # name defaults to reference
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert said in result.stderr.splitlines()[0]
    assert package_files() == before, "the shipped reference is untouched"


def test_ship_names_real_when_its_folder_is_not_real_pairs(tiny_ckpt, tmp_path):
    """issue 32, F14: the sentence names the option (real=), as every command's does."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for real, said in (("photos", "real={} is not a folder of real pairs"), ("notes.txt", "real={} is a file, not a folder of real pairs")):
        result = ship_cli(f"ckpt={tiny_ckpt}", "name=f14probe", f"real={tmp_path / real}", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
        assert said.format(tmp_path / real) in result.stderr.splitlines()[0]
    assert not (pretrained.FOLDER / "f14probe.pt").exists()


def test_ship_scores_first_and_an_interrupt_while_scoring_leaves_the_shipped_files(tiny_ckpt, shipped, tmp_path, monkeypatch):
    import bokeh.evaluate.synthetic
    from bokeh.release import ship

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bokeh.evaluate.synthetic, "validation_samples", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ship(tiny_ckpt, "tiny")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "no new weights without their scores"


def test_ctrl_c_while_ship_scores_is_one_line_and_exit_130(tiny_ckpt, shipped, tmp_path, monkeypatch, capsys):
    """issue 32, F15: the command line itself (bokeh.release's main), interrupted in its scoring."""
    import bokeh.evaluate.synthetic
    from bokeh import release

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bokeh.evaluate.synthetic, "validation_samples", interrupted)
    before = package_files()
    with pytest.raises(SystemExit) as stopped:
        release.main(["ship", f"ckpt={tiny_ckpt}", "name=fresh"])
    err = capsys.readouterr().err
    assert stopped.value.code == 130 and "Traceback" not in err, err
    assert err.strip().splitlines() == [f"bokeh.release ship: interrupted (Ctrl-C); nothing was shipped: {tmp_path / 'fresh'}.pt and .json are as they were"]
    assert package_files() == before


def test_ship_writes_the_weights_and_their_scores_together(tiny_ckpt, shipped, tmp_path, monkeypatch):
    from bokeh import release

    monkeypatch.setattr(release, "SPLITS", {})  # the scoring itself is bokeh.evaluate.synthetic (tests/test_evaluate.py)
    path = release.ship(tiny_ckpt, "fresh")
    assert path == tmp_path / "fresh.json" and json.loads(path.read_text())["scores"] == {}
    assert pretrained.load("fresh")(torch.zeros(1, 3, 16, 16))[0].shape == (1, 3, 16, 16), "its size and SHA-256 match"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "fresh.pt", "tiny.json", "tiny.pt"], "no temporary file left"


# ----------------------------------------------------------------------------- show by name (issue 25)
def test_pretrained_show_an_unknown_name_is_one_sentence_listing_the_known(tmp_path):
    err = one_line(cli("bokeh.pretrained", "show", "name=foo", cwd=tmp_path))
    assert "no shipped model named 'foo'; shipped: reference" in err


def test_pretrained_show_a_positional_name_shows_that_model_or_refuses(tmp_path):
    shown = cli("bokeh.pretrained", "show", "reference", cwd=tmp_path)
    assert shown.returncode == 0 and json.loads(shown.stdout)["name"] == "reference", shown.stderr
    refused = cli("bokeh.pretrained", "show", "reference_v1", cwd=tmp_path)  # not shipped: refused, not v2 shown
    assert "no shipped model named 'reference_v1'" in one_line(refused) and refused.stdout == ""


def test_the_licence_of_a_shipped_model_names_the_terms_of_every_photo_source(tmp_path):
    from bokeh.release import photo_pairs_licence

    sets = {}
    for name, src in (("bsds", "/data/BSDS500/images"), ("portraits", "/data/pfcn_portraits"), ("own", "/data/my_photos")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(json.dumps({"src": src}))
        sets[name] = str(tmp_path / name)
    bsds = photo_pairs_licence([sets["bsds"]])
    assert bsds.startswith("non-commercial research and education:") and "Berkeley" in bsds and "PFCN" not in bsds
    both = photo_pairs_licence([sets["bsds"], sets["portraits"], sets["bsds"]])
    assert both.startswith("academic use only:") and "Berkeley" in both and "PFCN" in both and both.count("Berkeley") == 1
    assert "/data/my_photos (their own terms apply)" in photo_pairs_licence([sets["bsds"], sets["own"]])
