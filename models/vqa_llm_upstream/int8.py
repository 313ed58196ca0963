"""int8: the exporter's dynamically quantized graphs (`models/export.py --int8`), run for real.

Copies of the committed tiny test models (test/fixtures/models/tiny-blip, tiny-vle) get int8 variants from the
exporter's own quantization code (`blip.quantize_graphs`, `vle.quantize_graphs`: onnxruntime's `quantize_dynamic`,
int8 weights, per tensor) through `make_test_models.add_int8_variants`, which also rewrites the manifest, as
`models/export.py --int8` and `make_test_models.py --int8` do. Written per model folder:

  <model>/            the folder with onnx/*.int8.onnx beside onnx/*.onnx and `variants.int8` in vqa-llm.json
  summary.json        per graph: bytes of both files, op-type counts of both graphs (read with onnx), how many
                      products with a stored weight each has (MatMul, Gemm), and onnxruntime Python's outputs of the int8 graph
                      for the first reference input of test/fixtures/reference/<model>.json, so that the test can
                      tell quantization error (int8 against fp32) from runtime error (Node against Python, int8)

test/upstream/int8.test.ts loads the folders with the runtime's int8 option and compares int8 with fp32.
`base` changes nothing here: bench/int8.ts measures int8 on the full-size stand-ins.
"""

import collections
import json
import os
import shutil

import numpy as np

MODELS = ("tiny-blip", "tiny-vle")
QUANTIZED_OPS = ("MatMulInteger", "ConvInteger", "DynamicQuantizeLinear", "DequantizeLinear")


def op_counts(path):
    """Op-type counts, and the products with a stored weight (MatMul or Gemm with B a weight), which dynamic
    quantization turns into MatMulInteger: `direct` where B is an initializer or Constant, `viaIdentity` where the
    exporter routes a shared weight through an Identity (DeBERTa's relative-position projections reuse the
    query/key weights), which onnxruntime's quantizer leaves in float."""
    import onnx

    graph = onnx.load(path).graph
    weights = {tensor.name for tensor in graph.initializer}
    weights |= {node.output[0] for node in graph.node if node.op_type == "Constant"}
    identities = {node.output[0] for node in graph.node if node.op_type == "Identity" and node.input[0] in weights}
    products = [node for node in graph.node if node.op_type in ("MatMul", "Gemm")]
    counts = collections.Counter(node.op_type for node in graph.node)
    return dict(sorted(counts.items())), {
        "direct": sum(1 for node in products if node.input[1] in weights),
        "viaIdentity": sum(1 for node in products if node.input[1] in identities),
    }


def _tensor(entry):
    return np.asarray(entry["data"], dtype=np.float32).reshape(entry["dims"])


def python_outputs(folder, graphs, reference):
    """onnxruntime Python's int8 outputs for the reference's first input (the image graphs and VLE's fusion)."""
    import onnxruntime

    def run(name, feeds):
        path = os.path.join(folder, graphs[name]["variants"]["int8"])
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        output = session.run(None, feeds)[0]
        return {"dims": list(output.shape), "data": [float(value) for value in output.ravel()]}

    first = reference["inputs"][0]
    pixels = {"pixel_values": _tensor(first["pixelValues"])}
    if "visionEncoder" in graphs:
        return {"visionEncoder": run("visionEncoder", pixels)}
    case = next(case for case in reference["cases"] if case["input"] == 0)
    fusion_feeds = {
        "input_ids": np.asarray([case["inputIds"]], dtype=np.int64),
        "attention_mask": np.asarray([case["attentionMask"]], dtype=np.int64),
        "image_embeds": _tensor(first["imageEmbeds"]),
    }
    return {"imageEncoder": run("imageEncoder", pixels), "fusion": {**run("fusion", fusion_feeds),
                                                                    "question": case["question"]}}


def make(out, repo, base=False, log=print):
    from make_test_models import add_int8_variants

    summary = {}
    for model in MODELS:
        folder = os.path.join(out, model)
        shutil.copytree(os.path.join(repo, "test", "fixtures", "models", model), folder)
        manifest = add_int8_variants(folder, log=log)
        graphs = {}
        for name, graph in manifest["graphs"].items():
            fp32_ops, fp32_weight_matmuls = op_counts(os.path.join(folder, graph["file"]))
            int8_ops, int8_weight_matmuls = op_counts(os.path.join(folder, graph["variants"]["int8"]))
            graphs[name] = {
                "fp32": {"file": graph["file"], "bytes": manifest["files"][graph["file"]]["bytes"], "ops": fp32_ops,
                         "weightProducts": fp32_weight_matmuls},
                "int8": {"file": graph["variants"]["int8"],
                         "bytes": manifest["files"][graph["variants"]["int8"]]["bytes"], "ops": int8_ops,
                         "weightProducts": int8_weight_matmuls},
            }
            log(f"{model} {name}: {graphs[name]['fp32']['bytes']} -> {graphs[name]['int8']['bytes']} bytes, "
                f"weight products {fp32_weight_matmuls} -> {int8_weight_matmuls} left in float, "
                + ", ".join(f"{op} {int8_ops[op]}" for op in QUANTIZED_OPS if op in int8_ops))
        with open(os.path.join(repo, "test", "fixtures", "reference", f"{model}.json"), encoding="utf-8") as handle:
            reference = json.load(handle)
        summary[model] = {"graphs": graphs, "pythonInt8": python_outputs(folder, manifest["graphs"], reference)}
    import onnxruntime

    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump({"onnxruntime": onnxruntime.__version__, "models": summary}, handle)
        handle.write("\n")
