"""BGGAN (Bokeh-Glass GAN) in PyTorch Lightning, exported to TFLite for the GPU delegate.

Import name ``bokeh``; distribution name ``bggan-bokeh`` (``bokeh`` on PyPI is the plotting
library: install this project into its own virtual environment).
"""

__version__ = "0.1.0"
