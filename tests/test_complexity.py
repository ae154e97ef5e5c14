"""bokeh.complexity: parameter and FLOP counts on fake tensors."""

import pytest
import torch
from torch import nn

from bokeh.complexity import count_parameters, measure
from bokeh.models.glassnet import GlassNet


def test_conv_flops_match_the_textbook_formula_and_scale_with_area():
    conv = nn.Conv2d(5, 7, 3, padding=1, bias=False)
    for height, width in ((8, 8), (16, 24)):
        result = measure(conv, (2, 5, height, width))
        assert result.flops == 2 * (2 * height * width) * 7 * 5 * 3 * 3  # 2 FLOPs per multiply-add
        assert result.macs == result.flops // 2
    assert measure(conv, (1, 5, 8, 8)).parameters == 7 * 5 * 9


def test_count_parameters_can_skip_frozen_ones():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert count_parameters(model) == (3 * 4 + 4) + (4 * 2 + 2)
    assert count_parameters(model, trainable_only=True) == 4 * 2 + 2


def test_glassnet_at_full_ebb_size_matches_spec():
    # SPEC.md: c2 = 32 at 1024 x 1536 is ~16 M parameters, 0.46 T multiply-adds (0.93 TFLOP),
    # stage 2 about 80 % of it. Fake tensors: no 1024 x 1536 arithmetic is done.
    model = GlassNet(width1=16, width2=32).eval()
    full = measure(model, (1, 3, 1024, 1536))
    assert full.parameters == pytest.approx(16.03e6, rel=0.005)
    assert full.flops == pytest.approx(0.927e12, rel=0.005)
    assert full.macs == pytest.approx(0.4635e12, rel=0.005)
    assert sum(full.flops_by_module.values()) == full.flops
    assert 0.75 < full.flops_by_module["unet_stage"] / full.flops < 0.85
    # fully convolutional: FLOPs scale with the image area, parameters do not change
    quarter = measure(model, (1, 3, 512, 768))
    assert full.flops == 4 * quarter.flops
    assert measure(model, (2, 3, 512, 768)).flops == 2 * quarter.flops


def test_measure_leaves_the_model_untouched():
    model = GlassNet(width1=4, width2=4, blocks=1, norm="batch").train()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    measure(model, (2, 3, 32, 32))
    assert all(module.training for module in model.modules())  # mode restored
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())  # BN stats too


def test_authors_width_is_smaller():
    assert measure(GlassNet(width2=24), (1, 3, 64, 64)).parameters == pytest.approx(10.35e6, rel=0.005)


def test_measure_runs_no_arithmetic_on_huge_inputs():
    # 256 x 3 x 4096 x 4096 floats are 51 GB (and the output as much): only fake tensors can do this
    result = measure(nn.Conv2d(3, 4, 3, bias=False), (256, 3, 4096, 4096))
    assert result.flops == 2 * 256 * 4094 * 4094 * 4 * 3 * 9


@pytest.mark.parametrize("shape", [(), (1, 3, 0, 8), (1, 3, 8.0, 8)])
def test_bad_input_shape_is_a_clear_error(shape):
    with pytest.raises(ValueError, match="input_shape"):
        measure(nn.Conv2d(3, 3, 3), shape)
