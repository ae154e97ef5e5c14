import pytest
import torch

from bokeh.losses.perceptual import perceptual_loss
from bokeh.models.vgg import VGG19Features


@pytest.fixture(scope="module")
def extractor():
    return VGG19Features()


def test_zero_for_equal_inputs_positive_otherwise(extractor):
    image = torch.rand(2, 3, 32, 48) * 2 - 1
    assert perceptual_loss(extractor, image, image.clone()) == 0
    other = (image + 0.3 * torch.randn_like(image)).clamp(-1, 1)
    assert perceptual_loss(extractor, other, image) > 0


def test_is_mean_absolute_feature_difference(extractor):
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    expected = (extractor(a) - extractor(b)).abs().mean()
    torch.testing.assert_close(perceptual_loss(extractor, a, b), expected)


def test_gradient_reaches_output_only_and_vgg_never_changes(extractor):
    before = {k: v.clone() for k, v in extractor.state_dict().items()}
    output = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    target = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    perceptual_loss(extractor, output, target).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert target.grad is None
    assert all(p.grad is None and not p.requires_grad for p in extractor.parameters())
    after = extractor.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_mismatched_shapes_are_named(extractor):
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 32\) and \(1, 3, 32, 48\)"):
        perceptual_loss(extractor, torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 48))
