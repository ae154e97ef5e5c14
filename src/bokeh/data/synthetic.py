"""Synthetic (narrow-aperture, wide-aperture) pairs: a random scene rendered twice.

``make_pair(index, seed, size)`` draws scene number ``index`` of the set ``seed``
(:mod:`bokeh.data.scene`) and renders it through the lens stopped down (the narrow-aperture
"original": from a pinhole to f/16, as EBB!'s input) and wide open (the "bokeh" target) with
:mod:`bokeh.data.optics`. Each image then gets
its own mild sensor noise, as two photos would. Pair ``index`` of set ``seed`` is the same on every
machine and in every process, whichever other pairs are made: its random stream is
``SeedSequence([seed, index])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bokeh.data.optics import depth_map, render, slice_scene
from bokeh.data.scene import Scene, SceneConfig, sample_scene
from bokeh.images import float_to_uint8

#: Bump when a change to the scene sampler or renderer changes the pixels of a given seed/index.
#: 2: EBB!-like scene statistics (fixed 50 mm f/1.8 lens, subject in almost every scene, an input
#: aperture of up to f/16's) and per-pixel CoC maps.
GENERATOR_VERSION = 2


@dataclass
class SyntheticPair:
    """One rendered pair and what it was made from.

    Shape:
        sharp, bokeh: ``(H, W, 3)`` ``uint8`` RGB. depth: ``(H, W)`` ``float32`` metres of the
        nearest surface. coc: ``(H, W)`` ``float32`` signed CoC radius in pixels at that depth
        (before the cap; > 0 behind the focal plane).
    """

    sharp: np.ndarray
    bokeh: np.ndarray
    depth: np.ndarray
    coc: np.ndarray
    scene: Scene

    @property
    def blur_radius(self) -> np.ndarray:
        """``(H, W)`` ``float32``: the radius in pixels of the blur disc rendered at each pixel,
        ``|coc|`` capped at the scene's largest radius as the renderer caps it (what
        :mod:`bokeh.data.coc` stores and the metrics split on)."""
        return np.minimum(np.abs(self.coc), np.float32(self.scene.max_radius)).astype(np.float32)


def scene_config(overrides: dict | None = None) -> SceneConfig:
    """:class:`~bokeh.data.scene.SceneConfig` with ``overrides`` (config keys; lists become tuples).

    Raises:
        ValueError: an unknown key, naming the known ones.
    """
    overrides = dict(overrides or {})
    known = set(SceneConfig.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown scene setting(s) {sorted(unknown)} (data.scene); known: {sorted(known)}")
    return SceneConfig(**{key: tuple(value) if isinstance(value, (list, tuple)) else value for key, value in overrides.items()})


def pair_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of pair ``index`` of set ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def add_noise(images: list[np.ndarray], rng: np.random.Generator, noise: float) -> list[np.ndarray]:
    """Each image with its own mild sensor noise, as two photos would have: uniform noise of one
    standard deviation drawn in ``[0.3, 1] x noise`` for the pair (as mild as Gaussian noise of
    that std, and one cheap draw per image: the Gaussian one took a tenth of the render time).
    ``noise`` 0 returns the images unchanged. Not clipped.

    Shape:
        images: ``(H, W, 3)`` ``float32`` in [0, 1]; returns the same shapes.
    """
    if noise <= 0:
        return list(images)
    spread = np.float32(rng.uniform(0.3, 1.0) * noise * math.sqrt(12.0))
    return [image + spread * (rng.random(image.shape, np.float32) - np.float32(0.5)) for image in images]


def render_scene(scene: Scene, rng: np.random.Generator | None = None, noise: float = 0.0) -> SyntheticPair:
    """Render ``scene`` sharp and with bokeh, crop the margin, add noise (std up to ``noise``)."""
    canvas, (height, width), m = scene.canvas, scene.size, scene.margin
    slices = slice_scene(scene.layers, scene.lens, width, scene.max_radius, scene.gamma)
    images = []
    for aperture in (scene.input_aperture, 1.0):  # the narrow-aperture input, then the wide-aperture target
        image = render(slices, canvas, scene.gamma, aperture=aperture)
        images.append(image[m : m + height, m : m + width])
    if noise > 0:
        if rng is None:
            raise ValueError("render_scene needs an rng to add noise")
        images = add_noise(images, rng, noise)
    depth = depth_map(scene.layers, canvas)[m : m + height, m : m + width]
    coc = np.asarray(scene.lens.coc_radius(depth, width), np.float32)
    return SyntheticPair(float_to_uint8(images[0]), float_to_uint8(images[1]), depth, coc, scene)


def make_pair(
    index: int,
    seed: int = 0,
    size: tuple[int, int] = (512, 768),
    noise: float = 0.01,
    config: SceneConfig = SceneConfig(),
) -> SyntheticPair:
    """Pair ``index`` of the synthetic set ``seed`` at ``size = (H, W)``.

    ``noise`` is the largest standard deviation (in [0, 1] units) of the uniform noise added to
    each image independently; each pair draws its own level below it. 0 gives noise-free pairs.
    """
    height, width = size
    if height < 16 or width < 16:
        raise ValueError(f"size must be at least 16 x 16 pixels, got {height} x {width}")
    rng = pair_rng(seed, index)
    scene = sample_scene(rng, (height, width), config)
    return render_scene(scene, rng, noise)
