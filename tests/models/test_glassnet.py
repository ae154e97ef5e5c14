import pytest
import torch
from torch import nn

from bokeh.models.glassnet import GlassNet


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("width2", "expected_millions"), [(24, 10.35), (32, 16.03)])
def test_parameter_count_matches_paper_and_authors(width2, expected_millions):
    millions = count_parameters(GlassNet(width1=16, width2=width2)) / 1e6
    assert millions == pytest.approx(expected_millions, abs=0.01)


def test_output_shapes_and_ranges():
    model = GlassNet(width1=4, width2=4, blocks=2).eval()
    image = torch.rand(2, 3, 48, 64) * 2 - 1
    bokeh, rough = model(image)
    assert bokeh.shape == rough.shape == image.shape
    assert bokeh.abs().max() <= 1.0
    # rough = I - R with R = tanh(.) in [-1, 1]
    assert rough.abs().max() <= 2.0
    residual = image - rough
    assert residual.abs().max() <= 1.0 + 1e-6


@pytest.mark.parametrize("size", [(50, 64), (64, 60), (7, 8)])
def test_sides_not_multiple_of_8_give_error_naming_size(size):
    with pytest.raises(ValueError, match=f"{size[0]} x {size[1]}"):
        GlassNet(width1=4, width2=4, blocks=1)(torch.zeros(1, 3, *size))


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match=r"\(1, 4, 16, 16\)"):
        GlassNet(width1=4, width2=4, blocks=1)(torch.zeros(1, 4, 16, 16))


def test_norm_option_selects_layers():
    def kinds(model):
        return {type(m) for m in model.modules()}

    instance = kinds(GlassNet(4, 4, blocks=2, norm="instance"))
    assert nn.InstanceNorm2d in instance
    assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in instance)
    assert nn.BatchNorm2d in kinds(GlassNet(4, 4, blocks=2, norm="batch"))
    none = kinds(GlassNet(4, 4, blocks=2, norm="none"))
    assert nn.InstanceNorm2d not in none and nn.BatchNorm2d not in none


def test_instance_norm_count_is_two_per_residual_block():
    model = GlassNet(4, 4, blocks=3)
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in model.modules()) == 2 * 2 * 3


def test_dropout_is_off_by_default_and_optional():
    assert not any(isinstance(m, nn.Dropout) for m in GlassNet(4, 4, blocks=2).modules())
    dropouts = [m for m in GlassNet(4, 4, blocks=2, dropout=0.1).modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 4 and all(m.p == 0.1 for m in dropouts)


def test_weights_follow_normal_002_init():
    model = GlassNet(16, 32)
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    weights = weights.detach()
    assert weights.mean().abs() < 1e-3
    assert weights.std().item() == pytest.approx(0.02, rel=0.02)


@pytest.mark.parametrize("bad", [{"width1": 0}, {"width2": -3}, {"blocks": 0}, {"dropout": 1.0}, {"norm": "group"}])
def test_bad_hyperparameters_are_rejected(bad):
    with pytest.raises(ValueError):
        GlassNet(**bad)


def test_eval_mode_is_deterministic_and_batch_independent():
    model = GlassNet(4, 4, blocks=2).eval()
    images = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        together, _ = model(images)
        alone, _ = model(images[1:])
    torch.testing.assert_close(together[1:], alone, atol=1e-6, rtol=0)


def test_global_residual_starts_near_the_identity_and_keeps_the_output_range():
    torch.manual_seed(0)
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    paper, residual = GlassNet(4, 4, 1), GlassNet(4, 4, 1, global_residual=True)
    assert sum(p.numel() for p in paper.parameters()) == sum(p.numel() for p in residual.parameters())
    with torch.no_grad():
        near = (residual.eval()(image)[0] - image).abs().mean().item()
        far = (paper.eval()(image)[0] - image).abs().mean().item()
    assert near < 0.1 < far  # untrained: the paper's stage 2 draws a flat image, the residual form passes the input
    big = torch.ones(1, 3, 32, 48)
    with torch.no_grad():
        residual.unet_stage.head.bias.fill_(5.0)  # push the correction far out of range
        assert residual.eval()(big)[0].max() <= 1.0  # eval: clamped to [-1, 1]
        assert residual.train()(big)[0].max() > 1.0  # training: unclamped, so saturated pixels keep a gradient


def test_global_residual_must_be_a_bool():
    with pytest.raises(ValueError, match="global_residual"):
        GlassNet(4, 4, 1, global_residual="yes")


def test_full_res_skip_adds_one_fusing_conv_fed_by_the_full_resolution_encoder_feature():
    c = 8
    plain, skip = GlassNet(4, c, 1), GlassNet(4, c, 1, full_res_skip=True)
    assert count_parameters(skip) - count_parameters(plain) == 2 * c * c * 9  # a 3x3 conv, 2c -> c, no bias
    assert plain.unet_stage.fuse is None
    seen = {}
    skip.unet_stage.encoder.stages[0].register_forward_hook(lambda m, i, o: seen.update(full=o.clone()))
    skip.unet_stage.fuse.register_forward_hook(lambda m, i, o: seen.update(fuse_in=i[0].clone()))
    bokeh, _ = skip(torch.rand(2, 3, 32, 48) * 2 - 1)
    assert bokeh.shape == (2, 3, 32, 48)
    assert seen["fuse_in"].shape == (2, 2 * c, 32, 48)
    assert torch.equal(seen["fuse_in"][:, c:], seen["full"])  # the skip carries the encoder's full-resolution feature
