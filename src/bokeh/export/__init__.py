"""Export a trained Glass-Net to ONNX and TFLite for the TFLite GPU delegate, verified.

``python -m bokeh.export`` (:mod:`bokeh.export.pipeline`) chains :mod:`bokeh.export.onnx` (torch
-> ONNX, ONNX Runtime), :mod:`bokeh.export.tflite` (onnx2tf -> TFLite, LiteRT) and
:mod:`bokeh.export.verify` (parity, the op allow-list of :mod:`bokeh.export.gpu_ops`, latency).
"""
