"""Tap points drawn from a pair's in-focus region, and the f-numbers the synthetic scenes render."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bokeh.data.focus import in_focus_region, interior_point, sample_point
from bokeh.data.pairs import PairDataset, list_pairs
from bokeh.data.synthesize import write_dataset
from bokeh.data.synthetic import make_pair, scene_config
from bokeh.models.controls import NO_FOCUS


def _ring_mask(height=60, width=90):
    """A thick ring: its centroid is outside it, so a centroid-only answer would be wrong."""
    yy, xx = np.mgrid[:height, :width]
    distance = np.hypot(yy - 30, xx - 45)
    return (distance > 12) & (distance < 26)


def test_the_interior_point_lies_deep_inside_the_region():
    region = _ring_mask()
    x, y = interior_point(region)
    row, col = int(y * region.shape[0]), int(x * region.shape[1])
    assert region[row, col]
    assert 16 < np.hypot(row - 30, col - 45) < 22  # near the middle of the ring's width
    assert interior_point(region) == (x, y)  # deterministic


def test_an_empty_region_has_no_interior_point():
    assert interior_point(np.zeros((8, 8), bool)) is None


def test_training_taps_fall_inside_the_region_and_auto_comes_in_its_share():
    region = _ring_mask()
    generator = torch.Generator().manual_seed(0)
    points = [sample_point(region, generator, auto_share=0.3) for _ in range(400)]
    autos = sum(p == NO_FOCUS for p in points)
    assert 80 < autos < 160  # ~30 % of 400
    for x, y in (p for p in points if p != NO_FOCUS):
        assert region[int(y * 60), int(x * 90)]
    assert sample_point(None, generator, 0.0) == NO_FOCUS  # unknown region: no tap


def test_the_region_comes_from_the_mask_first_then_the_blur_radius():
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = 255
    radius = np.zeros((4, 4), np.float32)
    assert in_focus_region(mask, radius).sum() == 1
    assert in_focus_region(None, radius).all()
    assert in_focus_region(None, None) is None


def test_scenes_render_the_f_number_they_record_and_the_blur_scales_with_it():
    config = scene_config({"f_number": [1.8, 11.0]})
    wide = scene_config({})  # f/1.8, the sets made before the aperture control
    for index in range(3):
        narrow_pair, wide_pair = make_pair(index, 5, (64, 96), 0.0, config), make_pair(index, 5, (64, 96), 0.0, wide)
        f_number = narrow_pair.scene.lens.f_number
        assert 1.8 <= f_number <= 11.0 and wide_pair.scene.lens.f_number == pytest.approx(1.8)
        # the same scene (one draw for the f-number either way): the CoC scales as 1.8 / N
        assert np.allclose(narrow_pair.coc, wide_pair.coc * 1.8 / f_number, atol=1e-3)


def test_a_set_with_several_f_numbers_records_them_and_the_data_reads_them(tmp_path):
    out = write_dataset(tmp_path / "set", n=4, size=(32, 48), seed=2, scene={"f_number": [1.8, 11.0]})
    recorded = json.loads((out / "f_numbers.json").read_text())
    assert sorted(recorded) == ["0", "1", "2", "3"] and len(set(recorded.values())) > 1
    pairs, _ = list_pairs(out)
    assert {p.name: p.f_number for p in pairs} == recorded
    item = PairDataset(pairs, crop=None)[1]
    assert item["aperture"].item() == pytest.approx(recorded["1"])
    x, y = item["focus"].tolist()
    assert (x, y) == tuple(NO_FOCUS) or 0 < x < 1 and 0 < y < 1


def test_the_matte_target_takes_the_blur_radius_over_the_mask_and_is_none_without_either():
    from bokeh.data.focus import matte_target

    radius = np.array([[0.0, 0.5, 1.0], [3.0, 0.99, 8.0]], np.float32)
    mask = np.array([[0, 255, 255], [255, 0, 0]], np.uint8)
    exact = matte_target(mask, radius)
    assert exact.dtype == np.float32 and np.array_equal(exact, [[1, 1, 0], [0, 1, 0]]), "radius < 1 px, the mask ignored"
    assert np.array_equal(matte_target(mask, None), [[0, 1, 1], [1, 0, 0]]), "the mask where there is no radius"
    assert np.array_equal(matte_target(mask.astype(np.float32) / 255, None), [[0, 1, 1], [1, 0, 0]]), "float masks: > 0.5"
    assert np.array_equal(matte_target(None, radius, in_focus_max_radius=4.0), [[1, 1, 1], [1, 1, 0]])
    assert matte_target(None, None) is None
