"""bokeh.metrics against scikit-image's reference implementations on real photos."""

import math

import numpy as np
import pytest
import skimage.data
import torch
from skimage.filters import gaussian
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bokeh import metrics
from bokeh.metrics import psnr, ssim, to_unit_range

PHOTOS = ("astronaut", "coffee", "chelsea")  # shipped inside scikit-image: no download


def photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as ``(H, W, 3)`` float64 in [0, 1]."""
    return getattr(skimage.data, name)().astype(np.float64) / 255


def degraded(image: np.ndarray, seed: int) -> np.ndarray:
    """A blurred, noisy copy (the kind of error a renderer makes), still in [0, 1]."""
    noise = np.random.default_rng(seed).normal(0.0, 0.03, image.shape)
    return np.clip(gaussian(image, sigma=1.5, channel_axis=-1) + noise, 0.0, 1.0)


def batch(*images: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` arrays -> ``(B, 3, H, W)`` float32 tensor."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


def as_float32_array(tensor: torch.Tensor) -> np.ndarray:
    """The exact float32 values the tensor holds, as float64 ``(H, W, 3)`` for skimage."""
    return tensor.permute(1, 2, 0).double().numpy()


def skimage_references(target: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "psnr": peak_signal_noise_ratio(target, pred, data_range=1.0),
        "gaussian": structural_similarity(
            target, pred, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        ),
        "uniform": structural_similarity(target, pred, data_range=1.0, channel_axis=-1),  # skimage defaults
    }


@pytest.mark.parametrize("name", PHOTOS)
def test_psnr_and_both_ssims_agree_with_skimage_per_image(name):
    clean = photo(name)
    target = batch(clean, clean)
    pred = batch(degraded(clean, seed=1), degraded(clean, seed=2))
    ours = {
        "psnr": psnr(pred, target),
        "gaussian": ssim(pred, target, kind="gaussian"),
        "uniform": ssim(pred, target, kind="uniform"),
    }
    for i in range(2):
        expected = skimage_references(as_float32_array(target[i]), as_float32_array(pred[i]))
        for key, value in ours.items():
            assert value.shape == (2,)
            assert value[i].item() == pytest.approx(expected[key], abs=1e-4), (name, key, i)
    # the two SSIM definitions differ by more than the tolerance: the names matter
    assert (ours["uniform"] - ours["gaussian"]).abs().min() > 1e-3


def test_mean_reduction_is_the_mean_of_per_image_values():
    clean = photo("chelsea")[:64, :96]
    target = batch(clean, clean, clean)
    pred = batch(degraded(clean, 3), degraded(clean, 4), clean)
    for metric in (psnr, ssim):
        per_image = metric(pred[:2], target[:2])
        assert metric(pred[:2], target[:2], reduction="mean").item() == pytest.approx(per_image.mean().item())
    assert psnr(pred, target, reduction="mean").item() == float("inf")  # one identical pair: documented inf


def test_identical_images_give_ssim_one_and_psnr_inf():
    image = batch(photo("coffee")[:100, :120])
    assert psnr(image, image.clone()).item() == float("inf")
    for kind in ("gaussian", "uniform"):
        assert ssim(image, image.clone(), kind=kind).item() == pytest.approx(1.0, abs=1e-6)


def test_psnr_of_a_constant_offset():
    target = torch.full((2, 3, 16, 16), 0.25)
    pred = target + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)  # MSE 1e-2 and 1e-4
    torch.testing.assert_close(psnr(pred, target), torch.tensor([20.0, 40.0]), rtol=0, atol=1e-3)
    # data range 255: the same relative error gives the same PSNR
    torch.testing.assert_close(psnr(pred * 255, target * 255, data_range=255.0), torch.tensor([20.0, 40.0]), rtol=0, atol=1e-3)


def test_ssim_is_differentiable_and_its_gradient_points_to_the_target():
    clean = batch(photo("astronaut")[:48, :48])
    noisy = batch(degraded(photo("astronaut")[:48, :48], 5)).requires_grad_()
    for kind in ("gaussian", "uniform"):
        score = ssim(noisy, clean, kind=kind, reduction="mean")
        (gradient,) = torch.autograd.grad(score, noisy)
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0
        with torch.no_grad():  # a small step up the gradient raises SSIM
            stepped = (noisy + 1e-2 * gradient / gradient.abs().max()).clamp(0, 1)
            assert ssim(stepped, clean, kind=kind).item() > score.item()


def test_to_unit_range_maps_the_network_range():
    torch.testing.assert_close(to_unit_range(torch.tensor([-1.0, 0.0, 1.0])), torch.tensor([0.0, 0.5, 1.0]))


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "message"),
    [
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 8), {}, "of one shape"),
        (torch.rand(3, 16, 16), torch.rand(3, 16, 16), {}, r"\(B, C, H, W\)"),
        (torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16), {}, "to_unit_range"),
        (torch.rand(1, 3, 8, 32), torch.rand(1, 3, 8, 32), {}, "at least 11 x 11"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), {"kind": "box"}, "unknown SSIM kind"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), {"reduction": "sum"}, "unknown reduction"),
    ],
)
def test_bad_inputs_raise_clear_errors(pred, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ssim(pred, target, **kwargs)


def test_psnr_rejects_values_outside_the_data_range():
    with pytest.raises(ValueError, match=r"data range is \[0, 1\]"):
        psnr(torch.rand(1, 3, 8, 8) * 2 - 1, torch.rand(1, 3, 8, 8))


def test_split_psnr_equals_plain_psnr_when_the_mask_is_everything():
    generator = torch.Generator().manual_seed(3)
    pred, target = torch.rand(2, 3, 20, 24, generator=generator), torch.rand(2, 3, 20, 24, generator=generator)
    everything = torch.ones(2, 1, 20, 24, dtype=torch.bool)
    torch.testing.assert_close(metrics.psnr_masked(pred, target, everything), metrics.psnr(pred, target), rtol=1e-5, atol=1e-5)
    split = metrics.psnr_split(pred, target, torch.zeros(2, 1, 20, 24))  # radius 0: every pixel in focus
    torch.testing.assert_close(split["all"], metrics.psnr(pred, target), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(split["in_focus"], split["all"])
    assert torch.isnan(split["defocus"]).all()  # no pixel has a radius >= 4 px


def test_split_psnr_scores_each_pixel_set_on_its_own_error():
    target = torch.full((1, 3, 8, 8), 0.5)
    pred = target.clone()
    pred[..., :4, :] += 0.1  # error 0.1 on the top half only
    radius = torch.zeros(1, 1, 8, 8)
    radius[..., :4, :] = 6.0  # the top half is strongly defocused
    split = metrics.psnr_split(pred, target, radius)
    assert split["defocus"].item() == pytest.approx(20.0, abs=1e-4)  # 10 log10(1 / 0.01)
    assert split["in_focus"].item() == float("inf")
    assert split["all"].item() == pytest.approx(10 * math.log10(1 / 0.005), abs=1e-4)
    assert (radius >= metrics.DEFOCUS_MIN_RADIUS).sum() == 32 and (radius < metrics.IN_FOCUS_MAX_RADIUS).sum() == 32


def test_masked_psnr_refuses_a_mask_of_the_wrong_shape():
    with pytest.raises(ValueError, match="mask"):
        metrics.psnr_masked(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.ones(1, 3, 8, 8, dtype=torch.bool))


def test_matte_iou_counts_by_hand_over_the_known_pixels():
    matte = torch.tensor([[0.9, 0.9, 0.2, 0.6],
                          [0.1, 0.7, 0.4, 0.5],
                          [0.8, 0.0, 0.0, 0.0]])[None, None]
    target = torch.tensor([[1.0, 0.0, 1.0, -1.0],
                           [0.0, 1.0, 1.0, 0.0],
                           [-1.0, 0.0, 0.0, 0.0]])[None, None]
    # kept (> 0.5) and known: (0,0) (0,1) (1,1); wanted: (0,0) (0,2) (1,1) (1,2); (0,3) and (2,0) unknown;
    # 0.5 is not above the threshold: intersection 2, union 5
    assert metrics.matte_iou(matte, target).item() == pytest.approx(2 / 5)
    assert metrics.matte_iou(matte, target, threshold=0.3).item() == pytest.approx(3 / 6)  # (1,2) joins, (1,3) with 0.5 too
    nothing = metrics.matte_iou(torch.zeros(2, 1, 3, 4), torch.stack([torch.zeros(1, 3, 4), torch.full((1, 3, 4), -1.0)]))
    assert torch.isnan(nothing).all(), "no region and no kept pixel, or nothing known: no score"
