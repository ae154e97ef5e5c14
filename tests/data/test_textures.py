"""Textures: only the listed scikit-image files; the Middlebury 'motorcycle' pair stays out."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data

from bokeh.data import textures
from bokeh.data.synthetic import make_pair


def test_the_motorcycle_stereo_pair_is_reserved_for_evaluation():
    assert textures.RESERVED == ("stereo_motorcycle",)
    assert not any("motorcycle" in name for name in textures.PHOTOS + textures.GRAY_TEXTURES)
    for name in ("stereo_motorcycle", "motorcycle_left"):
        with pytest.raises(ValueError, match="reserved for evaluation"):
            textures.load_texture(name)


def test_no_texture_is_a_motorcycle_image():
    left, right, _ = skimage.data.stereo_motorcycle()
    for image in textures.photo_bank() + textures.gray_bank():
        array = np.asarray(image)
        for reserved in (left, right, left.mean(2).astype(np.uint8)):
            assert array.shape != reserved.shape or not np.array_equal(array, reserved)


def test_pairs_are_made_without_ever_loading_the_motorcycle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the motorcycle stereo pair was loaded while making training data")

    monkeypatch.setattr(skimage.data, "stereo_motorcycle", refuse)
    textures.photo_bank.cache_clear()
    textures.gray_bank.cache_clear()
    try:
        pairs = [make_pair(i, seed=0, size=(48, 64)) for i in range(3)]
    finally:
        textures.photo_bank.cache_clear()
        textures.gray_bank.cache_clear()
    assert all(p.sharp.shape == (48, 64, 3) for p in pairs)


def test_unknown_texture_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="astronaut"):
        textures.load_texture("lily")


def test_procedural_and_photo_patches_are_in_range_and_detailed():
    rng = np.random.default_rng(0)
    for make in (textures.photo_patch, textures.gray_patch, textures.procedural_patch):
        patches = [make(rng, (40, 60)) for _ in range(10)]
        assert all(p.shape == (40, 60, 3) and p.dtype == np.float32 for p in patches)
        assert all(p.min() >= 0.0 and p.max() <= 1.0 for p in patches)  # values above 1 would be lights
        assert np.median([p.std() for p in patches]) > 0.04
