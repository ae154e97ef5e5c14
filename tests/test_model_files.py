"""The one check of what a model file is (bokeh.model_files.check_model_file, bokeh.pretrained.resolve),
shared by every command that takes a model; and the exported file's own value range."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bokeh import pretrained
from bokeh.model_files import CheckpointError, check_model_file, embed_metadata

LFS = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 9\n"


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a folder, not a model file"),
    (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    (lambda p: p.write_bytes(LFS), "is a Git LFS pointer, not a model file"),
])
def test_what_is_not_a_model_file_is_named(tmp_path, make, message):
    path = tmp_path / "model.ckpt"
    make(path)
    with pytest.raises(CheckpointError, match=rf"^ckpt={re.escape(str(path))}.*{re.escape(message)}"):
        check_model_file(path)
    with pytest.raises(CheckpointError, match=rf"^init_from={re.escape(str(path))}"):
        check_model_file(path, "init_from", suffixes=None)


def test_an_image_and_an_unknown_type_are_named(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with pytest.raises(CheckpointError, match="photo.png is an image, not a model"):
        check_model_file(tmp_path / "photo.png", suffixes=None)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"unknown model file type '\.pt'"):
        check_model_file(tmp_path / "model.pt")
    assert check_model_file(tmp_path / "model.pt", suffixes=None) == tmp_path / "model.pt"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "last.ckpt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"give the model file inside it \(it holds last.ckpt\)"):
        check_model_file(tmp_path / "folder")


def test_a_shipped_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    # issue 32 (kept back): ckpt=reference beside ./reference/ was "unknown model file type" (render and evaluate)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reference").mkdir()
    assert pretrained.resolve("reference") == "reference"
    from bokeh.checkpoint import generator_source
    from bokeh.render import load_backend

    assert load_backend("reference").name.endswith("(shipped model reference)")
    assert generator_source("reference")[0] == pretrained.generator_state("reference")[0]
    with pytest.raises(CheckpointError, match="is a folder"):  # the folder itself, when meant, is named as a path
        pretrained.resolve("./reference")


def _identity_onnx(path: Path, value_range: str | None) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["output"])], "identity",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 16, 16, 3])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 16, 16, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # one every ONNX Runtime reads
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    if value_range is not None:
        embed_metadata(path, {"value_range": value_range})
    return path


def test_a_value_range_against_what_the_file_says_is_refused_and_used_where_it_says_nothing(tmp_path):
    # issue 32 item 7: value_range=pixel on a file that says signed rendered a black image, exit 0
    from bokeh.render import load_backend

    said = _identity_onnx(tmp_path / "said.onnx", "signed")
    with pytest.raises(ValueError, match=r"value_range=pixel, but said.onnx says it takes value_range=signed"):
        load_backend(said, value_range="pixel")
    silent = _identity_onnx(tmp_path / "silent" / "m.onnx", None)  # no report.json beside it either
    with pytest.raises(ValueError, match="does not say which value range"):
        load_backend(silent)
    assert load_backend(silent, value_range="pixel").value_range == "pixel"
    with pytest.raises(ValueError, match="value_range=pixel applies to exported models"):
        load_backend("reference", value_range="pixel")


def test_the_notebooks_loader_makes_the_same_check(tmp_path):
    from bokeh.lit import BokehGAN

    (tmp_path / "run").mkdir()
    with pytest.raises(CheckpointError, match="checkpoint_path=.*run is a folder, not a model file"):
        BokehGAN.load_from_checkpoint(tmp_path / "run", weights_only=True)
    (tmp_path / "pointer.ckpt").write_bytes(LFS)
    with pytest.raises(CheckpointError, match="Git LFS pointer"):
        BokehGAN.load_from_checkpoint(str(tmp_path / "pointer.ckpt"), weights_only=True)
