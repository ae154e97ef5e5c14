import pytest
import torch
from torch import nn

from bokeh.models.glassnet import GlassNet
from bokeh.models.norms import PoolInstanceNorm2d, to_pool_instance_norm


@pytest.mark.parametrize("size", [(2, 3), (3, 5), (8, 8), (16, 24), (128, 192), (17, 40)])
def test_pool_form_equals_instance_norm(size):
    x = torch.randn(2, 5, *size) * 3 + 1.5
    expected = nn.InstanceNorm2d(5, affine=False).eval()(x)
    torch.testing.assert_close(PoolInstanceNorm2d(*size)(x), expected, atol=1e-5, rtol=0)


def test_pool_form_uses_no_reduction_ops():
    """The export form reaches the exporter as avg_pool2d, never mean/var."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = set()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Recorder():
        PoolInstanceNorm2d(16, 24)(torch.randn(1, 2, 16, 24))
    assert "avg_pool2d" in seen
    assert not seen & {"mean", "var", "var_mean", "sum", "native_batch_norm", "instance_norm"}


def test_pool_form_rejects_other_sizes():
    with pytest.raises(ValueError, match="16 x 24"):
        PoolInstanceNorm2d(16, 24)(torch.zeros(1, 1, 16, 16))


def test_swapped_generator_equals_original():
    model = GlassNet(16, 32).eval()
    image = torch.rand(1, 3, 64, 96) * 2 - 1
    swapped = to_pool_instance_norm(model, (1, 3, 64, 96))
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in swapped.modules())
    pools = [m for m in swapped.modules() if isinstance(m, PoolInstanceNorm2d)]
    assert len(pools) == 36 and all((m.height, m.width) == (8, 12) for m in pools)
    assert any(isinstance(m, nn.InstanceNorm2d) for m in model.modules()), "original must be untouched"
    with torch.no_grad():
        for got, want in zip(swapped(image), model(image)):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_swap_refuses_affine_instance_norm():
    model = nn.Sequential(nn.InstanceNorm2d(3, affine=True))
    with pytest.raises(ValueError, match="affine"):
        to_pool_instance_norm(model, (1, 3, 8, 8))
