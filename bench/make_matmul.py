"""Writes bench/matmul.onnx: Y = A @ B with symbolic sizes, the onnxruntime MatMul ceiling the benchmark compares against."""

import os

import onnx
from onnx import TensorProto, helper

graph = helper.make_graph(
    [helper.make_node("MatMul", ["A", "B"], ["Y"])],
    "matmul_ceiling",
    [
        helper.make_tensor_value_info("A", TensorProto.FLOAT, ["m", "k"]),
        helper.make_tensor_value_info("B", TensorProto.FLOAT, ["k", "n"]),
    ],
    [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", "n"])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="vqa-llm-bench")
onnx.checker.check_model(model)
onnx.save(model, os.path.join(os.path.dirname(os.path.abspath(__file__)), "matmul.onnx"))
