"""Random layered scenes with known depth, for synthetic bokeh pairs.

A scene is what a camera on a tripod sees: a far background (a mosaic of photographs and patterns,
or one of them), a textured ground plane in perspective (its depth grows towards the horizon, so its
blur changes gradually), objects standing on the ground behind the subject, small bright light
sources behind the subject, the subject itself at the focus distance, and sometimes a near object
in front of it. All sizes come from metres through a pinhole of the lens's focal length, so one
scene looks the same at 256 x 384 and 1024 x 1536 (blur radii scale with the width).

Everything is drawn from one ``numpy.random.Generator``: the same generator state gives the same
scene, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bokeh.data import textures
from bokeh.data.optics import Layer, ThinLens

REFERENCE_WIDTH = 768  # sizes in pixels below are for this width and scale with the image


@dataclass(frozen=True)
class SceneConfig:
    """Ranges the scene sampler draws from (uniform, or log-uniform where marked).

    The defaults follow EBB!'s statistics: one camera and lens (an APS-C sensor behind a 50 mm lens,
    the target at f/1.8 and the input stopped down towards f/16), a subject at the focus distance
    in almost every scene, near the middle of the frame, standing on the ground in perspective, and
    a background far behind it. With the lens fixed, how much a depth is blurred follows from the
    scene itself (the focus distance shows in the subject's size and ground contact), not from a
    random lens the photo cannot reveal.
    """

    focus_m: tuple[float, float] = (0.8, 4.0)  # log-uniform
    f_number: tuple[float, float] = (1.8, 1.8)  # the target's; log-uniform where the bounds differ
    # share of scenes rendered at exactly the reference f/1.8 when f_number is a range (the aperture
    # control's default must stay the best-trained value)
    reference_share: float = 0.0
    focal_mm: tuple[float, float] = (50.0, 50.0)
    sensor_width_mm: float = 22.3  # APS-C, as EBB!'s camera
    max_radius: float = 0.03  # CoC radius cap, as a fraction of the image width
    background_m: tuple[float, float] = (8.0, 80.0)  # log-uniform
    objects: tuple[int, int] = (1, 4)  # behind the subject, inclusive range
    object_near: float = 1.5  # the nearest an object behind the subject stands, in focus distances
    lights: tuple[int, int] = (0, 40)
    subject: float = 0.97  # probabilities
    subject_height: tuple[float, float] = (0.4, 0.95)  # fraction of the frame height
    subject_center: tuple[float, float] = (0.25, 0.75)  # horizontal position of its centre, fraction of the width
    # "photo": the subject is always a photograph; "any": drawn like everything else (photo, gray or
    # procedural), so a texture never tells whether a surface is the subject
    subject_texture: str = "any"
    near: float = 0.25
    ground: float = 0.85
    gamma: float = 4.0  # working space of the renderer: display ** gamma (lights are set for it)
    # the input's aperture diameter as a fraction of the target's (0: a pinhole, everything sharp;
    # EBB!'s f/16 input against its f/1.8 target: 0.11), so far things are slightly soft in the input
    input_aperture: tuple[float, float] = (0.0, 0.1125)


@dataclass
class Scene:
    """Layers on a canvas ``margin`` pixels larger than the frame on each side, and the lens.

    The margin (the largest blur radius, and 2) gives blur near the frame edge content to draw from.
    """

    layers: list[Layer]
    lens: ThinLens
    size: tuple[int, int]
    margin: int
    max_radius: float
    gamma: float = 4.0
    input_aperture: float = 0.0  # the input's aperture relative to the lens's (see SceneConfig)

    @property
    def canvas(self) -> tuple[int, int]:
        return self.size[0] + 2 * self.margin, self.size[1] + 2 * self.margin


def sample_scene(rng: np.random.Generator, size: tuple[int, int], config: SceneConfig = SceneConfig()) -> Scene:
    """Draw one random scene for a frame of ``size = (H, W)`` pixels."""
    height, width = size
    lens = ThinLens(
        focal_mm=float(rng.uniform(*config.focal_mm)),
        f_number=_f_number(rng, config),
        focus_m=float(_log_uniform(rng, config.focus_m)),
        sensor_width_mm=config.sensor_width_mm,
    )
    max_radius = config.max_radius * width
    margin = int(math.ceil(max_radius)) + 2
    canvas = (height + 2 * margin, width + 2 * margin)
    f_px = lens.focal_mm / lens.sensor_width_mm * width  # pinhole focal length in pixels
    horizon = margin + height * rng.uniform(0.2, 0.55)  # canvas row
    camera_height = rng.uniform(0.6, 1.8)
    far = max(_log_uniform(rng, config.background_m), 2.5 * lens.focus_m)
    scale = width / REFERENCE_WIDTH

    def contact_row(depth: float) -> float:
        return horizon + camera_height * f_px / depth

    layers = [Layer(_background(rng, canvas), np.ones(canvas, np.float32), far, name="background")]
    has_ground = rng.uniform() < config.ground
    if has_ground:
        ground = _ground(rng, canvas, horizon, camera_height, f_px, far)
        if ground is not None:
            layers.append(ground)

    for _ in range(int(rng.integers(config.objects[0], config.objects[1] + 1))):
        if config.object_near * lens.focus_m >= 0.9 * far:
            break
        depth = _log_uniform(rng, (config.object_near * lens.focus_m, 0.9 * far))
        h = min(rng.uniform(0.3, 2.5) * f_px / depth, rng.uniform(0.2, 0.7) * height)
        w = h * rng.uniform(0.3, 1.6)
        base = contact_row(depth) if has_ground and rng.uniform() < 0.7 else rng.uniform(0, canvas[0])
        left = rng.uniform(-w / 2, canvas[1] - w / 2)
        layers += _sprite(canvas, _blob(rng, h, w), textures.any_patch, rng, base - h, left, depth, "object")

    layers += _lights(rng, canvas, lens, width, max_radius, far, scale, horizon, config)

    if rng.uniform() < config.subject:
        h = rng.uniform(*config.subject_height) * height
        w = h * rng.uniform(0.35, 0.9)
        base = contact_row(lens.focus_m) if has_ground else canvas[0]
        base = min(base, canvas[0] + rng.uniform(0, 0.3) * h)
        left = margin + rng.uniform(*config.subject_center) * width - w / 2
        shape = _person(rng, h, w) if rng.uniform() < 0.5 else _blob(rng, h, w)
        paint = {"photo": textures.photo_patch, "any": textures.any_patch}[config.subject_texture]
        layers += _sprite(canvas, shape, paint, rng, base - h, left, lens.focus_m, "subject")

    if rng.uniform() < config.near:
        depth = max(lens.focus_m * rng.uniform(0.3, 0.7), 2.0 * lens.focal_mm / 1000.0)
        h = rng.uniform(0.3, 0.8) * height
        w = min(h * rng.uniform(0.5, 1.5), 0.9 * canvas[1])
        side = int(rng.integers(4))  # enter the frame from the left, right, bottom or top
        if side < 2:
            top, left = rng.uniform(0, canvas[0] - h), (-w * 0.4, canvas[1] - w * 0.6)[side]
        else:
            top, left = (canvas[0] - h * 0.6, -h * 0.4)[side - 2], rng.uniform(0, canvas[1] - w)
        layers += _sprite(canvas, _blob(rng, h, w), textures.any_patch, rng, top, left, depth, "near")

    input_aperture = float(rng.uniform(*config.input_aperture)) if config.input_aperture[1] > 0 else 0.0
    # config.input_aperture is relative to an f/1.8 lens (f/16: 0.1125); the same input f-number is a
    # larger fraction of a narrower lens's aperture (exactly the drawn value at f/1.8)
    input_aperture = min(1.0, input_aperture * (lens.f_number / 1.8)) if lens.f_number != 1.8 else input_aperture
    return Scene(layers, lens, size, margin, max_radius, config.gamma, input_aperture)


def _f_number(rng: np.random.Generator, config: SceneConfig) -> float:
    """The target's f-number: one uniform draw for a fixed value (the sets made before the aperture
    control keep their pixels), log-uniform over a range, f/1.8 in ``reference_share`` of scenes."""
    low, high = config.f_number
    if low == high:
        return float(rng.uniform(low, high))
    value = _log_uniform(rng, (low, high))
    return 1.8 if config.reference_share > 0 and rng.uniform() < config.reference_share else value


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _background(rng: np.random.Generator, canvas: tuple[int, int]) -> np.ndarray:
    """A mosaic of patches (a wall of pictures, shelves, facades), or one photo, or one pattern."""
    draw = rng.uniform()
    if draw < 0.25:
        return textures.photo_patch(rng, canvas)
    if draw < 0.4:
        return textures.procedural_patch(rng, canvas)
    image = np.empty(canvas + (3,), np.float32)
    for y0, y1, x0, x1 in _guillotine(rng, (0, canvas[0], 0, canvas[1]), min(canvas) // 5):
        image[y0:y1, x0:x1] = textures.any_patch(rng, (y1 - y0, x1 - x0))
    return image


def _guillotine(rng: np.random.Generator, box: tuple[int, int, int, int], smallest: int) -> list:
    """Split a box by random straight cuts until pieces are about ``smallest`` pixels."""
    y0, y1, x0, x1 = box
    h, w = y1 - y0, x1 - x0
    if max(h, w) < 2 * smallest or (rng.uniform() < 0.15 and max(h, w) < 4 * smallest):
        return [box]
    if h > w:
        cut = int(rng.uniform(y0 + smallest, y1 - smallest))
        return _guillotine(rng, (y0, cut, x0, x1), smallest) + _guillotine(rng, (cut, y1, x0, x1), smallest)
    cut = int(rng.uniform(x0 + smallest, x1 - smallest))
    return _guillotine(rng, (y0, y1, x0, cut), smallest) + _guillotine(rng, (y0, y1, cut, x1), smallest)


def _ground(rng, canvas, horizon: float, camera_height: float, f_px: float, far: float) -> Layer | None:
    """A textured plane below the camera, in perspective, meeting the background at ``far``.

    Depth of canvas row ``y`` is ``camera_height * f_px / (y - horizon)``, so the CoC radius is
    linear in the row. The texture is sampled bilinearly from a mip pyramid (no aliasing far away),
    and fades into a haze colour with distance.
    """
    top_exact = horizon + camera_height * f_px / far
    top = int(math.floor(top_exact))
    if top >= canvas[0]:
        return None
    top = max(top, 0)
    rows = np.arange(top, canvas[0], dtype=np.float64) + 0.5
    depth = np.minimum(camera_height * f_px / np.maximum(rows - horizon, 1e-6), far)  # (n,)
    texels_per_m = rng.uniform(100.0, 400.0)
    texture = textures.gray_texture(rng)
    pyramid = [texture]
    while min(pyramid[-1].shape[:2]) > 8:
        pyramid.append(_half(pyramid[-1]))
    step = np.maximum(depth / f_px, depth**2 / (camera_height * f_px)) * texels_per_m  # texels per pixel
    level = np.clip(np.floor(np.log2(np.maximum(step, 1.0))), 0, len(pyramid) - 1).astype(int)
    cx = canvas[1] / 2 + rng.uniform(-1e4, 1e4)  # random texture offset along x
    x = np.arange(canvas[1], dtype=np.float64) + 0.5 - cx
    color = np.empty((len(rows), canvas[1], 3), np.float32)
    for lv in np.unique(level):
        sel = np.nonzero(level == lv)[0]
        d = depth[sel, None]
        v = d * texels_per_m / 2**lv
        u = x[None] * d / f_px * texels_per_m / 2**lv
        color[sel] = _bilinear_wrap(pyramid[lv], v, u)
    haze = rng.uniform(0.5, 0.9, 3).astype(np.float32)
    fade = (1.0 - np.exp(-depth / rng.uniform(60.0, 400.0)))[:, None, None].astype(np.float32)
    color = color * (1 - fade) + haze * fade
    alpha = np.ones((len(rows), canvas[1]), np.float32)
    alpha[0] = np.clip(top + 1 - top_exact, 0.0, 1.0) if top_exact > 0 else 1.0
    return Layer(color, alpha, np.repeat(depth[:, None], canvas[1], 1).astype(np.float32), top, 0, "ground")


def _half(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    return image[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean((1, 3))


def _bilinear_wrap(image: np.ndarray, v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample a tiling texture bilinearly, wrapping around: one texture row ``v`` per output row.

    Shape:
        image: ``(h, w, 3)``; v: ``(n, 1)`` rows; u: ``(n, W)`` columns; returns ``(n, W, 3)``.
    """
    h, w = image.shape[:2]
    v, u = v - 0.5, u - 0.5
    v0, u0 = np.floor(v), np.floor(u)
    fv, fu = (v - v0).astype(np.float32)[..., None], (u - u0).astype(np.float32)[..., None]
    v0 = v0[:, 0].astype(np.int64) % h
    lines = image[v0] * (1 - fv) + image[(v0 + 1) % h] * fv  # (n, w, 3): blend two texture rows
    u0 = u0.astype(np.int64) % w
    left = np.take_along_axis(lines, u0[..., None], axis=1)
    right = np.take_along_axis(lines, ((u0 + 1) % w)[..., None], axis=1)
    return left * (1 - fu) + right * fu


def _blob(rng: np.random.Generator, h: float, w: float) -> np.ndarray:
    """A smooth random shape filling an ``h`` x ``w`` box: a superellipse with a wavy rim.

    The signed distance to the rim is computed on a grid of at most 128 px and enlarged (it is
    smooth, so bilinear enlargement is accurate); the rim is then anti-aliased at full size.

    Shape:
        returns ``(ceil(h), ceil(w))`` ``float32`` coverage in [0, 1].
    """
    hi, wi = max(1, int(math.ceil(h))), max(1, int(math.ceil(w)))
    step = max(1.0, max(hi, wi) / 128.0)
    gh, gw = max(2, int(math.ceil(hi / step))), max(2, int(math.ceil(wi / step)))
    yy = (np.arange(gh, dtype=np.float32)[:, None] + 0.5) / gh * 2 - 1
    xx = (np.arange(gw, dtype=np.float32)[None] + 0.5) / gw * 2 - 1
    p = rng.uniform(1.6, 4.0)
    rho = (np.abs(yy) ** p + np.abs(xx) ** p) ** (1 / p)
    theta = np.arctan2(yy, xx)
    rim = np.full_like(theta, 0.92)
    for k in range(2, 6):
        rim += rng.uniform(0.0, 0.12) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    distance = ((rim - rho) * (min(h, w) / 2)).astype(np.float32)  # in full-size pixels
    if (gh, gw) != (hi, wi):
        distance = np.asarray(Image.fromarray(distance, "F").resize((wi, hi), Image.BILINEAR))
    return np.clip(distance + 0.5, 0.0, 1.0).astype(np.float32)


def _person(rng: np.random.Generator, h: float, w: float) -> np.ndarray:
    """A head-and-shoulders silhouette in an ``h`` x ``w`` box (union of a head and a torso)."""
    hi, wi = max(1, int(math.ceil(h))), max(1, int(math.ceil(w)))
    yy = np.arange(hi, dtype=np.float32)[:, None] + 0.5
    xx = np.arange(wi, dtype=np.float32)[None] + 0.5
    head_r = rng.uniform(0.14, 0.2) * h
    head_cx, head_cy = w / 2 + rng.uniform(-0.1, 0.1) * w, head_r * 1.05
    head = (head_r - np.hypot((xx - head_cx) / 0.85, yy - head_cy)) + 0.5
    neck = head_cy + head_r * 0.8
    torso_w = w / 2
    p = rng.uniform(2.5, 5.0)
    ty = np.clip((yy - neck) / (h - neck), 0, None)  # 0 at the shoulders
    nx = np.abs(xx - w / 2) / torso_w
    ny = np.abs(ty * 2 - 1)
    torso = (1 - (nx**p + np.where(ty < 0.5, ny, 0) ** p) ** (1 / p)) * torso_w + 0.5
    torso = np.where(yy >= neck - head_r * 0.3, torso, -1.0)
    return np.clip(np.maximum(head, torso), 0.0, 1.0).astype(np.float32)


def _sprite(canvas, alpha: np.ndarray, paint, rng, top: float, left: float, depth: float, name: str) -> list[Layer]:
    """A sprite at (``top``, ``left``), cut to the canvas; ``[]`` if nothing is left.

    ``paint`` is the sprite's ``(h, w, 3)`` colour, or a texture function ``paint(rng, shape)``
    called for the part inside the canvas only.
    """
    top, left = int(round(top)), int(round(left))
    h, w = alpha.shape
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + h, canvas[0]), min(left + w, canvas[1])
    if y1 - y0 < 2 or x1 - x0 < 2:
        return []
    alpha = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
    if alpha.max() <= 0:
        return []
    if callable(paint):
        color = paint(rng, alpha.shape)
    else:
        color = np.ascontiguousarray(paint[y0 - top : y1 - top, x0 - left : x1 - left])
    return [Layer(color, np.ascontiguousarray(alpha), float(depth), y0, x0, name)]


def _lights(rng, canvas, lens: ThinLens, width: int, max_radius: float, far: float, scale: float, horizon: float, config: SceneConfig) -> list[Layer]:
    """Small lights brighter than white, behind the focal plane: a string of them, or a scatter.

    Each light's display value is set so that, spread over its CoC disc, the disc is about as
    bright as white: a small highlight in the sharp image, a bright disc in the bokeh image.
    """
    count = int(rng.integers(config.lights[0], config.lights[1] + 1))
    if count == 0 or 1.5 * lens.focus_m >= far:
        return []
    layers = []
    string = rng.uniform() < 0.5
    y_mid, amp, phase, freq = rng.uniform(0.1, 0.6) * canvas[0], rng.uniform(0.02, 0.15) * canvas[0], rng.uniform(0, 6.3), rng.uniform(0.5, 3)
    depth_string = _log_uniform(rng, (1.5 * lens.focus_m, 0.99 * far))
    tint = np.array([1.0, rng.uniform(0.55, 1.0), rng.uniform(0.3, 1.0)])[rng.permutation(3)]
    for _ in range(count):
        if string:
            x = rng.uniform(0, canvas[1])
            y = y_mid + amp * math.sin(phase + freq * 2 * math.pi * x / canvas[1])
            depth = depth_string
        else:
            x, y = rng.uniform(0, canvas[1]), rng.uniform(0, max(horizon, 0.3 * canvas[0]))
            depth = _log_uniform(rng, (1.5 * lens.focus_m, 0.99 * far))
            tint = np.array([1.0, rng.uniform(0.55, 1.0), rng.uniform(0.3, 1.0)])[rng.permutation(3)]
        size = rng.uniform(0.6, 2.0) * scale
        coc = min(abs(lens.coc_radius(depth, width)), max_radius)
        value = rng.uniform(0.9, 1.6) * max(coc / size, 1.0) ** (2 / config.gamma)
        reach = int(math.ceil(size)) + 1
        yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1].astype(np.float32)
        cy, cx = int(round(y)), int(round(x))
        alpha = np.clip(size + 0.5 - np.hypot(yy - (y - cy), xx - (x - cx)), 0.0, 1.0)
        color = np.broadcast_to((value * tint).astype(np.float32), alpha.shape + (3,))
        layers += _sprite(canvas, alpha.astype(np.float32), color, rng, cy - reach, cx - reach, depth, "light")
    return layers
