"""Writes vqa-llm.json: graphs with their input/output names, dtypes and shapes, and sha256 of every file."""

import hashlib
import json
import os

from . import EXPORTER_NAME, EXPORTER_VERSION, FORMAT_VERSION

MANIFEST_NAME = "vqa-llm.json"


def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def write_json(path, value):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2, ensure_ascii=False, sort_keys=False)
        handle.write("\n")


def tensor_spec(name, dtype, shape):
    """One input or output: dtype is 'float32' or 'int64'; shape items are ints or symbolic names."""
    return {"name": name, "dtype": dtype, "shape": list(shape)}


def write_manifest(folder, kind, name, source, graphs, opset):
    """graphs: {graphName: {"file": ..., "inputs": [...], "outputs": [...], optional "variants": {...}}}."""
    import onnx
    import torch

    files = {}
    for root, _dirs, names in os.walk(folder):
        for file_name in sorted(names):
            full = os.path.join(root, file_name)
            relative = os.path.relpath(full, folder).replace(os.sep, "/")
            if relative == MANIFEST_NAME:
                continue
            files[relative] = {"sha256": sha256_of(full), "bytes": os.path.getsize(full)}
    manifest = {
        "format": "vqa-llm-model",
        "formatVersion": FORMAT_VERSION,
        "kind": kind,
        "name": name,
        "source": source,
        "exporter": {
            "name": EXPORTER_NAME,
            "version": EXPORTER_VERSION,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
        },
        "opset": opset,
        "graphs": graphs,
        "files": dict(sorted(files.items())),
    }
    write_json(os.path.join(folder, MANIFEST_NAME), manifest)
    return manifest
