"""bokeh.checkpoint: a checkpoint of other settings, or whose weights do not fit its own settings, is one
sentence wherever it is loaded (resume, load_generator, BokehGAN.load_from_checkpoint)."""

from __future__ import annotations

import pytest
import torch

from bokeh.train import run
from test_train import SMALL, TINY, compose_train


# ----------------------------------------------------------------------------- issue 15: a checkpoint of other settings
def test_resuming_with_other_model_settings_is_one_sentence(tmp_path):
    from bokeh.checkpoint import CheckpointError

    run(compose_train([*TINY, *SMALL, "trainer.max_steps=1"], tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError) as error:
        run(compose_train([*TINY, *SMALL, "model.width2=8", f"ckpt_path={last}"], tmp_path / "other"))
    message = str(error.value)
    assert "model.width2=4" in message and "model.width2=8" in message and "init_from=" in message
    assert len(message.splitlines()) == 1 and "Missing key" not in message
    with pytest.raises(CheckpointError, match=r"is a pretrain checkpoint but this run is stage=finetune.*init_from="):
        run(compose_train([*TINY, *SMALL, "stage=finetune", "init_from=null", f"ckpt_path={last}"], tmp_path / "fine"))


def test_a_checkpoint_whose_weights_do_not_fit_its_settings_is_one_sentence_everywhere(tmp_path):
    """render, evaluate and export load through load_generator; the notebooks through BokehGAN."""
    from bokeh.checkpoint import CheckpointError, load_generator
    from bokeh.lit import BokehGAN

    run(compose_train([*TINY, *SMALL, "trainer.max_steps=1"], tmp_path / "first"))
    checkpoint = torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["generator"]["width2"] = 8  # settings and weights disagree
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    for load in (load_generator, lambda path: BokehGAN.load_from_checkpoint(path, map_location="cpu", weights_only=True)):
        with pytest.raises(CheckpointError, match=r"do not fit .*\d+ of another shape \(e\.g\. '") as error:
            load(edited)
        assert len(str(error.value).splitlines()) == 1
