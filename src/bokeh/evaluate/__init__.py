"""Evaluation, one wing: each benchmark scores what :func:`bokeh.render.render_photo` renders.

* :mod:`bokeh.evaluate.synthetic`: the validation pairs of a datamodule (synthetic scenes, EBB!),
  with the identity, Gaussian-blur and oracle-blur baselines;
* :mod:`bokeh.evaluate.real`: real photo pairs (an f/16 input, wide-aperture targets);
* :mod:`bokeh.evaluate.portraits`: portraits with person masks (matte IoU, detail kept);
* ``python -m bokeh.evaluate`` (:mod:`bokeh.evaluate.__main__`): one command for the three.

Importing the package loads none of them: each is imported where it is used.
"""
