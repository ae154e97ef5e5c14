"""The matte loss: nothing from pixels whose focus is unknown, less for the right matte, every form."""

from __future__ import annotations

import pytest
import torch

from bokeh.data.focus import UNKNOWN
from bokeh.losses.matte import MATTE_FORMS, matte_loss


def region(size=(2, 1, 16, 16)) -> torch.Tensor:
    """``(B, 1, H, W)`` {0, 1}: a square in focus in each image."""
    target = torch.zeros(size)
    target[..., 4:12, 3:10] = 1.0
    return target


@pytest.mark.parametrize("form", MATTE_FORMS)
def test_pairs_without_a_region_add_nothing_to_the_matte_loss(form):
    logit = torch.randn(2, 1, 16, 16, requires_grad=True)
    loss = matte_loss(logit, torch.full((2, 1, 16, 16), UNKNOWN), form)
    loss.backward()
    assert loss.item() == 0.0 and loss.requires_grad
    assert torch.count_nonzero(logit.grad) == 0


@pytest.mark.parametrize("form", MATTE_FORMS)
def test_an_unknown_pair_in_a_batch_gets_no_gradient_and_leaves_the_known_ones_unchanged(form):
    target = region()
    target[1] = UNKNOWN
    logit = torch.randn(2, 1, 16, 16, requires_grad=True)
    loss = matte_loss(logit, target, form)
    loss.backward()
    assert torch.count_nonzero(logit.grad[1]) == 0 and torch.count_nonzero(logit.grad[0]) > 0
    alone = matte_loss(logit[:1].detach(), target[:1], form)
    assert loss.item() == pytest.approx(alone.item(), rel=1e-6), "the unknown pair does not dilute the mean"


@pytest.mark.parametrize("form", MATTE_FORMS)
def test_a_logit_matching_the_target_costs_less_than_its_inverse(form):
    target = region()
    matching = (target * 2 - 1) * 4.0  # logit +4 in focus, -4 elsewhere
    right, wrong = matte_loss(matching, target, form), matte_loss(-matching, target, form)
    assert 0.0 <= right.item() < 0.1 < wrong.item()
    assert right.item() < matte_loss(torch.zeros_like(target), target, form).item() < wrong.item()


def test_bad_shapes_and_forms_are_refused_by_name():
    with pytest.raises(ValueError, match="one shape"):
        matte_loss(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9))
    with pytest.raises(ValueError, match="loss.matte.form"):
        matte_loss(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), "focal")
