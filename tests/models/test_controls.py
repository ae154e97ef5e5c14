"""The control inputs of Glass-Net and their one contract (bokeh.models.controls)."""

from __future__ import annotations

import math

import pytest
import torch

from bokeh.models.controls import (
    NO_FOCUS,
    REFERENCE_F_NUMBER,
    ControlError,
    InputContract,
    check_aperture,
    check_focus,
    control_tensors,
    focus_grid,
    focus_plane,
    focus_weights,
)
from bokeh.models.glassnet import BLEND_INIT_BIAS, GlassNet, grow_state

SMALL = dict(width1=4, width2=4, blocks=1, global_residual=True, full_res_skip=True)


@pytest.mark.parametrize("bad", [(1.2, 0.5), (0.5, -0.1), (float("nan"), 0.5), (math.inf, 0.2), "abc", (0.5,), None])
def test_a_bad_focus_point_is_one_sentence(bad):
    with pytest.raises(ControlError, match="focus="):
        check_focus(bad)


@pytest.mark.parametrize("bad", [0, 0.0, -2.8, float("nan"), math.inf, "abc", 100.0])
def test_a_bad_f_number_is_one_sentence(bad):
    with pytest.raises(ControlError, match="aperture="):
        check_aperture(bad)


def test_good_values_pass_as_floats():
    assert check_focus(["0.25", 1]) == (0.25, 1.0)
    assert check_aperture("2.8") == 2.8


def test_a_control_the_model_does_not_take_is_refused_by_name():
    plain = InputContract()
    assert plain.names == ("image",) and plain.controls == ()
    with pytest.raises(ControlError, match="focus= was given, but this model takes no tap-to-focus point"):
        plain.check(focus=(0.5, 0.5))
    with pytest.raises(ControlError, match="aperture= was given"):
        InputContract(focus=True).check(aperture=2.8)
    both = InputContract(True, True)
    assert both.names == ("image", "focus", "aperture")
    assert both.check((0.5, 0.5), 8) == ((0.5, 0.5), 8.0)
    model = GlassNet(**SMALL)
    with pytest.raises(ControlError, match="takes no focus input"):
        model(torch.zeros(1, 3, 16, 16), focus=torch.zeros(1, 2))


def test_the_contract_follows_the_settings():
    assert InputContract.from_settings(GlassNet.settings(focus_input=True)).names == ("image", "focus")
    assert GlassNet(**SMALL, aperture_input=True).contract.names == ("image", "aperture")


def test_the_focus_plane_peaks_at_the_point_and_auto_is_zero():
    height, width = 48, 80
    grid, weights = focus_grid(height, width), focus_weights(height, width)
    plane = focus_plane(torch.tensor([[0.25, 0.75], list(NO_FOCUS)]), grid, weights)  # (2, 1, H, W)
    peak = int(plane[0, 0].argmax())
    assert (peak // width, peak % width) in {(35, 19), (35, 20), (36, 19), (36, 20)}
    assert float(plane[0].max()) > 0.95 and float(plane[1].max()) == 0.0
    # a round spot: the plane falls alike over equal distances in pixels along x and y
    row, col = 36, 20
    assert plane[0, 0, row, col + 6].item() == pytest.approx(plane[0, 0, row + 6, col].item(), rel=1e-3)


def test_control_tensors_fill_the_defaults():
    focus, aperture = control_tensors(3)
    assert focus.shape == (3, 2) and focus[0].tolist() == list(NO_FOCUS)
    assert aperture.shape == (3, 1) and aperture[0, 0].item() == pytest.approx(REFERENCE_F_NUMBER)


def test_controls_reach_the_output_and_have_the_right_shape_checks():
    torch.manual_seed(0)
    model = GlassNet(**SMALL, focus_input=True, aperture_input=True).eval()
    for module in model.modules():  # make the control planes matter in a random network
        if isinstance(module, torch.nn.Conv2d) and module.in_channels in (5, 8):
            torch.nn.init.normal_(module.weight, 0.0, 0.5)
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    auto = model(image)[0]
    assert not torch.allclose(auto, model(image, focus=torch.tensor([[0.5, 0.5]]))[0])
    assert not torch.allclose(auto, model(image, aperture=torch.tensor([[8.0]]))[0])
    assert torch.allclose(auto, model(image, focus=torch.tensor([NO_FOCUS]), aperture=torch.tensor([[REFERENCE_F_NUMBER]]))[0])
    with pytest.raises(ControlError, match=r"focus must have shape \(1, 2\)"):
        model(image, focus=torch.zeros(1, 3))


def test_a_grown_network_computes_what_the_trained_one_did():
    torch.manual_seed(1)
    trained = GlassNet(**SMALL).eval()
    for p in trained.parameters():  # far from the identity: the comparison means something
        p.data.normal_(0.0, 0.3)
    wanted = GlassNet.settings(**SMALL, focus_input=True, aperture_input=True)
    grown = GlassNet(**wanted).eval()
    grown.load_state_dict(grow_state(trained.state_dict(), GlassNet.settings(**SMALL), wanted))
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    focus = torch.tensor([[0.3, 0.6], [0.9, 0.1]])
    assert torch.allclose(trained(image)[0], grown(image, focus, torch.tensor([[2.8], [8.0]]))[0], atol=1e-6)


def test_a_grown_blend_channel_starts_near_the_trained_output():
    torch.manual_seed(2)
    trained = GlassNet(**SMALL).eval()
    wanted = GlassNet.settings(**SMALL, blend=True)
    grown = GlassNet(**wanted).eval()
    grown.load_state_dict(grow_state(trained.state_dict(), GlassNet.settings(**SMALL), wanted))
    assert grown.unet_stage.head.bias[3].item() == BLEND_INIT_BIAS
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    before, after = trained(image)[0], grown(image)[0]
    keep = torch.sigmoid(torch.tensor(BLEND_INIT_BIAS))
    assert torch.allclose(after, keep * image + (1 - keep) * before, atol=1e-5)


def test_growing_refuses_other_changes():
    with pytest.raises(ValueError, match="cannot grow"):
        grow_state(GlassNet(**SMALL).state_dict(), GlassNet.settings(**SMALL), GlassNet.settings(**{**SMALL, "blocks": 2}))
    with pytest.raises(ValueError, match="cannot grow"):
        grow_state({}, GlassNet.settings(**SMALL, blend=True), GlassNet.settings(**SMALL))


def test_blend_keeps_the_input_where_the_keep_weight_is_one():
    model = GlassNet(**SMALL, blend=True).eval()
    with torch.no_grad():
        model.unet_stage.head.bias[3].fill_(30.0)  # keep weight 1 everywhere
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(model(image)[0], image, atol=1e-6)
