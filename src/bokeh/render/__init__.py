"""Render bokeh into photos: ``python -m bokeh.render input=<file|folder> ckpt=<model> out=<folder>``.

* :mod:`bokeh.render.backends`: the model as one callable, whatever the file: a Lightning
  checkpoint (torch, the fast CPU path of :mod:`bokeh.inference`), an ONNX model (ONNX Runtime) or
  a TFLite model (LiteRT on the CPU, or ``accelerator="gpu"``: its GPU accelerator), through the
  runtimes of :mod:`bokeh.runtimes`.
* :mod:`bokeh.render.fit`: how a photo of any size meets the network and comes back at its own
  size: resize to the working resolution, turn a portrait photo for a landscape fixed-size model,
  pad to a multiple of 8 (or to the model's static size), and undo each step on the output.
* :mod:`bokeh.render.files`: files and folders: which inputs, where the outputs go, never
  overwriting an input, atomic writes, unreadable files reported and skipped, progress bar.
* ``python -m bokeh.render`` (:mod:`bokeh.render.__main__`): the command line.

In Python::

    from bokeh.render import load_backend, render_photo, render_image
    backend = load_backend("best.ckpt")            # or .onnx / .tflite
    rendered = render_photo(photo, backend)        # the one road: .image, .matte (used), .layers, .plan
    bokeh = render_image(photo, backend)           # (H, W, 3) uint8 -> (3, H, W) float in [-1, 1]
    # a model that takes the controls: tap at 40 % of the width and 60 % of the height, render f/4
    bokeh = render_image(photo, backend, focus=(0.4, 0.6), aperture=4.0)
    # a model with a matte: the image and the matte at the photo's size ((1, H, W) in [0, 1], 1 = kept)
    bokeh, matte = render_layers(photo, backend)
"""

from bokeh.render.backends import Backend, ExportedBackend, GeneratorBackend, TorchBackend, load_backend
from bokeh.render.fit import (DEFAULT_SHORT_SIDE, SUBJECT_MODES, PixelPoint, Plan, Rendered, plan_for, render_image, render_layers,
                              render_photo, render_to_uint8)
from bokeh.render.files import RenderError, Summary, render_files

__all__ = [
    "Backend",
    "DEFAULT_SHORT_SIDE",
    "ExportedBackend",
    "GeneratorBackend",
    "PixelPoint",
    "Plan",
    "Rendered",
    "RenderError",
    "SUBJECT_MODES",
    "Summary",
    "TorchBackend",
    "load_backend",
    "plan_for",
    "render_files",
    "render_image",
    "render_layers",
    "render_photo",
    "render_to_uint8",
]
