"""The generator's loss terms in one table (bokeh.losses.table), their weights only in conf/loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from bokeh.losses import table
from bokeh.losses.adversarial import generator_adversarial_loss
from bokeh.losses.matte import matte_loss
from bokeh.losses.perceptual import perceptual_loss
from bokeh.losses.reconstruction import focus_weighted_l1_loss, gradient_l1_loss, l1_loss, ssim_loss
from bokeh.losses.table import INPUTS, SETTINGS, TERMS, Term, check_loss, generator_terms

CONF = Path(__file__).resolve().parents[2] / "conf"
DEFAULTS = yaml.safe_load((CONF / "loss" / "bggan.yaml").read_text())


def step_tensors(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)

    def image():
        return torch.rand(2, 3, 16, 24, generator=generator) * 2 - 1

    matte_target = (torch.rand(2, 1, 16, 24, generator=generator) > 0.5).float()
    return {"output": image().requires_grad_(True), "rough": image(), "target": image(),
            "radius": torch.rand(2, 1, 16, 24, generator=generator) * 3, "matte_logit": torch.randn(2, 1, 16, 24, generator=generator),
            "matte_target": matte_target, "vgg": nn.Conv2d(3, 4, 3), "critics": nn.Conv2d(3, 1, 4, stride=2)}


def every_term_on() -> dict:
    return {**DEFAULTS, "l1": 0.5, "focus_weight": 2.0, "ssim": 0.05, "rough_l1": 0.3, "gradient": 0.7, "adv": 1.1,
            "matte": {"weight": 0.4, "form": "bce_dice"}, "vgg": {"weight": 0.2, "weights": "random"}}


def test_the_conf_file_configures_exactly_the_table():
    """Defaults live in conf/loss/bggan.yaml only, and it names every term and nothing else."""
    assert set(DEFAULTS) == set(TERMS) | set(SETTINGS)
    check_loss(DEFAULTS)
    assert all(weight >= 0 for weight in (table.weight_of(DEFAULTS, name) for name in TERMS))


def test_every_term_is_the_callable_the_table_names_weighted_by_the_config():
    loss, t = every_term_on(), step_tensors()
    terms = generator_terms(loss, t)
    expected = {
        "l1": focus_weighted_l1_loss(t["output"], t["target"], t["radius"], 2.0, 1.0),
        "ssim": ssim_loss(t["output"], t["target"]),
        "rough_l1": l1_loss(t["rough"], t["target"]),
        "gradient": gradient_l1_loss(t["output"], t["target"]),
        "matte": matte_loss(t["matte_logit"], t["matte_target"], "bce_dice"),
        "vgg": perceptual_loss(t["vgg"], t["output"], t["target"]),
        "adv": generator_adversarial_loss(t["critics"], t["output"]),
    }
    assert list(terms) == [*expected, "total"]
    for name, value in expected.items():
        torch.testing.assert_close(terms[name], value, msg=name)
    weights = {"l1": 0.5, "ssim": 0.05, "rough_l1": 0.3, "gradient": 0.7, "matte": 0.4, "vgg": 0.2, "adv": 1.1}
    torch.testing.assert_close(terms["total"], sum(weights[n] * v for n, v in expected.items()))
    terms["total"].backward()
    assert t["output"].grad is not None and t["output"].grad.abs().sum() > 0


def test_terms_at_weight_0_are_left_out_except_l1_and_ssim_which_are_logged():
    t = step_tensors()
    terms = generator_terms({**DEFAULTS, "l1": 0.0, "ssim": 0.0}, t)
    assert list(terms) == ["l1", "ssim", "total"]
    assert float(terms["total"]) == 0.0
    torch.testing.assert_close(terms["l1"], l1_loss(t["output"], t["target"]))  # focus_weight 0: the plain L1


def test_a_term_whose_inputs_the_step_lacks_is_left_out():
    t = {**step_tensors(), "matte_target": None, "critics": None, "radius": None}
    terms = generator_terms(every_term_on(), t)
    assert "matte" not in terms and "adv" not in terms
    torch.testing.assert_close(terms["l1"], l1_loss(t["output"], t["target"]))  # no radii: plain L1


def test_a_weighted_perceptual_term_without_its_network_is_an_error_not_a_silent_zero():
    with pytest.raises(ValueError, match="loss term vgg is weighted but has no vgg input"):
        generator_terms(every_term_on(), {**step_tensors(), "vgg": None})


def test_a_new_term_is_one_table_entry_and_one_config_key(monkeypatch):
    monkeypatch.setitem(TERMS, "tv", Term(lambda output: output.diff(dim=-1).abs().mean(), ("output",)))
    t = step_tensors()
    loss = {**DEFAULTS, "tv": 3.0}
    check_loss(loss)
    terms = generator_terms(loss, t)
    torch.testing.assert_close(terms["tv"], t["output"].diff(dim=-1).abs().mean())
    plain = generator_terms({**DEFAULTS, "tv": 0.0}, t)
    torch.testing.assert_close(terms["total"], plain["total"] + 3.0 * terms["tv"])


@pytest.mark.parametrize(
    ("change", "message"),
    [({"perceptual": 1.0}, r"unknown loss term\(s\) \['perceptual'\]"),
     ({"matte": {"weight": 1.0, "form": "focal"}}, r"loss.matte.form must be one of"),
     ({"gradient": -0.5}, "loss.gradient weight must be >= 0")],
)
def test_a_bad_loss_config_is_refused_by_name(change, message):
    with pytest.raises(ValueError, match=message):
        check_loss({**DEFAULTS, **change})


def test_a_config_without_a_term_is_refused():
    loss = dict(DEFAULTS)
    del loss["gradient"]
    with pytest.raises(ValueError, match=r"no weight for term\(s\) \['gradient'\]"):
        check_loss(loss)


def test_unknown_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown loss input"):
        generator_terms(DEFAULTS, {**step_tensors(), "depth": torch.zeros(1)})
    assert set(INPUTS) == set(step_tensors())


def test_the_table_imports_neither_lightning_nor_hydra():
    import subprocess
    import sys

    code = "import sys, bokeh.losses.table; print(sorted(m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', 'hydra', 'omegaconf')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
