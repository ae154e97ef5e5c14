import pytest
import torch
from torch import nn

from bokeh.models.critics import CriticSet, PatchCritic, receptive_field


def conv_strides(critic: PatchCritic) -> list[int]:
    return [m.stride[0] for m in critic.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize(("depth", "field"), [(1, 16), (2, 34), (3, 70), (4, 142), (5, 286)])
def test_receptive_field_formula(depth, field):
    assert PatchCritic(depth, ndf=2).receptive_field == field == 9 * 2**depth - 2


def test_receptive_field_of_pix2pix_chain():
    # pix2pix's 70 x 70 PatchGAN: three 4x4 stride-2 convs, two 4x4 stride-1 convs
    assert receptive_field([2, 2, 2, 1, 1]) == 70
    assert receptive_field([1]) == 4


@pytest.mark.parametrize(("depth", "size", "index"), [(3, 96, 5), (5, 352, 4)])
def test_measured_receptive_field_matches(depth, size, index):
    """Backprop one interior score to the input: the touched window is exactly the field wide.

    Without norm (instance norm spreads gradient over the whole map through its statistics).
    """
    critic = PatchCritic(depth, ndf=2, norm="none")
    x = torch.randn(1, 3, size, size, requires_grad=True)
    scores = critic(x)
    scores[0, 0, index, index].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0  # (size, size)
    rows = touched.any(1).nonzero().flatten()
    cols = touched.any(0).nonzero().flatten()
    assert rows[0] > 0 and rows[-1] < size - 1, "window clipped by the border: test geometry is wrong"
    assert rows[-1] - rows[0] + 1 == critic.receptive_field
    assert cols[-1] - cols[0] + 1 == critic.receptive_field


def test_layer_layout_follows_pix2pix():
    critic = PatchCritic(depth=5, ndf=64)
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size for m in convs] == [(4, 4)] * 7
    assert conv_strides(critic) == [2, 2, 2, 2, 2, 1, 1]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512, 512, 512, 1]
    assert all(m.negative_slope == 0.2 for m in critic.modules() if isinstance(m, nn.LeakyReLU))
    norms = [m for m in critic.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 5 and all(m.affine for m in norms)


def test_never_batch_norm_and_none_option():
    for norm in ("instance", "none"):
        kinds = {type(m) for m in CriticSet(ndf=2, norm=norm).modules()}
        assert not any(issubclass(k, nn.modules.batchnorm._BatchNorm) for k in kinds)
    assert nn.InstanceNorm2d not in {type(m) for m in PatchCritic(3, ndf=2, norm="none").modules()}
    with pytest.raises(ValueError, match="batch norm would couple"):
        PatchCritic(3, norm="batch")


@pytest.mark.parametrize(("depth", "size"), [(3, 64), (5, 200)])
def test_output_shape(depth, size):
    scores = PatchCritic(depth, ndf=4)(torch.rand(2, 3, size, size + 32) * 2 - 1)
    side = 2**depth
    assert scores.shape == (2, 1, size // side - 2, (size + 32) // side - 2)


@pytest.mark.parametrize("depth", [3, 5])
def test_minimum_input_size_is_exact(depth):
    critic = PatchCritic(depth, ndf=2)
    smallest = critic.min_input_size
    assert smallest == 3 * 2**depth
    assert critic(torch.zeros(1, 3, smallest, smallest)).shape == (1, 1, 1, 1)
    with pytest.raises(ValueError, match=f"at least {smallest} x {smallest} px, got {smallest - 1} x {smallest}"):
        critic(torch.zeros(1, 3, smallest - 1, smallest))


def test_wrong_channels_are_named():
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\).*\(1, 4, 64, 64\)"):
        PatchCritic(3, ndf=2)(torch.zeros(1, 4, 64, 64))


def test_critic_set_default_depths_and_outputs():
    critics = CriticSet(ndf=2)
    assert [c.depth for c in critics.critics] == [3, 5]
    assert critics.receptive_fields == [70, 286]
    assert critics.min_input_size == 96
    scores = critics(torch.rand(1, 3, 128, 160) * 2 - 1)
    assert [s.shape for s in scores] == [(1, 1, 14, 18), (1, 1, 2, 3)]


def test_critic_set_configurable_depths():
    critics = CriticSet(depths=[2, 3, 4], ndf=2, in_channels=6)
    assert critics.receptive_fields == [34, 70, 142]
    assert len(critics(torch.zeros(1, 6, 64, 64))) == 3
    with pytest.raises(ValueError, match="at least one depth"):
        CriticSet(depths=[])


@pytest.mark.parametrize("bad", [{"depth": 0}, {"ndf": 0}, {"in_channels": -1}, {"depth": 2.0}])
def test_bad_hyperparameters_are_rejected(bad):
    with pytest.raises(ValueError, match="positive integer"):
        PatchCritic(**bad)


def test_samples_are_scored_independently():
    """No batch coupling: the per-sample gradient penalty relies on it."""
    critics = CriticSet(ndf=2).train()
    images = torch.rand(3, 3, 96, 96) * 2 - 1
    together = critics(images)
    alone = critics(images[1:2])
    for t, a in zip(together, alone):
        torch.testing.assert_close(t[1:2], a, atol=1e-5, rtol=0)
