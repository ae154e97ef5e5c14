"""Export a trained Glass-Net to ONNX and TFLite for the TFLite GPU delegate, verified.

``python -m bokeh.export`` (:mod:`bokeh.export.pipeline`) chains :mod:`bokeh.export.onnx` (torch
-> ONNX), :mod:`bokeh.export.tflite` (onnx2tf -> TFLite) and :mod:`bokeh.export.verify` (parity, the
op allow-list of :mod:`bokeh.export.gpu_ops`, latency), running every model through
:mod:`bokeh.runtimes` (torch, ONNX Runtime, LiteRT on the CPU and on its GPU accelerator).
"""
