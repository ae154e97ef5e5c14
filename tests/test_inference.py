"""bokeh.inference: the fast path gives the generator's numbers."""

import math

import pytest
import torch
from torch import nn

from bokeh import cpu
from bokeh.inference import (
    ChannelsLastInstanceNorm2d,
    compile_for_inference,
    describe_precision,
    model_precision,
    prepare_for_inference,
    resolve_precision,
    run_generator,
)
from bokeh.models.glassnet import GlassNet


@pytest.mark.parametrize("shape", [(1, 8, 5, 7), (2, 16, 16, 24), (3, 4, 1, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(("mean", "std"), [(0.0, 1.0), (2.0, 3.0), (1000.0, 1.0)])
def test_channels_last_instance_norm_equals_instance_norm(shape, channels_last, mean, std):
    # mean/std = 1000: plain group_norm's channels-last kernel (E[x^2] - E[x]^2) is off by ~1e3 here
    x = (torch.randn(shape) * std + mean).float()
    expected = nn.InstanceNorm2d(shape[1])(x.double()).float()  # float64 reference on the same inputs
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = ChannelsLastInstanceNorm2d()(x)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-5)
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last  # no copy to NCHW


def small_generator(norm="instance"):
    """A tiny Glass-Net with He-initialized convs: outputs of order 1, so comparisons mean something
    (the paper's N(0, 0.02) init gives outputs of order 1e-4 at these widths)."""
    model = GlassNet(width1=4, width2=6, blocks=2, norm=norm)
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return model


def test_prepare_leaves_the_original_alone_and_keeps_the_weights():
    model = small_generator().train()
    prepared = prepare_for_inference(model)
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in model.modules()) == 2 * 2 * 2
    assert not prepared.training and not any(p.requires_grad for p in prepared.parameters())
    assert not any(isinstance(m, nn.InstanceNorm2d) for m in prepared.modules())
    assert sum(isinstance(m, ChannelsLastInstanceNorm2d) for m in prepared.modules()) == 2 * 2 * 2
    original, fast = model.state_dict(), prepared.state_dict()
    assert original.keys() == fast.keys()
    assert all(torch.equal(original[key], fast[key]) for key in original)
    assert prepared.unet_stage.head.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
@pytest.mark.parametrize("channels_last", [True, False])
def test_run_generator_equals_the_plain_forward(norm, channels_last):
    model = small_generator(norm)
    for module in model.modules():  # a less trivial batch norm than the default running stats
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    model.eval()
    image = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        expected, _ = model(image)
    bokeh = run_generator(prepare_for_inference(model, channels_last=channels_last), image, channels_last=channels_last)
    torch.testing.assert_close(bokeh, expected, rtol=0, atol=1e-5)
    assert bokeh.is_contiguous() and not bokeh.requires_grad
    assert expected.std() > 0.05  # the comparison is not between two near-constant images


def test_run_generator_keeps_the_input_check():
    with pytest.raises(ValueError, match="multiples of 8"):
        run_generator(prepare_for_inference(small_generator()), torch.zeros(1, 3, 30, 48))


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_detected_cpu(monkeypatch, native, expected):
    monkeypatch.setattr(cpu, "native_bf16", lambda flags=None: native)
    assert resolve_precision("auto") == expected
    assert resolve_precision() == expected
    prepared = prepare_for_inference(small_generator(), precision="auto")
    assert model_precision(prepared) == expected
    assert next(prepared.parameters()).dtype == (torch.bfloat16 if native else torch.float32)


@pytest.mark.parametrize("native", [True, False])
def test_explicit_precision_is_kept_whatever_the_cpu(monkeypatch, native):
    monkeypatch.setattr(cpu, "native_bf16", lambda flags=None: native)
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("bf16") == "bf16"
    described = describe_precision("bf16")
    assert ("emulated" in described) != native


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision='fp16'.*auto, fp32, bf16"):
        resolve_precision("fp16")
    with pytest.raises(ValueError, match="precision"):
        prepare_for_inference(small_generator(), precision="half")


def test_bf16_output_is_close_to_fp32():
    """bf16 (emulated where not native: the numbers are the same) against fp32 on a tiny model."""
    model = small_generator()
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    fp32 = run_generator(prepare_for_inference(model, precision="fp32"), image)
    bf16 = run_generator(prepare_for_inference(model, precision="bf16"), image)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape and bf16.is_contiguous()
    mse = float(((bf16.double() - fp32.double()) ** 2).mean())
    psnr = 10 * math.log10(2.0**2 / mse)  # [-1, 1] scale: peak-to-peak 2
    assert 35.0 < psnr < 80.0, psnr  # close, and really computed in bf16 (not an fp32 run)
    assert fp32.std() > 0.05


@pytest.mark.slow
def test_compiled_model_gives_the_eager_numbers():
    """torch.compile with frozen weights (compile_for_inference): a lever, not another model."""
    model = small_generator()
    image = torch.rand(1, 3, 32, 48) * 2 - 1
    eager = run_generator(prepare_for_inference(model), image)
    compiled_model = compile_for_inference(prepare_for_inference(model))
    compiled = run_generator(compiled_model, image)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=1e-5)
    assert model_precision(compiled_model) == "fp32" and eager.std() > 0.05
