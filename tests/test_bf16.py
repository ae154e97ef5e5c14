"""bf16 on every machine: the paths that ``precision=auto`` runs in bf16 where the CPU has it (training,
validation, rendering) keep their results in range.

``precision=auto`` picks bf16 on CPUs with AVX512-BF16 or AMX (Zen 4, Zen 5, Sapphire Rapids) and fp32
elsewhere, so a machine without bf16 never runs these paths by itself. CPU autocast computes bf16 on
any x86 CPU (emulated where not native), so these tests force bf16 and run everywhere.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bokeh import pretrained
from bokeh.data.synthetic import make_pair
from bokeh.images import to_tensor
from bokeh.lit import BokehGAN
from bokeh.render import TorchBackend
from bokeh.render.fit import render_layers

SIZE = (64, 96)


def _synthetic_samples(count: int) -> list[dict[str, torch.Tensor]]:
    samples = []
    for index in range(count):
        pair = make_pair(30_000 + index, seed=3, size=SIZE)
        samples.append({"input": to_tensor(pair.sharp), "target": to_tensor(pair.bokeh),
                        "coc": torch.from_numpy(np.abs(pair.coc))[None].float()})
    return samples


def _trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", precision="bf16-mixed", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, **kwargs)


def test_validating_the_shipped_blend_model_in_bf16_mixed_keeps_the_image_in_range():
    """The fault of a clean clone on Zen 4: v2's blend rounded to 1.001 under bf16-mixed and the
    strict range check of the PSNR stopped training in its sanity check."""
    module = BokehGAN(generator=pretrained.meta("reference")["model"])
    module.generator.load_state_dict(pretrained.load("reference").state_dict())
    scores = _trainer().validate(module, DataLoader(_synthetic_samples(4), batch_size=2), verbose=False)[0]
    assert np.isfinite(scores["val/psnr"]) and scores["val/psnr"] > 10.0, scores


def test_training_a_blend_model_with_a_matte_loss_in_bf16_mixed_has_finite_losses():
    torch.manual_seed(0)
    samples = _synthetic_samples(2)
    for sample in samples:
        sample["matte"] = (sample["coc"] < 1.0).float()
    module = BokehGAN(generator={"width1": 4, "width2": 8, "blocks": 1, "blend": True, "global_residual": True},
                      loss={"matte": {"weight": 1.0, "form": "bce"}})
    trainer = _trainer(max_steps=2, num_sanity_val_steps=1, limit_val_batches=1)
    trainer.fit(module, DataLoader(samples, batch_size=1), DataLoader(samples, batch_size=1))
    logged = trainer.callback_metrics
    assert torch.isfinite(logged["train/loss"]) and torch.isfinite(logged["val/psnr"]), dict(logged)


def test_rendering_in_bf16_gives_an_image_and_a_matte_in_their_ranges():
    backend = TorchBackend(pretrained.load("reference"), precision="bf16")
    photo = np.zeros((48, 80, 3), np.uint8)
    photo[:, 40:] = 255  # saturated whites and blacks: where rounding would step past the range
    image, matte = render_layers(photo, backend, short_side=None)
    assert image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert matte is not None and 0.0 <= matte.min() and matte.max() <= 1.0


def test_the_training_callbacks_score_real_pairs_and_portraits_in_range_in_bf16_mixed(tmp_path):
    """The callbacks run inside a bf16-mixed validation (autocast on): their scores are finite and in range."""
    from bokeh.callbacks import PortraitMatteScores, RealPairScores
    from test_evaluate_portraits import write_portraits
    from test_real_pairs import write_ebb_set

    torch.manual_seed(0)
    samples = _synthetic_samples(2)
    module = BokehGAN(generator={"width1": 4, "width2": 8, "blocks": 1, "blend": True, "global_residual": True,
                                 "focus_input": True})
    callbacks = [RealPairScores(str(write_ebb_set(tmp_path / "real" / "ebb")), subject="off"),
                 PortraitMatteScores(str(write_portraits(tmp_path / "portraits")), short_side=64, subject="off")]
    trainer = _trainer(max_epochs=1, num_sanity_val_steps=0, limit_val_batches=1, callbacks=callbacks)
    trainer.fit(module, DataLoader(samples[:1], batch_size=1), DataLoader(samples, batch_size=1))
    logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
    for key in ("real/psnr", "real/tapped/psnr"):
        assert np.isfinite(logged[key]) and 5.0 < logged[key] < 80.0, (key, logged)
    for key in ("real/detail_in_focus", "real/detail_defocus"):
        assert np.isfinite(logged[key]) and logged[key] >= 0.0, (key, logged)
    for key in ("portraits/matte_iou", "portraits/tapped/matte_iou", "portraits/model/matte_iou"):
        assert 0.0 <= logged[key] <= 1.0, (key, logged)


def test_bokeh_evaluate_where_auto_picks_bf16_scores_as_fp32_does(tmp_path, monkeypatch, capsys):
    """``bokeh.evaluate real=`` and ``portraits=`` render with precision=auto: bf16 on the CPUs that have
    it. Forced here on every machine (CPU autocast runs bf16 anywhere): the scores stay finite, in range
    and within a fraction of a dB of fp32's."""
    from bokeh import cpu
    from bokeh.evaluate import __main__ as evaluate
    from test_evaluate_portraits import write_portraits
    from test_real_pairs import write_ebb_set
    from test_render import write_tiny_checkpoint

    ckpt = write_tiny_checkpoint(tmp_path / "tiny.ckpt")
    real, portraits = write_ebb_set(tmp_path / "real" / "ebb"), write_portraits(tmp_path / "portraits")
    runs = {}
    for bf16 in (False, True):
        monkeypatch.setattr(cpu, "native_bf16", lambda flags=None, bf16=bf16: bf16)
        real_means = evaluate.main([f"ckpt={ckpt}", f"real={real}", "subject=off"])["means"]["f/1.8"]["model"]
        portrait = evaluate.main([f"ckpt={ckpt}", f"portraits={portraits}", "subject=off"])["summary"]["auto"]
        runs[bf16] = real_means, portrait
        assert ("bf16" in capsys.readouterr().err) == bf16, "precision=auto followed the CPU"
    (real32, portrait32), (real16, portrait16) = runs[False], runs[True]
    assert np.isfinite(real16["psnr"]) and abs(real16["psnr"] - real32["psnr"]) < 0.5, (real16, real32)
    for key in ("detail_subject", "detail_background"):
        assert np.isfinite(portrait16[key]["mean"]) and abs(portrait16[key]["mean"] - portrait32[key]["mean"]) < 0.05, key
