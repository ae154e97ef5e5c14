"""The README's pictures from the shipped reference model: ``python tools/readme_pictures.py``.

``docs/demo.png``: scikit-image's astronaut, coffee and chelsea as ``input | the default render |
tapped on the subject`` (f/1.8); ``docs/controls.png``: the astronaut tapped on her face at f/1.8,
f/4 and f/11, then on the shuttle model (``bokeh.demo.render_controls``); ``docs/subject.png``:
matplotlib's Grace Hopper portrait and scikit-image's coffee cup (no person) as ``input | matte |
render`` with ``subject=auto`` (the default), then ``matte | render`` with ``subject=off``
(``bokeh.demo.subject_rows``). Each tile 400 px wide (the subject picture's 256).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

from bokeh import pretrained
from bokeh.demo import render_controls, subject_rows
from bokeh.evaluate.real import backend_render
from bokeh.render import TorchBackend

DOCS = Path(__file__).resolve().parents[1] / "docs"
SUBJECTS = {"astronaut": (0.44, 0.25), "coffee": (0.45, 0.38), "chelsea": (0.5, 0.6)}  # (x, y) fractions: face, cup, cat


def _tile(image: np.ndarray, width: int = 400) -> np.ndarray:
    height = round(image.shape[0] * width / image.shape[1])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))


def main() -> None:
    shipped = pretrained.weights("reference")
    generator, short_side = shipped.load(), shipped.input.short_side
    backend = TorchBackend(generator)
    render = backend_render(backend, short_side=short_side)  # as bokeh.render renders by default
    rows = []
    for name, tap in SUBJECTS.items():
        image = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
        auto = render(image, None, None)
        tapped = render(image, tap, None)
        rows.append(np.concatenate([_tile(image), _tile(auto), _tile(tapped)], axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(DOCS / "demo.png", optimize=True)
    grid = Image.open(render_controls(generator, Path("/tmp/readme_pictures"), short_side))
    grid.resize((grid.width // 2, grid.height // 2), Image.LANCZOS).save(DOCS / "controls.png", optimize=True)
    subject = [np.concatenate([_tile(tile, 256) for tile in np.split(row, 5, axis=1)], axis=1)
               for row in subject_rows(backend, short_side)]
    Image.fromarray(np.concatenate(subject, axis=0)).save(DOCS / "subject.png", optimize=True)
    print(f"wrote {DOCS / 'demo.png'}, {DOCS / 'controls.png'} and {DOCS / 'subject.png'}")


if __name__ == "__main__":
    main()
