"""Teaching the matte: the config check, a tiny fit on the matte loss alone, and the portrait callback."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bokeh import metrics
from bokeh.lit import BokehGAN
from bokeh.models.glassnet import GlassNet

TINY_BLEND = {"width1": 4, "width2": 8, "blocks": 1, "blend": True}


def test_a_matte_loss_without_a_matte_is_refused_by_name():
    with pytest.raises(ValueError, match="loss.matte.weight > 0 .* model.blend=true"):
        BokehGAN(generator={"width1": 4, "width2": 4, "blocks": 1}, loss={"matte": {"weight": 1.0}})
    with pytest.raises(ValueError, match="loss.matte.form"):
        BokehGAN(generator=TINY_BLEND, loss={"matte": {"weight": 1.0, "form": "focal"}})
    BokehGAN(generator=TINY_BLEND, loss={"matte": {"weight": 1.0, "form": "dice"}})  # accepted


def matte_sample(size=(32, 48)) -> dict[str, torch.Tensor]:
    """A textured square in focus (matte 1) on a smooth backdrop (matte 0); the target is the input."""
    generator = torch.Generator().manual_seed(0)
    matte = torch.zeros(1, *size)
    matte[:, 8:24, 12:32] = 1.0
    backdrop = torch.linspace(-0.5, 0.5, size[1]).expand(3, *size)
    image = torch.where(matte.bool(), torch.rand(3, *size, generator=generator) * 2 - 1, backdrop)
    return {"input": image, "target": image.clone(), "matte": matte}


def test_the_matte_loss_alone_teaches_a_tiny_blend_net_the_region():
    torch.manual_seed(0)
    sample = matte_sample()
    module = BokehGAN(generator=TINY_BLEND, loss={"l1": 0.0, "ssim": 0.0, "matte": {"weight": 1.0, "form": "bce"}},
                      optim={"lr_g": 5e-3})

    def iou() -> float:
        with torch.no_grad():
            matte = module.generator.eval().layers(sample["input"][None]).matte
        module.generator.train()
        return metrics.matte_iou(matte, sample["matte"][None]).item()

    before = iou()
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, max_steps=40, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader([sample] * 40, batch_size=1))
    after = iou()
    assert before < 0.1 < 0.8 < after, (before, after)


def test_the_portrait_callback_logs_the_matte_iou_auto_and_tapped(tmp_path):
    from bokeh.callbacks import PortraitMatteScores
    from bokeh.data.portraits import list_portraits, read_portrait
    from test_evaluate_portraits import write_portraits

    folder = write_portraits(tmp_path / "portraits")
    generator = GlassNet(4, 4, 1, blend=True, focus_input=True)
    with torch.no_grad():
        generator.unet_stage.head.bias[3].fill_(20.0)  # keep every pixel: the IoU is the mask's share of the frame
    logged = {}
    module = SimpleNamespace(generator=generator, device=torch.device("cpu"),
                             log=lambda key, value, **kwargs: logged.__setitem__(key, value))
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True)
    PortraitMatteScores(str(folder), short_side=48, count=None).on_validation_epoch_end(trainer, module)
    masks = [read_portrait(p, 48)[1] for p in list_portraits(folder)]
    expected = sum(m.mean() for m in masks) / len(masks)
    assert set(logged) == {f"portraits{tap}/{which}matte_iou" for tap in ("", "/tapped") for which in ("", "model/")}
    assert logged["portraits/matte_iou"] == pytest.approx(expected, abs=1e-6) and generator.training
    assert logged["portraits/model/matte_iou"] == pytest.approx(expected, abs=1e-6)
    logged.clear()
    PortraitMatteScores(str(folder), short_side=48).on_validation_epoch_end(trainer, SimpleNamespace(**{**vars(module), "generator": GlassNet(4, 4, 1)}))
    assert not logged, "a model without a matte logs no matte score"
    missing = PortraitMatteScores(str(tmp_path / "nowhere"))
    with pytest.warns(UserWarning, match="portrait matte scores are off") as caught:
        missing.on_validation_epoch_end(trainer, module)
        missing.on_validation_epoch_end(trainer, module)
    assert len(caught) == 1 and not logged and math.isfinite(expected)
