import pytest
import torch
from kornia.metrics import ssim as kornia_ssim

from bokeh import metrics
from bokeh.losses.reconstruction import l1_loss, ssim_loss


def images(batch=2, height=32, width=40):
    return torch.rand(batch, 3, height, width) * 2 - 1


def test_l1_is_mean_absolute_error():
    a = torch.zeros(1, 3, 8, 8)
    b = torch.full((1, 3, 8, 8), 0.5)
    b[..., 0, 0] = -1.0  # 3 pixels off by 1, the rest by 0.5
    expected = (0.5 * (3 * 64 - 3) + 1.0 * 3) / (3 * 64)
    assert l1_loss(a, b).item() == pytest.approx(expected)


def test_ssim_loss_zero_for_equal_and_positive_otherwise():
    image = images()
    assert ssim_loss(image, image.clone()).abs() < 1e-6
    assert ssim_loss(images(), image) > 0.5  # unrelated noise has SSIM near 0


def test_ssim_loss_is_one_minus_the_reported_gaussian_ssim_on_unit_range():
    a, b = images(), images()
    expected = 1 - metrics.ssim((a + 1) / 2, (b + 1) / 2, kind="gaussian").mean()
    torch.testing.assert_close(ssim_loss(a, b), expected)
    # the range mapping matters: SSIM's constants assume a data range of 1
    unmapped = 1 - kornia_ssim(a, b, 11, max_val=1.0, padding="valid").mean()
    assert not torch.isclose(ssim_loss(a, b), unmapped)


def test_ssim_of_known_case_constant_images():
    # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) with C1 = 0.01^2
    a = torch.full((1, 3, 16, 16), 0.0)  # 0.5 in [0, 1]
    b = torch.full((1, 3, 16, 16), -0.5)  # 0.25 in [0, 1]
    c1 = 0.01**2
    expected = 1 - (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)
    assert ssim_loss(a, b).item() == pytest.approx(expected, rel=1e-4)


def test_gradients_reach_the_output():
    output = images().requires_grad_(True)
    (l1_loss(output, images()) + ssim_loss(output, images())).backward()
    assert output.grad is not None and output.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", [l1_loss, ssim_loss])
def test_mismatched_shapes_are_named(loss):
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 32\) and \(1, 3, 32, 40\)"):
        loss(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 40))


def test_focus_weighted_l1_is_l1_at_weight_zero_and_charges_in_focus_errors_more():
    from bokeh.losses.reconstruction import focus_weighted_l1_loss

    target = torch.zeros(1, 3, 4, 4)
    radius = torch.zeros(1, 1, 4, 4)
    radius[..., 2:, :] = 6.0  # bottom half defocused, top half in focus
    top, bottom = target.clone(), target.clone()
    top[..., :2, :] = 0.4  # the same error, once in focus, once defocused
    bottom[..., 2:, :] = 0.4
    assert focus_weighted_l1_loss(top, target, radius, 0.0) == pytest.approx(l1_loss(top, target).item())
    assert focus_weighted_l1_loss(top, target, radius, 3.0) > focus_weighted_l1_loss(bottom, target, radius, 3.0)
    # normalised by the mean weight: an error everywhere costs the same whatever the weight
    everywhere = torch.full_like(target, 0.4)
    assert focus_weighted_l1_loss(everywhere, target, radius, 3.0) == pytest.approx(0.4)
