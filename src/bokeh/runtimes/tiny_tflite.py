"""Tiny ``.tflite`` models written directly with the TFLite schema (no TensorFlow needed).

Two uses: probing whether LiteRT's GPU accelerator finds an adapter (:func:`add_model`, one ADD,
which every GPU backend runs), and the negative tests of the GPU check (:func:`gather_nd_model`:
GATHER_ND, which LiteRT 2.3's GPU accelerator refuses with "GATHER_ND: Operation is not supported",
as it does SPACE_TO_BATCH_ND, SCATTER_ND and RFFT2D; ARG_MAX over channels with an int32 output
does run on it, with an int64 output it is refused for the type). The flatbuffers are built with the object API of
the schema bindings that ship with LiteRT (``ai_edge_litert.schema_py_generated``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGNATURE_KEY = "serving_default"


def _model(ops: list[tuple[str, list[int], list[int], object]], tensors: list[tuple[str, tuple[int, ...], str, np.ndarray | None]],
           inputs: list[int], outputs: list[int]) -> bytes:
    """A one-subgraph model: ``ops`` are (builtin op name, input tensor ids, output ids, options);
    ``tensors`` are (name, shape, TensorType name, constant data or None)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    buffers = [schema.BufferT()]  # buffer 0: the empty sentinel every model starts with
    tensor_objects = []
    for name, shape, type_name, data in tensors:
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type = name, list(shape), getattr(schema.TensorType, type_name)
        tensor.buffer = 0
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            buffers.append(buffer)
            tensor.buffer = len(buffers) - 1
        tensor_objects.append(tensor)
    codes, operators = [], []
    for op_name, op_inputs, op_outputs, options in ops:
        code = getattr(schema.BuiltinOperator, op_name)
        if code not in [c.builtinCode for c in codes]:
            op_code = schema.OperatorCodeT()
            op_code.builtinCode, op_code.deprecatedBuiltinCode, op_code.version = code, min(code, 127), 1
            codes.append(op_code)
        operator = schema.OperatorT()
        operator.opcodeIndex = [c.builtinCode for c in codes].index(code)
        operator.inputs, operator.outputs = op_inputs, op_outputs
        if options is not None:
            operator.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            operator.builtinOptions = options
        operators.append(operator)
    subgraph = schema.SubGraphT()
    subgraph.tensors, subgraph.inputs, subgraph.outputs, subgraph.operators = tensor_objects, inputs, outputs, operators
    subgraph.name = "main"
    signature = schema.SignatureDefT()
    signature.signatureKey, signature.subgraphIndex = SIGNATURE_KEY, 0
    signature.inputs, signature.outputs = [_tensor_map(tensors[i][0], i) for i in inputs], [_tensor_map(tensors[i][0], i) for i in outputs]
    model = schema.ModelT()
    model.version, model.description = 3, "bokeh.runtimes.tiny_tflite"
    model.operatorCodes, model.subgraphs, model.buffers, model.signatureDefs = codes, [subgraph], buffers, [signature]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_map(name: str, index: int):
    from ai_edge_litert import schema_py_generated as schema

    tensor_map = schema.TensorMapT()
    tensor_map.name, tensor_map.tensorIndex = name, index
    return tensor_map


def add_model(path: str | Path, height: int = 8, width: int = 8) -> Path:
    """``image + image``: float32 NHWC ``(1, height, width, 3)`` in and out. Returns ``path``."""
    from ai_edge_litert import schema_py_generated as schema

    shape = (1, height, width, 3)
    model = _model([("ADD", [0, 0], [1], schema.AddOptionsT())],
                   [("image", shape, "FLOAT32", None), ("bokeh", shape, "FLOAT32", None)], [0], [1])
    Path(path).write_bytes(model)
    return Path(path)


def gather_nd_model(path: str | Path, height: int = 8, width: int = 8) -> Path:
    """Two pixels picked by constant indices: one GATHER_ND, an op LiteRT's GPU accelerator does not run.

    Shape: ``(1, height, width, 3)`` float32 in; out ``(2, 3)`` float32: ``image[0, 1, 2]`` and
    ``image[0, 3, 4]`` (the pixels at rows 1 and 3, columns 2 and 4). Returns ``path``.
    """
    indices = np.array([[0, 1, 2], [0, 3, 4]], np.int32)
    model = _model(
        [("GATHER_ND", [0, 1], [2], None)],
        [("image", (1, height, width, 3), "FLOAT32", None), ("indices", indices.shape, "INT32", indices),
         ("bokeh", (2, 3), "FLOAT32", None)],
        [0], [2],
    )
    Path(path).write_bytes(model)
    return Path(path)
