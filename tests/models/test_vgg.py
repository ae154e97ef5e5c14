import pytest
import torch
from torch import nn

from bokeh.models.vgg import VGG19Features


@pytest.fixture(scope="module")
def extractor():
    return VGG19Features()


def test_layers_are_vgg19_up_to_relu5_4(extractor):
    layers = list(extractor.features)
    assert len(layers) == 36
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16 and all(m.kernel_size == (3, 3) for m in convs)
    assert sum(isinstance(m, nn.MaxPool2d) for m in layers) == 4
    assert isinstance(layers[34], nn.Conv2d) and layers[34].out_channels == 512  # conv5_4
    assert isinstance(layers[35], nn.ReLU)  # relu5_4
    assert all(key.startswith("features.") for key in extractor.state_dict())  # buffers not persistent


def test_output_shape_and_range(extractor):
    out = extractor(torch.rand(2, 3, 48, 64) * 2 - 1)
    assert out.shape == (2, 512, 3, 4)
    assert out.min() >= 0


def test_imagenet_normalization_of_minus_one_one_inputs(extractor):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = extractor.features(((x + 1) / 2 - mean) / std)
    torch.testing.assert_close(extractor(x), expected, atol=0, rtol=0)


def test_frozen_and_stays_in_eval_under_parent_train():
    parent = nn.ModuleDict({"vgg": VGG19Features(), "head": nn.Conv2d(3, 3, 1)})
    parent.train()
    assert parent["head"].training
    assert not any(m.training for m in parent["vgg"].modules())
    assert not any(p.requires_grad for p in parent["vgg"].parameters())


def test_gradient_reaches_input_not_weights(extractor):
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    extractor(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in extractor.parameters())


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (1, 3, 15, 32), (3, 32, 32)])
def test_bad_input_is_named(extractor, shape):
    with pytest.raises(ValueError, match="VGG19Features expects"):
        extractor(torch.zeros(shape))
