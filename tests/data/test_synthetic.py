"""Generated pairs: deterministic by seed, sharp at the focal depth, blurrier away from it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from bokeh.data.scene import SceneConfig, sample_scene
from bokeh.data.synthetic import make_pair, pair_rng

SIZE = (96, 144)
FOCUSED = SceneConfig(subject=1.0, near=0.0)  # nothing in front of the subject


def test_same_seed_gives_the_same_bytes_whatever_else_was_made():
    first = make_pair(3, seed=7, size=SIZE)
    make_pair(0, seed=7, size=SIZE)  # other pairs in between change nothing
    again = make_pair(3, seed=7, size=SIZE)
    assert first.sharp.tobytes() == again.sharp.tobytes() and first.bokeh.tobytes() == again.bokeh.tobytes()
    other_seed, other_index = make_pair(3, seed=8, size=SIZE), make_pair(4, seed=7, size=SIZE)
    assert not np.array_equal(first.sharp, other_seed.sharp) and not np.array_equal(first.sharp, other_index.sharp)


def test_pair_shapes_and_types():
    pair = make_pair(0, size=SIZE)
    assert pair.sharp.shape == pair.bokeh.shape == SIZE + (3,) and pair.sharp.dtype == np.uint8
    assert pair.depth.shape == pair.coc.shape == SIZE and np.isfinite(pair.depth).all()
    with pytest.raises(ValueError, match="at least 16"):
        make_pair(0, size=(8, 200))


def opaque_in_focus_unreached(pair) -> np.ndarray:
    """Pixels fully covered by the in-focus subject that no nearer surface's blur can reach."""
    scene, (height, width) = pair.scene, SIZE
    coverage = np.zeros(scene.canvas, np.float32)
    for layer in scene.layers:
        if layer.name == "subject":
            h, w = layer.alpha.shape
            coverage[layer.top : layer.top + h, layer.left : layer.left + w] = layer.alpha
    m = scene.margin
    opaque = coverage[m : m + height, m : m + width] == 1.0
    nearer = pair.depth < scene.lens.focus_m - 1e-4
    reach = int(np.ceil(scene.max_radius)) + 1
    return opaque & ~ndimage.binary_dilation(nearer, iterations=reach) if nearer.any() else opaque


@pytest.mark.parametrize("index", range(4))
def test_pixels_at_the_focal_depth_are_unchanged(index):
    pair = make_pair(index, seed=11, size=SIZE, noise=0.0, config=FOCUSED)
    keep = opaque_in_focus_unreached(pair)
    assert keep.sum() > 100
    assert np.array_equal(pair.sharp[keep], pair.bokeh[keep])
    noisy = make_pair(index, seed=11, size=SIZE, noise=0.01, config=FOCUSED)
    difference = np.abs(noisy.sharp[keep].astype(int) - noisy.bokeh[keep].astype(int))
    assert difference.max() <= 14 and difference.mean() < 4  # two noise draws of std <= 0.01 each


def test_detail_is_kept_at_focus_and_lost_where_the_circle_of_confusion_is_large():
    """Over several scenes (lights off: their discs add edges): gradient energy of bokeh over sharp
    is ~1 where |CoC| < 0.3 px and small where |CoC| >= 2.5 px. (How blur grows with the radius is
    measured exactly on point lights in test_optics.py.)"""
    bands = {"focused": (0.0, 0.3), "blurred": (2.5, np.inf)}
    energy = {band: [0.0, 0.0] for band in bands}
    config = SceneConfig(subject=1.0, near=0.0, lights=(0, 0))
    for index in range(6):
        pair = make_pair(index, seed=3, size=SIZE, noise=0.0, config=config)
        radius = np.abs(pair.coc)
        for k, image in enumerate((pair.sharp, pair.bokeh)):
            laplacian = ndimage.laplace(image.astype(np.float32).mean(2)) ** 2
            for band, (low, high) in bands.items():
                energy[band][k] += float(laplacian[(radius >= low) & (radius < high)].sum())
    assert energy["focused"][1] / energy["focused"][0] > 0.95
    assert energy["blurred"][1] / energy["blurred"][0] < 0.35


@pytest.mark.parametrize("size", [(16, 16), (24, 120), (120, 24), (40, 30)])
def test_scenes_of_any_shape_can_be_drawn(size):
    """Odd and portrait shapes exercise every placement range of the sampler (rounding included)."""
    for index in range(25):
        scene = sample_scene(pair_rng(9, index), size)
        assert scene.canvas == (size[0] + 2 * scene.margin, size[1] + 2 * scene.margin)
        assert all(0 <= layer.top and layer.top + layer.alpha.shape[0] <= scene.canvas[0] for layer in scene.layers)
        assert all(0 <= layer.left and layer.left + layer.alpha.shape[1] <= scene.canvas[1] for layer in scene.layers)
