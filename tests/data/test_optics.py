"""The renderer's physics, on hand-built scenes whose right answer is known without the renderer.

A fake (a global blur, a blur that ignores depth, a single-pass depth-dependent filter, Gaussian
instead of disc kernels) fails at least one of these.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bokeh.data.optics import Layer, ThinLens, disc_kernel, radius_grid, render, slice_scene

LENS = ThinLens(focal_mm=50.0, f_number=2.0, focus_m=2.0, sensor_width_mm=22.3)
WIDTH = 1600  # the image width that sets the pixel pitch: radii of 2 to 22 px on this small canvas
CANVAS = (120, 160)  # no margin: checks keep a blur radius away from the canvas edges


def draw(layers, sharp=False, lens=LENS, max_radius=40.0, gamma=4.0):
    return render(slice_scene(layers, lens, WIDTH, max_radius, gamma), CANVAS, gamma, sharp=sharp)


def flat(value, depth, shape=CANVAS, top=0, left=0, alpha=None):
    color = np.broadcast_to(np.asarray(value, np.float32), shape + (3,)).copy()
    return Layer(color, np.ones(shape, np.float32) if alpha is None else alpha, depth, top, left)


def point(value, depth, y, x):
    """A one-pixel light brighter than white."""
    return Layer(np.full((1, 1, 3), value, np.float32), np.ones((1, 1), np.float32), depth, y, x)


def test_coc_radius_is_the_thin_lens_formula():
    # by hand: A = 50/2 = 25 mm; diameter = A f (d - s) / (d (s - f)) = 25*50*2000/(4000*1950) mm
    expected = 0.5 * (25 * 50 * 2000 / (4000 * 1950)) * 1000 / 22.3
    assert LENS.coc_radius(4.0, 1000) == pytest.approx(expected, rel=1e-6)
    assert LENS.coc_radius(2.0, 1000) == pytest.approx(0.0, abs=1e-9)
    assert LENS.coc_radius(1.0, 1000) < 0 < LENS.coc_radius(3.0, 1000)
    assert LENS.coc_radius(8.0, 2000) == pytest.approx(2 * LENS.coc_radius(8.0, 1000))  # scales with width
    radii = LENS.coc_radius(np.array([2.5, 4.0, 10.0, 1e9]), 1000)
    assert np.all(np.diff(radii) > 0)
    with pytest.raises(ValueError, match="focus distance"):
        ThinLens(focal_mm=50.0, focus_m=0.04)


def test_disc_kernel_is_a_normalised_uniform_disc():
    kernel = disc_kernel(6.0)
    assert kernel.shape == (13, 13) and kernel.sum() == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(kernel, kernel.T) and np.array_equal(kernel, kernel[::-1])
    inside = kernel[6 - 4 : 6 + 5, 6 - 4 : 6 + 5][np.hypot(*np.mgrid[-4:5, -4:5]) <= 4]
    assert np.ptp(inside) == 0  # flat top: a disc, not a Gaussian
    assert kernel[6, 0] < kernel[6, 6] and kernel[0, 0] == 0
    assert disc_kernel(0.3).shape == (1, 1)
    assert np.all(np.diff(radius_grid(20.0)) > 0) and radius_grid(20.0).max() == pytest.approx(20.0)


def measured_disc_radius(image, y, x, background):
    """Radius of the bright disc around (y, x): sqrt(area / pi) of the pixels clearly above the background."""
    bright = image[..., 0] > background + 0.5 * (image[y, x, 0] - background)
    return math.sqrt(bright.sum() / math.pi)


@pytest.mark.parametrize("depth", [1.4, 1.7, 2.6, 3.5, 30.0])  # radii -9.9, -4.1, 5.3, 9.9, 21.5
def test_a_point_light_becomes_a_disc_of_the_thin_lens_radius(depth):
    dark = 0.05
    image = draw([flat(dark, 1000.0), point(60.0, depth, 60, 80)])
    expected = abs(LENS.coc_radius(depth, WIDTH))
    assert expected > 2.5
    assert measured_disc_radius(image, 60, 80, dark) == pytest.approx(expected, abs=0.75)
    # flat top: half-way out the disc is as bright as its centre
    r = int(expected * 0.5)
    assert image[60, 80 + r, 0] == pytest.approx(image[60, 80, 0], rel=0.02)
    # and the sharp image keeps a single bright pixel
    sharp = draw([flat(dark, 1000.0), point(60.0, depth, 60, 80)], sharp=True)
    assert (sharp[..., 0] > 0.5).sum() == 1


def test_blur_grows_with_distance_from_the_focal_plane():
    behind = [2.0, 2.2, 2.4, 2.6, 3.0, 3.5]  # radii 0, 2.1, 3.8, 5.3, 7.7, 9.9
    in_front = [2.0, 1.9, 1.8, 1.7, 1.55, 1.4]
    layers = [flat(0.05, 1000.0)]
    layers += [point(60.0, d, 30, 12 + 26 * i) for i, d in enumerate(behind)]
    layers += [point(60.0, d, 90, 12 + 26 * i) for i, d in enumerate(in_front)]
    image = draw(layers)
    for row, depths in ((30, behind), (90, in_front)):
        radii = [measured_disc_radius(image[row - 25 : row + 25, 26 * i : 26 * i + 24], 25, 12, 0.05) for i in range(len(depths))]
        expected = [abs(LENS.coc_radius(d, WIDTH)) for d in depths]
        assert radii[0] < 0.8  # at focus: still a point
        assert all(b > a for a, b in zip(radii, radii[1:])), radii
        assert np.allclose(radii[2:], expected[2:], atol=0.75), (radii, expected)


def test_a_point_behind_the_subject_is_cut_by_the_subjects_sharp_edge():
    depth = 6.0
    radius = LENS.coc_radius(depth, WIDTH)  # 15.3 px
    subject = flat(0.4, LENS.focus_m, shape=(120, 80))  # left half, in focus
    layers = [flat(0.05, 1000.0), point(60.0, depth, 60, 82), subject]
    image = draw(layers)
    sharp = draw(layers, sharp=True)
    assert np.array_equal(image[:, :80], sharp[:, :80])  # no light spills over the in-focus subject
    yy, xx = np.mgrid[0:120, 0:160]
    visible = (np.hypot(yy - 60, xx - 82) <= radius) & (xx >= 80)
    disc = image[..., 0] > 0.7  # the light saturates its disc; the subject is 0.4
    assert disc.sum() == pytest.approx(visible.sum(), rel=0.08)
    assert disc[visible].mean() > 0.97


def test_pixels_at_the_focal_depth_are_unchanged():
    rng = np.random.default_rng(0)
    texture = rng.uniform(0, 1, CANVAS + (3,)).astype(np.float32)
    subject_alpha = np.zeros(CANVAS, np.float32)
    subject_alpha[30:90, 50:110] = 1
    layers = [Layer(texture[::-1].copy(), np.ones(CANVAS, np.float32), 20.0), Layer(texture, subject_alpha, LENS.focus_m)]
    image, sharp = draw(layers), draw(layers, sharp=True)
    assert np.array_equal(image[30:90, 50:110], sharp[30:90, 50:110])
    assert np.abs(image[:25] - sharp[:25]).mean() > 0.05  # while the far background is blurred


def test_a_far_layers_blur_does_not_smear_over_a_near_edge_or_pull_in_its_colour():
    """An in-focus red occluder in front of a far, strongly textured green-blue wall."""
    rng = np.random.default_rng(1)
    wall = np.zeros(CANVAS + (3,), np.float32)
    wall[..., 1:] = rng.uniform(0, 1, CANVAS + (2,)) > 0.5  # hard texture, no red at all
    occluder = np.zeros(CANVAS, np.float32)
    occluder[:, :70] = 1
    layers = [Layer(wall, np.ones(CANVAS, np.float32), 50.0), flat((1.0, 0.0, 0.0), LENS.focus_m, alpha=occluder)]
    image = draw(layers)
    assert np.array_equal(image[:, :70], np.broadcast_to(np.float32([1, 0, 0]), (120, 70, 3)))  # edge kept
    assert image[:, 70:, 0].max() < 1e-3  # no red halo on the wall side (a gather blur bleeds here)
    assert image[:, 90:, 1].std() < 0.5 * wall[:, 90:, 1].std()  # the wall is blurred


def test_a_near_out_of_focus_edge_spreads_over_the_focused_background():
    """Partial occlusion: a blurred foreground edge covers the sharp background by a ramp of width 2r."""
    near_depth = 1.4
    radius = abs(LENS.coc_radius(near_depth, WIDTH))  # 9.9 px
    occluder = np.zeros(CANVAS, np.float32)
    occluder[:, :80] = 1
    layers = [flat(0.0, LENS.focus_m), flat(1.0, near_depth, alpha=occluder)]
    row = draw(layers, gamma=1.0)[60, :, 0]
    assert row[int(radius) + 1 : int(80 - radius - 1)].min() == pytest.approx(1.0, abs=1e-5)
    assert row[int(80 + radius + 1) :].max() == pytest.approx(0.0, abs=1e-5)
    assert row[79] > 0.5 > row[80] and row[79] + row[80] == pytest.approx(1.0, abs=0.05)
    assert row[70] > 0.9 > 0.1 > row[89] and np.all(np.diff(row[60:100]) <= 1e-6)


def test_a_sloping_surface_has_no_seams_between_its_blur_bins():
    """A uniform grey ground whose depth changes per row, in front of a white wall: any gap between
    two radius bins would let the white show through."""
    inverse_depth = np.linspace(1 / 20.0, 1 / 2.3, 60, dtype=np.float32)  # 20 m at the top, 2.3 m below
    depth = np.repeat((1 / inverse_depth)[:, None], 160, 1)
    ground = Layer(np.full((60, 160, 3), 0.3, np.float32), np.ones((60, 160), np.float32), depth, 60, 0)
    image = draw([flat(1.0, 100.0), ground])
    interior = image[60 + 22 : 115, 25:135]  # a blur radius away from the wall edge and the canvas sides
    assert np.abs(interior - 0.3).max() < 1e-4
    radii = LENS.coc_radius(depth[:, 0], WIDTH)
    assert radii.max() > 12 > 6 > radii.min()
    assert len(set(np.round(radii))) > 10  # the surface really spans many bins
