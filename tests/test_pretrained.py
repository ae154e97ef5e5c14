"""Shipped models by name: files checked against their description, loadable everywhere a checkpoint is."""

from __future__ import annotations

import json

import pytest
import torch

from bokeh import pretrained
from bokeh.checkpoint import load_generator
from bokeh.models.glassnet import GlassNet

SETTINGS = {"width1": 4, "width2": 4, "blocks": 1, "global_residual": True}


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny model 'tiny' shipped into a temporary package folder."""
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    torch.manual_seed(0)
    generator = GlassNet(**SETTINGS)
    pretrained.save("tiny", generator, SETTINGS, {"input": {"short_side": 64}}, folder=tmp_path)
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
