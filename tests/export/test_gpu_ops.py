"""The GPU-delegate allow-list and the op reader: they must be able to say no."""

from collections import Counter

import pytest

from bokeh.export.gpu_ops import GPU_DELEGATE_OPS, REDUCTIONS
from bokeh.export.verify import gpu_op_problems, tflite_ops

pytestmark = pytest.mark.export


def _schema_op_names() -> set[str]:
    from ai_edge_litert import schema_py_generated as schema

    return {name for name in vars(schema.BuiltinOperator) if not name.startswith("_")}


def test_allow_list_names_are_real_tflite_ops():
    """A typo in the allow-list would silently never match."""
    assert GPU_DELEGATE_OPS <= _schema_op_names(), GPU_DELEGATE_OPS - _schema_op_names()
    assert REDUCTIONS <= _schema_op_names()


def test_allow_list_has_no_reduction_and_has_what_glassnet_needs():
    assert not GPU_DELEGATE_OPS & {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "CUMSUM"}
    assert {"CONV_2D", "TRANSPOSE_CONV", "AVERAGE_POOL_2D", "RSQRT", "TANH", "CONCATENATION", "DEQUANTIZE"} <= GPU_DELEGATE_OPS
    assert not {"TOPK_V2", "ARG_MAX", "CUSTOM"} & GPU_DELEGATE_OPS


def test_problems_name_the_op_and_the_reason():
    ops = Counter({"CONV_2D": 3, "MEAN": 2, "TOPK_V2": 1, "CUSTOM:FlexErf": 1, "CUSTOM:MyOp": 1})
    problems = gpu_op_problems(ops)
    assert len(problems) == 4
    text = "\n".join(problems)
    assert "MEAN x2: a reduction" in text
    assert "TOPK_V2 x1: not implemented by the TFLite GPU delegate" in text
    assert "CUSTOM:FlexErf x1: a Flex" in text
    assert "CUSTOM:MyOp x1: a custom op" in text
    assert gpu_op_problems(Counter({"CONV_2D": 1, "AVERAGE_POOL_2D": 2})) == []


def _tiny_tflite(tmp_path, name, body):
    """A real .tflite file from a tf.function on a (1, 8, 8, 4) input."""
    import tensorflow as tf

    fn = tf.function(body, input_signature=[tf.TensorSpec((1, 8, 8, 4), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(converter.convert())
    return path


def test_reader_and_check_reject_a_model_with_mean(tmp_path):
    import tensorflow as tf

    path = _tiny_tflite(tmp_path, "mean", lambda x: x - tf.reduce_mean(x, axis=[1, 2], keepdims=True))
    ops = tflite_ops(path)
    assert ops["MEAN"] == 1
    assert any(p.startswith("MEAN") for p in gpu_op_problems(ops))


def test_reader_and_check_reject_a_model_with_topk(tmp_path):
    import tensorflow as tf

    path = _tiny_tflite(tmp_path, "topk", lambda x: tf.math.top_k(tf.reshape(x, (1, 256)), k=3).values)
    ops = tflite_ops(path)
    assert ops["TOPK_V2"] == 1
    assert any(p.startswith("TOPK_V2") for p in gpu_op_problems(ops))


def test_reader_and_check_accept_an_average_pool_model(tmp_path):
    import tensorflow as tf

    path = _tiny_tflite(tmp_path, "pool", lambda x: tf.nn.relu(x - tf.nn.avg_pool2d(x, 8, 8, "VALID")))
    ops = tflite_ops(path)
    assert ops["AVERAGE_POOL_2D"] == 1 and "MEAN" not in ops
    assert gpu_op_problems(ops) == []


def test_reader_refuses_a_file_that_is_not_tflite(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        tflite_ops(path)
