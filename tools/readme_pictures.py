"""The README's pictures from the shipped reference model: ``python tools/readme_pictures.py``.

``docs/demo.png``: scikit-image's astronaut, coffee and chelsea as ``input | the model's own guess |
tapped on the subject`` (f/1.8); ``docs/controls.png``: the astronaut tapped on her face at f/1.8,
f/4 and f/11, then on the shuttle model (``bokeh.demo.render_controls``). Each tile 400 px wide.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from bokeh import pretrained
from bokeh.demo import render_controls
from bokeh.render import TorchBackend, render_to_uint8

DOCS = Path(__file__).resolve().parents[1] / "docs"
SUBJECTS = {"astronaut": (0.44, 0.25), "coffee": (0.45, 0.38), "chelsea": (0.5, 0.6)}  # (x, y) fractions: face, cup, cat


def _tile(image: np.ndarray, width: int = 400) -> np.ndarray:
    height = round(image.shape[0] * width / image.shape[1])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


def main() -> None:
    generator = pretrained.load("reference")
    short_side = pretrained.meta("reference")["input"]["short_side"]
    backend = TorchBackend(generator)
    rows = []
    for name, tap in SUBJECTS.items():
        image = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        auto = render_to_uint8(image, backend, short_side)
        tapped = render_to_uint8(image, backend, short_side, focus=tap)
        rows.append(np.concatenate([_tile(image), _tile(auto), _tile(tapped)], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(DOCS / "demo.png", optimize=True)
    grid = Image.open(render_controls(generator, Path("/tmp/readme_pictures"), short_side))
    grid.resize((grid.width // 2, grid.height // 2), Image.LANCZOS).save(DOCS / "controls.png", optimize=True)
    print(f"wrote {DOCS / 'demo.png'} and {DOCS / 'controls.png'}")


if __name__ == "__main__":
    main()
