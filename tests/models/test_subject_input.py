"""The subject matte as an optional input plane of Glass-Net (issue 30 item 3): contract, default, growth."""

from __future__ import annotations

import pytest
import torch

from bokeh.models.controls import ControlError, InputContract
from bokeh.models.glassnet import GROWABLE, GlassNet, grow_state

SMALL = dict(width1=4, width2=4, blocks=1, global_residual=True, full_res_skip=True)
V2 = dict(SMALL, focus_input=True, aperture_input=True, blend=True)


def _far_from_identity(model: GlassNet, seed: int) -> GlassNet:
    torch.manual_seed(seed)
    for p in model.parameters():
        p.data.normal_(0.0, 0.3)
    return model.eval()


def test_the_contract_names_the_subject_input_after_the_other_controls():
    contract = GlassNet(**V2, subject_input=True).contract
    assert contract.names == ("image", "focus", "aperture", "subject")
    assert contract.plane_count == 3
    assert "subject (1, 'H', 'W')" in contract.describe() and "all zeros" in contract.describe()
    assert InputContract.from_settings(GlassNet.settings(subject_input=True)).names == ("image", "subject")
    assert "subject_input" in GROWABLE
    with pytest.raises(ControlError, match="subject= was given, but this model takes no subject matte"):
        InputContract(True, True).check_taken("subject")


def test_a_model_without_the_input_refuses_a_subject_by_name():
    with pytest.raises(ControlError, match="takes no subject input"):
        GlassNet(**V2).eval()(torch.zeros(1, 3, 16, 16), subject=torch.zeros(1, 1, 16, 16))


def test_a_subject_of_the_wrong_size_is_refused():
    model = GlassNet(**V2, subject_input=True).eval()
    with pytest.raises(ControlError, match=r"subject must have shape \(1, 1, 16, 24\)"):
        model(torch.zeros(1, 3, 16, 24), subject=torch.zeros(1, 1, 16, 16))


def test_a_missing_subject_is_all_zeros():
    model = _far_from_identity(GlassNet(**V2, subject_input=True), 3)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(model(image)[0], model(image, subject=torch.zeros(2, 1, 32, 32))[0])
    assert not torch.allclose(model(image)[0], model(image, subject=torch.ones(2, 1, 32, 32))[0])


def test_v2_grown_by_the_subject_input_computes_what_v2_did_whatever_the_matte():
    v2 = _far_from_identity(GlassNet(**V2), 4)
    wanted = GlassNet.settings(**V2, subject_input=True)
    grown = GlassNet(**wanted).eval()
    grown.load_state_dict(grow_state(v2.state_dict(), GlassNet.settings(**V2), wanted))
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    focus, aperture = torch.tensor([[0.3, 0.6], [-1.0, -1.0]]), torch.tensor([[2.8], [1.8]])
    expected = v2.layers(image, focus, aperture)
    for subject in (None, torch.zeros(2, 1, 32, 32), torch.rand(2, 1, 32, 32)):
        got = grown.layers(image, focus, aperture, subject)
        assert torch.equal(got.image, expected.image) and torch.equal(got.matte_logit, expected.matte_logit)


def test_no_plane_can_be_grown_in_front_of_an_existing_one():
    with pytest.raises(ValueError, match="cannot add aperture_input in front of the existing subject_input"):
        grow_state(GlassNet(**SMALL, subject_input=True).state_dict(), GlassNet.settings(**SMALL, subject_input=True),
                   GlassNet.settings(**SMALL, subject_input=True, aperture_input=True))


def test_the_shipped_v2_grown_equals_v2_at_zero_subject():
    from bokeh import pretrained

    v2 = pretrained.load("reference")
    settings = GlassNet.settings(**pretrained.meta("reference")["model"])
    wanted = {**settings, "subject_input": True}
    grown = GlassNet(**wanted).eval()
    grown.load_state_dict(grow_state(v2.state_dict(), settings, wanted))
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(grown(image)[0], v2(image)[0])
