"""WGAN-GP losses for a set of critics (SPEC.md, "Critics"; Gulrajani et al. 2017).

A critic here is any module that maps a ``(B, C, H, W)`` batch to one score tensor or to a list of
them (:class:`bokeh.models.critics.CriticSet`: one patch-score map per critic). A critic's value for
a sample, D(x), is the mean of that sample's patch scores; every quantity is computed per critic and
then averaged over the critics, as the paper averages its two critics' losses.

These functions return tensors only: they never call ``backward()`` nor touch an optimizer. The
gradient penalty is built with ``create_graph=True`` so that ``backward()`` on the total reaches the
critic's parameters through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CriticLoss:
    """The critic's WGAN-GP loss and its parts, each a scalar tensor averaged over the critics.

    Attributes:
        total: ``mean D(fake) - mean D(real) + gp_weight * gp`` (minimize this).
        wasserstein: the Wasserstein-distance estimate ``mean D(real) - mean D(fake)`` (log it).
        gp: ``mean_b (||grad_x D(x_b)|| - 1) ** 2`` at the blends, unweighted.
    """

    total: torch.Tensor
    wasserstein: torch.Tensor
    gp: torch.Tensor


def _score_maps(critic: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The critic's outputs as a list (a single critic returns one tensor)."""
    scores = critic(x)
    return list(scores) if isinstance(scores, (list, tuple)) else [scores]


def _per_sample(scores: torch.Tensor) -> torch.Tensor:
    """D(x) per sample: the mean of each sample's patch scores. ``(B, ...)`` -> ``(B,)``."""
    return scores.reshape(scores.shape[0], -1).mean(1)


def _check_pair(real: torch.Tensor, fake: torch.Tensor) -> None:
    if real.shape != fake.shape:
        raise ValueError(
            f"WGAN-GP needs real and fake batches of one shape, got real {tuple(real.shape)} and fake "
            f"{tuple(fake.shape)}: crop the target and the generator output alike"
        )


def gradient_penalties(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> list[torch.Tensor]:
    """One WGAN-GP penalty per critic, at the same random per-sample blends of ``real`` and ``fake``.

    x = alpha * real + (1 - alpha) * fake with one alpha ~ U[0, 1) per sample (``(B, 1, 1, 1)``,
    drawn from torch's global generator); each sample's gradient of D(x) is flattened before its
    L2 norm (a per-pixel norm over channels would be a different penalty).

    Shape:
        real, fake: ``(B, C, H, W)``. Returns a list of scalars, one per critic.
    """
    _check_pair(real, fake)
    batch = real.shape[0]
    alpha = torch.rand(batch, 1, 1, 1, device=real.device, dtype=real.dtype)
    blend = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)  # (B, C, H, W)
    penalties = []
    for scores in _score_maps(critic, blend):
        (gradient,) = torch.autograd.grad(
            _per_sample(scores).sum(), blend, create_graph=True, retain_graph=True
        )  # samples are independent, so the gradient of the sum is each sample's own gradient
        norms = gradient.reshape(batch, -1).norm(2, dim=1)  # (B,)
        penalties.append(((norms - 1) ** 2).mean())
    return penalties


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0) -> CriticLoss:
    """WGAN-GP critic loss averaged over the critics: ``mean D(fake) - mean D(real) + gp_weight * GP``.

    ``fake`` is detached: this loss never sends gradient into the generator.

    Args:
        critic: a module returning one score tensor or a list of them (:class:`CriticSet`).
        real: target images; fake: generator outputs.
        gp_weight: lambda of the gradient penalty (paper 10).

    Shape:
        real, fake: ``(B, C, H, W)``, images in [-1, 1]. Returns a :class:`CriticLoss` of scalars.
    """
    _check_pair(real, fake)
    fake = fake.detach()
    batch = real.shape[0]
    # one critic pass over both halves: the critics have no batch coupling (no batch norm)
    differences = [
        _per_sample(scores[:batch]).mean() - _per_sample(scores[batch:]).mean()
        for scores in _score_maps(critic, torch.cat([real, fake]))  # (2B, C, H, W)
    ]
    wasserstein = torch.stack(differences).mean()
    gradient_penalty = torch.stack(gradient_penalties(critic, real, fake)).mean()
    return CriticLoss(
        total=-wasserstein + gp_weight * gradient_penalty,
        wasserstein=wasserstein,
        gp=gradient_penalty,
    )


def generator_adversarial_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The generator's WGAN loss ``-mean D(fake)``, averaged over the critics.

    Gradient flows into ``fake`` (and the critic's parameters too: step only the generator's
    optimizer, or freeze the critic, when using it).

    Shape:
        fake: ``(B, C, H, W)`` in [-1, 1]. Returns a scalar.
    """
    return -torch.stack([_per_sample(s).mean() for s in _score_maps(critic, fake)]).mean()
