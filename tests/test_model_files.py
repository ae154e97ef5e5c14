"""The one check of what a model file is (bokeh.model_files.check_model_file, bokeh.pretrained.resolve),
shared by every command that takes a model; and the exported file's own value range."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bokeh import pretrained
from bokeh.model_files import CheckpointError, check_model_file, embed_metadata
import numpy as np
from PIL import Image
from test_render import gradient_photo
from user_cli import cli, one_line

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


# ----------------------------------------------------------------------------- a Git LFS pointer; a model file says how to feed it (issue 25)
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


def test_a_checkpoint_reader_names_only_what_it_takes(tmp_path):
    """Train's init_from=, export's ckpt= and the other torch-checkpoint readers (suffixes=None) take no
    exported model and have no input= (the fresh trial: export ckpt=x.tflite printed torch's unpickling text)."""
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    (tmp_path / "bokeh_float32.tflite").write_bytes(b"TFL3")
    with pytest.raises(CheckpointError) as image:
        check_model_file(tmp_path / "photo.png", "init_from", suffixes=None)
    assert str(image.value).endswith("not a model: give a Lightning checkpoint (.ckpt)"), image.value
    with pytest.raises(CheckpointError, match=r"^ckpt=.*bokeh_float32.tflite is an exported model \(.tflite\); this takes "
                                              r"a Lightning checkpoint \(.ckpt\): give the checkpoint it was exported from"):
        check_model_file(tmp_path / "bokeh_float32.tflite", suffixes=None)
    with pytest.raises(CheckpointError, match=r"give a Lightning checkpoint \(.ckpt\), an ONNX model \(.onnx\) or a TFLite "
                                              r"model \(.tflite\) \(the photo goes in input=\)"):
        check_model_file(tmp_path / "photo.png")  # the renderer's
    assert check_model_file(tmp_path / "bokeh_float32.tflite") == tmp_path / "bokeh_float32.tflite"
