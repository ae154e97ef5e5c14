import logging
import urllib.error

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from bokeh.weights import VGGWeightsError, imagenet_cache_file, load_vgg19_features

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def torchvision_vgg19() -> nn.Module:
    """torchvision's own vgg19 with a tiny classifier (same key format, 80 MB instead of 550 MB)."""
    torch.manual_seed(1)
    model = torchvision.models.vgg19()
    model.classifier = nn.Sequential(nn.Linear(4, 2))
    return model.eval()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty torch cache and no network: any download attempt fails like it does here."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


def reference_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """torchvision's relu5_4 features of images in [-1, 1]."""
    with torch.no_grad():
        return model.features[:36](((x + 1) / 2 - IMAGENET_MEAN) / IMAGENET_STD)


@pytest.mark.parametrize("layout", ["full_model", "features_only"])
def test_local_torchvision_state_dict_gives_identical_features(torchvision_vgg19, tmp_path, layout):
    state = torchvision_vgg19.state_dict() if layout == "full_model" else torchvision_vgg19.features.state_dict()
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    extractor = load_vgg19_features(str(path))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(extractor(x), reference_features(torchvision_vgg19, x), atol=0, rtol=0)
    assert not any(p.requires_grad for p in extractor.parameters())
    assert not extractor.training


def test_imagenet_is_read_from_the_torch_cache_without_download(torchvision_vgg19, offline):
    cached = imagenet_cache_file()
    assert cached.name == "vgg19-dcbb9e9d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(torchvision_vgg19.state_dict(), cached)
    extractor = load_vgg19_features("imagenet")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(extractor(x), reference_features(torchvision_vgg19, x), atol=0, rtol=0)


def test_missing_imagenet_weights_error_says_where_to_put_the_file(offline):
    with pytest.raises(VGGWeightsError) as caught:
        load_vgg19_features("imagenet")
    message = str(caught.value)
    assert str(imagenet_cache_file()) in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert "loss.vgg.weights=/path/vgg19.pth" in message
    assert "no network in this test" in message


def test_a_download_that_never_answers_is_the_same_sentence_not_a_hang(monkeypatch, tmp_path):
    """A network that accepts the connection and then sends nothing (a proxy without a route): torch.hub
    waited forever; the download's socket now gives up after DOWNLOAD_TIMEOUT_S."""
    import socket
    import time
    from types import SimpleNamespace

    from bokeh import weights

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # the connection is accepted by the kernel; nothing is ever sent back
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/vgg19-dcbb9e9d.pth"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights, "IMAGENET_WEIGHTS", SimpleNamespace(url=url))
    monkeypatch.setattr(weights, "DOWNLOAD_TIMEOUT_S", 1.0)
    started = time.monotonic()
    try:
        with pytest.raises(VGGWeightsError, match="could not be downloaded .*timed out"):
            load_vgg19_features("imagenet")
    finally:
        silent.close()
    assert time.monotonic() - started < 30
    assert socket.getdefaulttimeout() is None, "the process's default is given back"


def test_random_weights_log_a_loud_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="bokeh.weights"):
        extractor = load_vgg19_features("random")
    assert "RANDOM weights" in caplog.text and "loss.vgg.weights" in caplog.text
    assert not any(p.requires_grad for p in extractor.parameters())


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(VGGWeightsError, match=f"loss.vgg.weights={path}: no such file"):
        load_vgg19_features(path)


def test_unreadable_file_is_named(tmp_path):
    path = tmp_path / "vgg19.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(VGGWeightsError, match="could not be read as a state dict"):
        load_vgg19_features(path)


def test_non_dict_file_is_named(tmp_path):
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(VGGWeightsError, match="holds a Tensor, not a state dict"):
        load_vgg19_features(path)


def test_foreign_keys_are_named(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.conv.weight": torch.zeros(1)}, path)
    with pytest.raises(VGGWeightsError, match="unexpected keys such as \\['encoder.conv.weight'\\]"):
        load_vgg19_features(path)


def test_vgg16_weights_do_not_fit(tmp_path):
    path = tmp_path / "vgg16.pth"
    torch.save(make_layers(cfgs["D"]).state_dict(), path)  # vgg16 features, features-only keys
    with pytest.raises(VGGWeightsError, match="does not fit VGG19 features up to relu5_4"):
        load_vgg19_features(path)


def test_messages_name_the_config_key_the_caller_uses(offline):
    with pytest.raises(VGGWeightsError, match="pass loss.vgg_weights=/path/vgg19.pth"):
        load_vgg19_features("imagenet", option="loss.vgg_weights")
