"""Training with the subject plane: a bf16-mixed step is finite, and a few steps make the new input matter."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from bokeh.lit import BokehGAN
from bokeh.models.glassnet import GlassNet, grow_state

TINY = {"width1": 4, "width2": 8, "blocks": 1, "global_residual": True, "full_res_skip": True, "focus_input": True,
        "aperture_input": True, "blend": True}


def subject_sample(size=(32, 48)) -> dict[str, torch.Tensor]:
    """A textured square that is the subject (matte 1, kept in the target) on a textured backdrop that
    the target blurs: only the subject plane says which is which."""
    generator = torch.Generator().manual_seed(0)
    subject = torch.zeros(1, *size)
    subject[:, 8:24, 12:32] = 1.0
    image = torch.rand(3, *size, generator=generator) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(image[None], 5, 1, 2, count_include_pad=False)[0]
    target = torch.where(subject.bool(), image, blurred)
    return {"input": image, "target": target, "matte": subject, "subject": subject, "focus": torch.tensor([-1.0, -1.0]),
            "aperture": torch.tensor([1.8])}


def grown_module(**loss) -> BokehGAN:
    """A tiny "v2" grown by the subject input (its weights start at zero), as experiment=reference_v4 starts."""
    torch.manual_seed(0)
    module = BokehGAN(generator={**TINY, "subject_input": True}, loss={"gradient": 0.5, "matte": {"weight": 0.5, "form": "bce_dice"}, **loss},
                      optim={"lr_g": 5e-3, "betas": [0.9, 0.999]})
    v2 = GlassNet(**TINY)
    module.generator.load_state_dict(grow_state(v2.state_dict(), GlassNet.settings(**TINY), GlassNet.settings(**TINY, subject_input=True)))
    return module


def fit(module: BokehGAN, steps: int, precision: str = "32-true") -> None:
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, max_steps=steps, num_sanity_val_steps=0, precision=precision)
    trainer.fit(module, DataLoader([subject_sample()] * steps, batch_size=2))


def test_a_bf16_mixed_step_with_a_subject_plane_has_a_finite_loss():
    module = grown_module()
    sample = subject_sample()
    batch = {k: v[None] for k, v in sample.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layers = module.generator.layers(batch["input"], **module.controls(batch))
        terms = module.generator_losses(layers.image, layers.rough, batch["target"], None, layers.matte_logit, batch["matte"])
    assert layers.matte_logit.dtype == torch.bfloat16 and torch.isfinite(terms["total"]) and "matte" in terms
    before = [p.detach().clone() for p in module.generator.parameters()]
    fit(module, 2, "bf16-mixed")
    assert module.skipped_steps == 0
    assert any(not torch.equal(a, b) for a, b in zip(before, module.generator.parameters())), "the step changed the weights"


def test_the_new_input_changes_the_output_after_a_few_steps():
    module = grown_module()
    image = subject_sample()["input"][None]

    def effect() -> float:
        generator = module.generator.eval()
        with torch.no_grad():
            with_subject = generator(image, subject=subject_sample()["subject"][None])[0]
            without = generator(image)[0]
        generator.train()
        return float((with_subject - without).abs().max())

    assert effect() == 0.0  # grown: the subject plane's weights are zero
    fit(module, 6)
    assert effect() > 1e-3
