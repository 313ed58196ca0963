"""One call into torch.onnx.export for both families, on every torch the exporter supports.

torch 2.9 made the dynamo-based exporter the default; it needs onnxscript and handles the exporter's `dynamic_axes`
differently. The graphs, their names and their dynamic axes are defined for the TorchScript-based exporter, which
torch 1.13 (Debian) uses by default and newer torch keeps behind `dynamo=False`.
"""

import inspect

import torch


def _export_keywords():
    parameters = inspect.signature(torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in parameters else {}


EXPORT_KEYWORDS = _export_keywords()


def export_torchscript(module, args, path, **options):
    """torch.onnx.export with the TorchScript-based exporter."""
    torch.onnx.export(module, args, path, **options, **EXPORT_KEYWORDS)
