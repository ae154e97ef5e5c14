"""bokeh.composite: the full-size photo through the matte (pure torch, deterministic)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bokeh.composite import composite, full_size, upsample_background, upsample_matte

PHOTO, WORK = (256, 384), (64, 96)  # a 4x upsampling, as 12 MP photos at 1024 on the short side get about 3x


def random_photo(size=PHOTO, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1  # [-1, 1]


def step_photo(column: int, size=PHOTO) -> torch.Tensor:
    """Dark left of ``column``, bright from it on, with a little texture on both sides."""
    photo = torch.full((1, 3, *size), -0.6)
    photo[..., column:] = 0.6
    return photo + 0.02 * random_photo(size, seed=1)


def steepest_step(matte: torch.Tensor) -> tuple[float, float]:
    """The largest jump between neighbouring pixels of a row (mean over rows), and the mean column
    after which it happens."""
    jumps = matte[0, 0, :, 1:] - matte[0, 0, :, :-1]  # (H, W - 1)
    return float(jumps.max(-1).values.mean()), float(jumps.argmax(-1).float().mean())


def test_a_matte_of_one_returns_the_photo_exactly_and_of_zero_the_upsampled_background():
    photo, background = random_photo(), random_photo(WORK, seed=2)
    image, matte = full_size(photo, torch.ones(1, 1, *WORK), background)
    assert torch.equal(matte, torch.ones(1, 1, *PHOTO))
    assert torch.equal(image, photo)
    image, matte = full_size(photo, torch.zeros(1, 1, *WORK), background)
    assert torch.equal(matte, torch.zeros(1, 1, *PHOTO))
    assert torch.equal(image, upsample_background(background, PHOTO))
    assert torch.equal(upsample_background(background, PHOTO),
                       F.interpolate(background, size=PHOTO, mode="bilinear", align_corners=False))


def test_the_guided_upsampling_keeps_a_step_edge_of_the_photo_sharp():
    column = 150  # not on a working pixel's border (150 / 4 = 37.5)
    photo = step_photo(column)
    truth = torch.zeros(1, 1, *PHOTO)
    truth[..., column:] = 1.0
    small = F.interpolate(truth, size=WORK, mode="bilinear", align_corners=False, antialias=True)  # the model's matte
    bilinear = upsample_background(small, PHOTO).clamp(0, 1)
    guided = upsample_matte(small, photo)
    bilinear_step, _ = steepest_step(bilinear)
    guided_step, where = steepest_step(guided)
    assert bilinear_step < 0.15  # a 4x upsampling spreads the step over about 8 photo pixels
    assert guided_step > 2.5 * bilinear_step  # the guided matte steps where the photo does
    assert abs(where - (column - 1)) < 0.5  # between columns 149 and 150 (on average over the rows)
    assert float(guided.min()) >= 0.0 and float(guided.max()) <= 1.0


def test_texture_does_not_leak_into_a_flat_matte():
    """Where the matte is one value, the photo's texture must not print into it (a is 0 there)."""
    photo = random_photo()  # texture everywhere
    matte = upsample_matte(torch.full((1, 1, *WORK), 0.3), photo)
    assert float((matte - 0.3).abs().max()) < 1e-4


def test_at_the_working_size_the_composite_is_the_models_own_formula():
    photo, background = random_photo(WORK), random_photo(WORK, seed=2)
    keep = torch.rand(1, 1, *WORK, generator=torch.Generator().manual_seed(3))
    image, matte = full_size(photo, keep, background)
    assert torch.equal(matte, keep)  # no upsampling: no filter
    torch.testing.assert_close(image, keep * photo + (1 - keep) * background, atol=1e-6, rtol=0)
    assert torch.equal(composite(photo, torch.ones_like(keep), background), photo)


def test_a_photo_smaller_than_the_working_size_gets_both_layers_resized_down():
    photo = random_photo((40, 60))
    image, matte = full_size(photo, torch.full((1, 1, *WORK), 0.25), random_photo(WORK, seed=2))
    assert image.shape == (1, 3, 40, 60) and matte.shape == (1, 1, 40, 60)
    torch.testing.assert_close(matte, torch.full_like(matte, 0.25), atol=1e-6, rtol=0)
