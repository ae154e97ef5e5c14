import pytest
import torch
from torch import nn

from bokeh.losses.adversarial import critic_loss, generator_adversarial_loss, gradient_penalties
from bokeh.models.critics import CriticSet


class LinearCritic(nn.Module):
    """D(x) = <w, x> per sample: its gradient is w everywhere, so GP = (||w|| - 1)^2 exactly."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1).view(-1, 1, 1, 1)  # (B, 1, 1, 1)


class QuadraticCritic(nn.Module):
    """D(x) = ||x||^2 / 2 per sample: its gradient is x itself."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * x).flatten(1).sum(1).div(2).view(-1, 1)


def images(batch=4, size=8, dtype=torch.float64):
    return torch.rand(batch, 3, size, size, dtype=dtype) * 2 - 1


def test_linear_critic_penalty_is_exact():
    critic = LinearCritic((3, 8, 8))
    real, fake = images(), images()
    result = critic_loss(critic, real, fake, gp_weight=10.0)
    norm = critic.w.detach().norm()
    torch.testing.assert_close(result.gp, (norm - 1) ** 2)
    w = critic.w.detach()
    wasserstein = (real * w).flatten(1).sum(1).mean() - (fake * w).flatten(1).sum(1).mean()
    torch.testing.assert_close(result.wasserstein, wasserstein)
    torch.testing.assert_close(result.total, -wasserstein + 10.0 * (norm - 1) ** 2)


def test_penalty_gradient_reaches_critic_parameters_exactly():
    critic = LinearCritic((3, 8, 8))
    gp_weight = 7.0
    (gp_weight * critic_loss(critic, images(), images()).gp).backward()
    w = critic.w.detach()
    # d/dw lambda (||w|| - 1)^2 = 2 lambda (||w|| - 1) w / ||w||
    expected = 2 * gp_weight * (w.norm() - 1) * w / w.norm()
    torch.testing.assert_close(critic.w.grad, expected)


def test_one_blend_factor_per_sample_and_per_sample_norm():
    # D = ||x||^2/2 => grad = blend = alpha_b * real + (1 - alpha_b) * fake; with real = 1, fake = 0
    # each sample's gradient norm is alpha_b * sqrt(numel): a per-pixel or per-batch alpha gives other values
    real = torch.ones(5, 3, 4, 4, dtype=torch.float64)
    fake = torch.zeros_like(real)
    torch.manual_seed(123)
    (penalty,) = gradient_penalties(QuadraticCritic(), real, fake)
    torch.manual_seed(123)
    alpha = torch.rand(5, 1, 1, 1, dtype=torch.float64).flatten()
    assert alpha.std() > 0.1  # the samples really get different factors
    torch.testing.assert_close(penalty, ((alpha * (3 * 4 * 4) ** 0.5 - 1) ** 2).mean())


def test_critic_loss_does_not_reach_the_generator():
    generator = nn.Conv2d(3, 3, 3, padding=1)
    critic = CriticSet(depths=[1, 2], ndf=2)
    source = torch.rand(2, 3, 24, 24) * 2 - 1
    fake = torch.tanh(generator(source))
    critic_loss(critic, torch.rand(2, 3, 24, 24) * 2 - 1, fake).total.backward()
    assert all(p.grad is None for p in generator.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())


def test_critic_set_losses_are_means_over_critics():
    critics = CriticSet(depths=[1, 2], ndf=2)
    real, fake = torch.rand(3, 3, 24, 24) * 2 - 1, torch.rand(3, 3, 24, 24) * 2 - 1
    torch.manual_seed(7)
    together = critic_loss(critics, real, fake, gp_weight=3.0)
    singles = []
    for critic in critics.critics:
        torch.manual_seed(7)  # the same blend for each critic, as inside the set
        singles.append(critic_loss(critic, real, fake, gp_weight=3.0))
    for field in ("total", "wasserstein", "gp"):
        expected = torch.stack([getattr(s, field) for s in singles]).mean()
        torch.testing.assert_close(getattr(together, field), expected)
    assert singles[0].gp != singles[1].gp  # two different critics
    expected_g = -torch.stack([c(fake).mean() for c in critics.critics]).mean()
    torch.testing.assert_close(generator_adversarial_loss(critics, fake), expected_g)


def test_generator_loss_is_minus_mean_score_and_reaches_generator():
    critic = LinearCritic((3, 8, 8))
    generator = nn.Conv2d(3, 3, 1).double()
    fake = generator(images())
    loss = generator_adversarial_loss(critic, fake)
    torch.testing.assert_close(loss, -(fake * critic.w).flatten(1).sum(1).mean())
    loss.backward()
    assert generator.weight.grad is not None and generator.weight.grad.abs().sum() > 0


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match=r"real \(1, 3, 8, 8\) and fake \(1, 3, 8, 9\)"):
        critic_loss(LinearCritic((3, 8, 8)), images(1), torch.zeros(1, 3, 8, 9, dtype=torch.float64))
