"""Per-pixel circle-of-confusion maps: exact for known scenes, stored losslessly, carried by validation items."""

from __future__ import annotations

import numpy as np
import pytest

from bokeh.data.coc import MAX_RADIUS, read_coc, write_coc
from bokeh.data.optics import Layer, ThinLens
from bokeh.data.scene import Scene
from bokeh.data.synthetic import render_scene

LENS = ThinLens(focal_mm=50.0, f_number=1.8, focus_m=2.0, sensor_width_mm=22.3)
SIZE = (64, 96)


def plane_scene(depth: float, max_radius: float = 40.0) -> Scene:
    """One textured fronto-parallel plane filling the canvas at ``depth`` metres."""
    margin = int(np.ceil(max_radius)) + 2
    canvas = (SIZE[0] + 2 * margin, SIZE[1] + 2 * margin)
    color = np.random.default_rng(0).uniform(0.2, 0.8, canvas + (3,)).astype(np.float32)
    return Scene([Layer(color, np.ones(canvas, np.float32), depth)], LENS, SIZE, margin, max_radius)


def test_a_plane_at_the_focus_distance_is_all_in_focus():
    pair = render_scene(plane_scene(LENS.focus_m))
    assert pair.blur_radius.shape == SIZE
    assert np.abs(pair.blur_radius).max() < 1e-3
    assert np.array_equal(pair.sharp, pair.bokeh)  # nothing to blur, so the pair is identical


def test_a_far_plane_has_the_thin_lens_radius_everywhere():
    depth = 9.0
    # thin lens by hand: A = f/N; blur-circle diameter A f (d - s) / (d (s - f)) on a 22.3 mm sensor
    aperture = 50.0 / 1.8
    diameter_mm = aperture * 50.0 * (9000.0 - 2000.0) / (9000.0 * (2000.0 - 50.0))
    expected = 0.5 * diameter_mm * SIZE[1] / 22.3
    pair = render_scene(plane_scene(depth))
    assert expected > 1.0
    np.testing.assert_allclose(pair.blur_radius, expected, rtol=1e-5)


def test_the_map_is_capped_where_the_renderer_caps_the_blur():
    pair = render_scene(plane_scene(9.0, max_radius=0.5))
    assert np.all(pair.blur_radius == np.float32(0.5))


def test_a_map_round_trips_through_its_png_to_a_hundredth_of_a_pixel(tmp_path):
    radius = np.random.default_rng(1).uniform(0, 60, (33, 47)).astype(np.float32)
    path = write_coc(tmp_path / "coc" / "7.png", radius)
    back = read_coc(path)
    assert back.shape == radius.shape and back.dtype == np.float32
    assert np.abs(back - radius).max() <= 0.005 + 1e-6
    assert read_coc(write_coc(tmp_path / "big.png", np.full((4, 4), 1e4))).max() == pytest.approx(MAX_RADIUS)


@pytest.mark.parametrize("bad", [np.full((4, 4), -1.0), np.full((4, 4), np.nan), np.zeros((4, 4, 3))])
def test_bad_maps_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="CoC map"):
        write_coc(tmp_path / "x.png", bad)


def test_reading_a_file_that_is_not_a_map_names_it(tmp_path):
    from PIL import Image

    from bokeh.images import ImageError

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match="rgb.png"):
        read_coc(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match="missing.png"):
        read_coc(tmp_path / "missing.png")
