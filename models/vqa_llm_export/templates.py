"""Weight-less graph templates: the exporter's graphs with every checkpoint tensor left as external data.

A template (docs/templates.md) lets the TypeScript converter build a model folder from an upstream checkpoint
without Python: the graph STRUCTURE comes from here, made by the exporter's own modules and graph code
(blip.export_graphs, vle.export_graphs: same wrappers, input/output names, dynamic axes, opset), and the converter
only writes the weights. Differences from a normal export, each needed to keep the initializers addressable:

  - do_constant_folding=False, so that no weight is folded into an anonymous initializer (Linear weights then go
    through a Transpose node that onnxruntime folds itself at session start);
  - export_params=False with keep_initializers_as_inputs=True, so that the TorchScript exporter neither writes
    weight bytes nor runs its deduplication pass (which merges initializers of equal value, e.g. every LayerNorm's
    ones, under one name); the parameter inputs are then turned back into initializers here;
  - parameters are never initialised (torch.empty), so that a 900M-parameter model costs neither the time of
    randn nor resident memory for pages tracing only reads.

Every initializer that holds a checkpoint parameter is named after the model's state-dict key, carries no bytes
(data_location EXTERNAL, location "<graph file>.data", offset and length of the template's own shapes laid out at
64-byte-aligned offsets) and is listed in template.json with the checkpoint keys it is read from (`sources`: the
loaders' aliases, first present wins). Buffers computed in __init__ (position ids, DeBERTa's relative-position
tables) stay inline. Dims tied to a `variable` config path (vocabulary size, number of answer labels) are found by
rebuilding the model with that value changed, not by a hand-written list.
"""

import contextlib
import copy
import io
import json
import math
import os
import shutil
import tempfile

import torch

from . import blip, vle
from .manifest import write_json
from .onnx_export import export_torchscript

FORMAT = "vqa-llm-template/1"
ALIGNMENT = 64
FAMILIES = ("blip", "vle")

# Config paths (dotted, in the completed config) that decide a graph's structure. Paths missing from a config are
# left out of its template (e.g. DeBERTa's optional attention_head_size).
STRUCTURAL = {
    "blip": [
        *(f"vision_config.{key}" for key in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
            "image_size", "patch_size", "hidden_act", "layer_norm_eps")),
        *(f"text_config.{key}" for key in (
            "hidden_size", "encoder_hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "max_position_embeddings", "hidden_act", "layer_norm_eps")),
    ],
    "vle": [
        *(f"vision_config.{key}" for key in (
            "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_channels",
            "image_size", "patch_size", "hidden_act", "layer_norm_eps")),
        *(f"text_config.{key}" for key in (
            "hidden_size", "embedding_size", "attention_head_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
            "relative_attention", "max_relative_positions", "position_biased_input", "pos_att_type",
            "position_buckets", "norm_rel_ebd", "share_att_key", "conv_kernel_size", "conv_groups", "conv_act")),
        "num_token_types", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
        "hidden_act", "layer_norm_eps",
    ],
}
# Config paths a checkpoint may change (fine-tunes): the tensors and graph-output dims tied to them are resized.
VARIABLE = {
    "blip": ["text_config.vocab_size"],
    "vle": ["num_labels", "text_config.vocab_size"],
}
KINDS = {"blip": blip.KIND, "vle": vle.KIND}


# ----------------------------------------------------------------------------------------------------------------
# Configs


def get_path(config, path):
    value = config
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


def has_path(config, path):
    try:
        get_path(config, path)
        return True
    except KeyError:
        return False


def completed_config(family, raw):
    """The config.json the exporter writes for `raw` (an upstream config.json, already adjusted as the loaders do)."""
    if family == "blip":
        return blip.complete_config(raw)
    return vle.VLEConfig(raw).to_export_dict()


def _with_variable(family, raw, path, value):
    """`raw` with one variable set (raw configs, so that completion still applies)."""
    raw = copy.deepcopy(raw)
    if family == "vle" and path == "num_labels":
        raw["id2label"] = {str(index): f"label {index}" for index in range(value)}
        raw["label2id"] = {f"label {index}": index for index in range(value)}
        raw.pop("num_labels", None)
        return raw
    if family == "blip" and path == "text_config.vocab_size":
        raw.setdefault("text_config", {})["vocab_size"] = value
        return raw
    if family == "vle" and path == "text_config.vocab_size":
        raw.setdefault("text_config", {})["vocab_size"] = value
        return raw
    raise ValueError(f"no rule to set {path} in a {family} config")


def defaults(family):
    """The exporter's config completion tables, so that the converter completes a config as Python does."""
    if family == "blip":
        return {"top": blip.TOP_DEFAULTS, "text": blip.TEXT_DEFAULTS, "vision": blip.VISION_DEFAULTS}
    return {
        "vision": vle.CLIP_VISION_DEFAULTS,
        "text": vle.DEBERTA_V2_DEFAULTS,
        "fusion": vle.VLE_DEFAULTS,
        "maxQuestionTokens": vle.MAX_QUESTION_TOKENS,
    }


# ----------------------------------------------------------------------------------------------------------------
# Models without initialised weights


@contextlib.contextmanager
def _no_init():
    """Module constructors leave their parameters as torch.empty: tracing needs shapes, not values."""
    names = ("uniform_", "normal_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
             "xavier_normal_", "ones_", "zeros_", "constant_")
    saved = {name: getattr(torch.nn.init, name) for name in names}
    try:
        for name in names:
            setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(torch.nn.init, name, function)


def build_model(family, raw):
    """(model, completed config) for a raw upstream config, parameters uninitialised."""
    with _no_init(), torch.no_grad():
        if family == "blip":
            config = blip.complete_config(raw)
            return blip.BlipCaptioner(config).eval(), config
        config = vle.VLEConfig(raw)
        return vle.VLEForVQA(config).eval(), config


def _parameter_shapes(family, raw):
    model, _ = build_model(family, raw)
    return {name: list(tensor.shape) for name, tensor in model.named_parameters(remove_duplicate=False)}


def _load_order_names(model):
    """id(tensor) -> every state-dict name of it, in load_state_dict's order (the last one loaded wins)."""
    names = {}
    for name, tensor in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(tensor), []).append(name)
    return names


def _aliases(family):
    return blip.STATE_ALIASES if family == "blip" else {}


# ----------------------------------------------------------------------------------------------------------------
# One graph


class _GraphWriter:
    """Exports graphs of one model as templates; passed to the family's export_graphs as its `export` function."""

    def __init__(self, family, model, out_dir):
        self.family = family
        self.model = model
        self.out_dir = out_dir
        self.model_names = _load_order_names(model)
        self.graphs = {}  # file base name -> list of tensor entries

    # blip.export_graphs calls export(module, args, path, spec)
    def blip_export(self, module, args, path, spec):
        self._export(module, args, path, [item["name"] for item in spec["inputs"]],
                     [item["name"] for item in spec["outputs"]], blip._dynamic_axes(spec["inputs"] + spec["outputs"]),
                     blip.OPSET)

    # vle.export_graphs calls export(module, args, path, input_names, output_names, dynamic_axes)
    def vle_export(self, module, args, path, input_names, output_names, dynamic_axes):
        self._export(module, args, path, input_names, output_names, dynamic_axes, vle.OPSET)

    def _export(self, module, args, path, input_names, output_names, dynamic_axes, opset):
        import onnx
        from onnx import numpy_helper

        buffer = io.BytesIO()
        with torch.no_grad():
            export_torchscript(
                module, args, buffer, input_names=input_names, output_names=output_names, dynamic_axes=dynamic_axes,
                opset_version=opset, do_constant_folding=False, export_params=False, keep_initializers_as_inputs=True,
            )
        proto = onnx.load_from_string(buffer.getvalue())
        file_name = os.path.basename(path)
        graph = proto.graph
        module_tensors = dict(module.named_parameters(remove_duplicate=False))
        module_buffers = dict(module.named_buffers(remove_duplicate=False))
        aliases = _aliases(self.family)

        renames, externals, inline = {}, [], []
        kept_inputs = []
        for value in graph.input:
            if value.name in input_names:
                kept_inputs.append(value)
                continue
            if value.name in module_tensors:
                tensor = module_tensors[value.name]
                names = self.model_names.get(id(tensor))
                if not names:
                    raise AssertionError(f"{file_name}: parameter {value.name} is not a parameter of the model")
                effective = names[-1]
                sources = list(aliases.get(effective, (effective,)))
                if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                    raise AssertionError(f"{file_name}: parameter {value.name} is not float32")
                renames[value.name] = sources[0]
                externals.append({"name": sources[0], "sources": sources, "shape": list(tensor.shape),
                                  "dtype": "float32", "transform": None})
            elif value.name in module_buffers:
                name = self._buffer_name(module_buffers[value.name], value.name)
                renames[value.name] = name
                inline.append(numpy_helper.from_array(module_buffers[value.name].detach().cpu().numpy(), name))
            else:
                raise AssertionError(f"{file_name}: graph input {value.name} is neither an input nor a model tensor")
        if len(kept_inputs) != len(input_names):
            raise AssertionError(f"{file_name}: the graph lost inputs ({[v.name for v in kept_inputs]})")
        if graph.initializer:
            # export_params=False should leave none: any would be a folded or deduplicated tensor under a new name.
            raise AssertionError(f"{file_name}: unexpected initializers {[t.name for t in graph.initializer][:5]}")
        names = [entry["name"] for entry in externals] + [tensor.name for tensor in inline]
        if len(set(names)) != len(names):
            raise AssertionError(f"{file_name}: two initializers share a name")

        for node in graph.node:
            for index, name in enumerate(node.input):
                if name in renames:
                    node.input[index] = renames[name]
        del graph.input[:]
        graph.input.extend(kept_inputs)
        del graph.value_info[:]
        offset = 0
        for entry in externals:
            tensor = graph.initializer.add()
            tensor.name = entry["name"]
            tensor.data_type = onnx.TensorProto.FLOAT
            tensor.dims.extend(entry["shape"])
            length = 4 * math.prod(entry["shape"])
            offset = -(-offset // ALIGNMENT) * ALIGNMENT
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, text in (("location", file_name + ".data"), ("offset", str(offset)), ("length", str(length))):
                item = tensor.external_data.add()
                item.key, item.value = key, text
            offset += length
        graph.initializer.extend(inline)

        used = {name for node in graph.node for name in node.input}
        unused = [entry["name"] for entry in externals if entry["name"] not in used]
        if unused:
            raise AssertionError(f"{file_name}: initializers no node reads: {unused[:5]}")
        _check_without_data(proto)
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, file_name), "wb") as handle:
            handle.write(proto.SerializeToString())
        self.graphs[file_name] = externals

    def _buffer_name(self, tensor, module_name):
        for name, candidate in self.model.named_buffers(remove_duplicate=False):
            if candidate is tensor:
                return name
        return module_name


def _check_without_data(proto):
    """onnx's checker on a copy whose external initializers are graph inputs (the checker opens external files)."""
    import onnx

    copy_ = onnx.ModelProto()
    copy_.CopyFrom(proto)
    graph = copy_.graph
    external = [tensor for tensor in graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL]
    for tensor in external:
        graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type, list(tensor.dims)))
    kept = [tensor for tensor in graph.initializer if tensor.data_location != onnx.TensorProto.EXTERNAL]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(copy_)


# ----------------------------------------------------------------------------------------------------------------
# Whole templates


def _tied_dims(family, raw, config, shapes, specs):
    """For each variable: which parameter dims and graph-output dims follow it (found by changing it)."""
    tensor_dims, spec_dims = {}, {}
    for number, path in enumerate(VARIABLE[family]):
        value = get_path(config, path)
        delta = (7, 11, 13)[number]
        changed_raw = _with_variable(family, raw, path, value + delta)
        changed_shapes = _parameter_shapes(family, changed_raw)
        for name, shape in shapes.items():
            for index, (old, new) in enumerate(zip(shape, changed_shapes[name])):
                if old != new:
                    if new - old != delta:
                        raise AssertionError(f"{name} dim {index} does not follow {path}")
                    tensor_dims.setdefault(name, {})[index] = path
        changed_specs = _graph_specs(family, changed_raw)
        for key, graph in specs.items():
            for side in ("inputs", "outputs"):
                for item, changed in zip(graph[side], changed_specs[key][side]):
                    for index, (old, new) in enumerate(zip(item["shape"], changed["shape"])):
                        if old != new:
                            if new - old != delta:
                                raise AssertionError(f"{key} {item['name']} dim {index} does not follow {path}")
                            spec_dims[(key, side, item["name"], index)] = path
    return tensor_dims, spec_dims


def _graph_specs(family, raw):
    if family == "blip":
        return blip.graph_specs(blip.complete_config(raw))
    return vle.graph_specs(vle.VLEConfig(raw))


def _export_graphs(family, model, config, scratch, writer, log):
    if family == "blip":
        return blip.export_graphs(model, scratch, log=log, export=writer.blip_export)
    inputs = vle.example_inputs(config)
    generator = torch.Generator().manual_seed(1)
    image_embeds = torch.randn(2, config.num_image_tokens, config.fusion.hidden_size, generator=generator)
    return vle.export_graphs(model, config, scratch, inputs, image_embeds, log=log, export=writer.vle_export)


def write_template(family, config, out_dir, template_id, upstream_ids, log=print):
    """Writes templates/<template_id>-style folder `out_dir`: template.json and one weight-less .onnx per graph.

    config: the upstream config.json (raw; for VLE with vision_config.image_size already set from the position
    embeddings, as load_vle_checkpoint does). Returns the template.json content."""
    import onnx
    import transformers

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}")
    raw = copy.deepcopy(config)
    model, model_config = build_model(family, raw)
    completed = completed_config(family, raw)
    shutil.rmtree(out_dir, ignore_errors=True)
    writer = _GraphWriter(family, model, out_dir)
    with tempfile.TemporaryDirectory() as scratch:
        specs = _export_graphs(family, model, model_config, scratch, writer, log)

    shapes = {name: list(tensor.shape) for name, tensor in model.named_parameters()}
    all_shapes = {name: list(tensor.shape) for name, tensor in model.named_parameters(remove_duplicate=False)}
    tensor_dims, spec_dims = _tied_dims(family, raw, completed, all_shapes, specs)

    # Every parameter of the model must be read by some graph, exactly once per graph.
    used = {name for entries in writer.graphs.values() for entry in entries for name in entry["sources"]}
    missing = [name for name in shapes if name not in used]
    if missing:
        raise AssertionError(f"parameters no graph reads: {missing[:10]}")

    graphs = {}
    for key, spec in specs.items():
        file_name = os.path.basename(spec["file"])
        tensors = []
        for entry in writer.graphs[file_name]:
            dims = tensor_dims.get(entry["name"])
            if dims:
                entry = dict(entry)
                entry["dims"] = [{"config": dims[index]} if index in dims else None
                                 for index in range(len(entry["shape"]))]
            tensors.append(entry)
        spec_out = {}
        for side in ("inputs", "outputs"):
            spec_out[side] = []
            for item in spec[side]:
                shape = [{"config": spec_dims[(key, side, item["name"], index)]}
                         if (key, side, item["name"], index) in spec_dims else dim
                         for index, dim in enumerate(item["shape"])]
                spec_out[side].append(dict(item, shape=shape))
        graphs[key] = {"file": file_name, "spec": spec_out, "tensors": tensors}

    template = {
        "format": FORMAT,
        "id": template_id,
        "family": family,
        "kind": KINDS[family],
        "upstream": list(upstream_ids),
        "exporter": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "onnx": onnx.__version__,
            "opset": blip.OPSET if family == "blip" else vle.OPSET,
        },
        "config": completed,
        "defaults": defaults(family),
        "structural": [path for path in STRUCTURAL[family] if has_path(completed, path)],
        "variable": list(VARIABLE[family]),
        "ignoredKeySuffixes": list(blip.DROPPED_KEY_SUFFIXES if family == "blip" else vle.DROPPED_KEY_SUFFIXES),
        "graphs": graphs,
    }
    write_json(os.path.join(out_dir, "template.json"), template)
    return template


# ----------------------------------------------------------------------------------------------------------------
# Filling a template in Python: a verification of the templates (the user path is the TypeScript converter)


class TemplateMismatch(Exception):
    def __init__(self, differences):
        super().__init__("; ".join(f"{path}: checkpoint {a!r}, template {b!r}" for path, (a, b) in differences.items()))
        self.differences = differences


def read_checkpoint(family, folder):
    """(completed config, state dict) as the family's loader sees them."""
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        raw = json.load(handle)
    if family == "blip":
        return blip.complete_config(raw), blip.read_state_dict(folder)
    state = vle._read_state_dict(folder)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    key = "vle.vision_model.vision_model.embeddings.position_embedding.weight"
    if key in state:
        config = vle.VLEConfig(raw)
        grid = math.isqrt(state[key].shape[0] - 1)
        raw = copy.deepcopy(raw)
        raw.setdefault("vision_config", {})["image_size"] = grid * config.vision.patch_size
    return vle.VLEConfig(raw).to_export_dict(), state


def fill_template(template_dir, checkpoint_dir, out_dir):
    """Writes out_dir/onnx/<file> + <file>.data from a checkpoint, as the converter does. Returns {graph key: path}."""
    import numpy as np
    import onnx

    with open(os.path.join(template_dir, "template.json"), encoding="utf-8") as handle:
        template = json.load(handle)
    config, state = read_checkpoint(template["family"], checkpoint_dir)
    differences = {path: (get_path(config, path), get_path(template["config"], path))
                   for path in template["structural"]
                   if not has_path(config, path) or get_path(config, path) != get_path(template["config"], path)}
    if differences:
        raise TemplateMismatch(differences)
    variables = {path: get_path(config, path) for path in template["variable"]}
    used = set()
    paths = {}
    for key, graph in template["graphs"].items():
        proto = onnx.load(os.path.join(template_dir, graph["file"]), load_external_data=False)
        initializers = {tensor.name: tensor for tensor in proto.graph.initializer}
        target = os.path.join(out_dir, "onnx", graph["file"])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        offset = 0
        with open(target + ".data", "wb") as data:
            for entry in graph["tensors"]:
                source = next((name for name in entry["sources"] if name in state), None)
                if source is None:
                    raise KeyError(f"{checkpoint_dir} has none of {entry['sources']}")
                used.add(source)
                shape = [variables[dim["config"]] if dim else size
                         for size, dim in zip(entry["shape"], entry.get("dims") or [None] * len(entry["shape"]))]
                array = state[source].float().numpy()
                if list(array.shape) != shape:
                    raise ValueError(f"{source} has shape {list(array.shape)}, the template needs {shape}")
                offset = -(-offset // ALIGNMENT) * ALIGNMENT
                data.seek(offset)
                raw_bytes = np.ascontiguousarray(array, dtype="<f4").tobytes()
                data.write(raw_bytes)
                tensor = initializers[entry["name"]]
                del tensor.dims[:]
                tensor.dims.extend(shape)
                values = {"location": graph["file"] + ".data", "offset": str(offset), "length": str(len(raw_bytes))}
                for item in tensor.external_data:
                    item.value = values[item.key]
                offset += len(raw_bytes)
        for item, value in zip(graph["spec"]["outputs"], proto.graph.output):
            for index, dim in enumerate(item["shape"]):
                if isinstance(dim, dict):
                    value.type.tensor_type.shape.dim[index].dim_value = variables[dim["config"]]
        with open(target, "wb") as handle:
            handle.write(proto.SerializeToString())
        paths[key] = target
    ignored = tuple(template.get("ignoredKeySuffixes", ()))
    unused = [key for key in state if key not in used and not key.endswith(ignored)]
    # Sources that were fallbacks of a present key count as used too (e.g. a tied head whose decoder.weight exists).
    fallbacks = {name for graph in template["graphs"].values() for entry in graph["tensors"] for name in entry["sources"]}
    unused = [key for key in unused if key not in fallbacks]
    if unused:
        raise KeyError(f"{checkpoint_dir}: keys no template tensor reads: {unused[:10]}")
    return paths
