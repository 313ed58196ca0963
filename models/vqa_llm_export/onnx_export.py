"""One call into torch.onnx.export for both families, on every torch the exporter supports.

torch 2.9 made the dynamo-based exporter the default; it needs onnxscript and handles the exporter's `dynamic_axes`
differently. The graphs, their names and their dynamic axes are defined for the TorchScript-based exporter, which
torch 1.13 (Debian) uses by default and newer torch keeps behind `dynamo=False`.
"""

import inspect
import os
import tempfile

import torch

# Graphs with more weight bytes than this keep them in NAME.onnx.data. ONNX protobufs cannot exceed 2 GiB, but the
# low figure is for the runtime: onnxruntime maps an external data file instead of holding a copy of the weights that
# sit inside the protobuf (VLE base: 1.4 GiB RSS after loading instead of 2.0 GiB), and the runtime splits the fusion
# graph into its image-only part and the rest (src/runtime/fusion-split.ts) by reading the .onnx, which is cheap
# only when the weights are not inside it.
EXTERNAL_DATA_THRESHOLD = 64 * 1024 * 1024


def _export_keywords():
    parameters = inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in parameters else {}


EXPORT_KEYWORDS = _export_keywords()


def export_torchscript(module, args, path, **options):
    """torch.onnx.export with the TorchScript-based exporter."""
    torch.onnx.export(module, args, path, **options, **EXPORT_KEYWORDS)


def export_graph(module, args, path, opset, input_names, output_names, dynamic_axes):
    """torch.onnx.export into a scratch folder, then NAME.onnx at path, plus NAME.onnx.data over the threshold."""
    import onnx

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as scratch:
        scratch_path = os.path.join(scratch, "graph.onnx")
        with torch.no_grad():
            export_torchscript(
                module,
                args,
                scratch_path,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
            )
        graph = onnx.load(scratch_path)  # also pulls in per-tensor files torch writes for graphs over 2 GB
        data_name = os.path.basename(path) + ".data"
        for stale in (path, path + ".data"):
            if os.path.exists(stale):
                os.remove(stale)
        # Sum the weights rather than ask protobuf for ByteSize, which fails on messages over 2 GB.
        weight_bytes = sum(len(tensor.raw_data) for tensor in graph.graph.initializer)
        if weight_bytes > EXTERNAL_DATA_THRESHOLD:
            onnx.save_model(
                graph, path, save_as_external_data=True, all_tensors_to_one_file=True, location=data_name,
                size_threshold=1024,
            )
            _same_mode(path + ".data", path)
            onnx.checker.check_model(path)
        else:
            onnx.checker.check_model(graph)
            onnx.save_model(graph, path)


def quantize_graph(source, target):
    """Dynamic int8 quantization of source into target, its weights external when the source's are."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    large = os.path.exists(source + ".data")
    for stale in (target, target + ".data"):
        if os.path.exists(stale):
            os.remove(stale)
    quantize_dynamic(source, target, weight_type=QuantType.QInt8, use_external_data_format=large)
    if os.path.exists(target + ".data"):
        _same_mode(target + ".data", target)


def _same_mode(data_path, graph_path):
    """onnx and onnxruntime create external data files private (0600); give them the graph file's mode."""
    os.chmod(data_path, os.stat(graph_path).st_mode & 0o777)
