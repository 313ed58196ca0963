"""BLIP image captioning: our own PyTorch modules, a checkpoint loader and the ONNX export.

The modules are written for this project; only their parameter names follow Hugging Face's
`BlipForConditionalGeneration` (`vision_model.*`, `text_decoder.bert.*`, `text_decoder.cls.*`), so that a real
checkpoint's state dict loads with strict=True. The export writes the three graphs of the model-folder contract
(models/README.md): `visionEncoder`, `crossAttentionCache` and `textDecoder` (with past keys/values).
"""

import copy
import json
import math
import os
import shutil
import struct
import sys
import time

import numpy as np
import torch
from torch import nn

from .manifest import tensor_spec, write_json, write_manifest
from .hub import resolve_checkpoint
from .onnx_export import export_graph, quantize_graph

OPSET = 14
KIND = "blip-captioner"

# CLIP's statistics: BLIP normalises with them, not with ImageNet's.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

# transformers' BlipTextConfig / BlipVisionConfig defaults. A checkpoint's config.json omits keys equal to these,
# and the runtime must not depend on library defaults, so the exporter writes them out in full.
TEXT_DEFAULTS = {
    "model_type": "blip_text_model",
    "vocab_size": 30524,
    "hidden_size": 768,
    "encoder_hidden_size": 768,
    "intermediate_size": 3072,
    "projection_dim": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 512,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "initializer_range": 0.02,
    "bos_token_id": 30522,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "sep_token_id": 102,
    "is_decoder": True,
    "use_cache": True,
}
VISION_DEFAULTS = {
    "model_type": "blip_vision_model",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "projection_dim": 512,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 384,
    "patch_size": 16,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
    "attention_dropout": 0.0,
    "initializer_range": 1e-10,
}
TOP_DEFAULTS = {
    "model_type": "blip",
    "architectures": ["BlipForConditionalGeneration"],
    "projection_dim": 512,
    "logit_scale_init_value": 2.6592,
    "image_text_hidden_size": 256,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
}

# Tokenizer files copied from a checkpoint when present (vocab.txt also lets us build tokenizer.json if missing).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


# ----------------------------------------------------------------------------------------------------------------
# Configuration


def complete_config(raw):
    """The upstream config with every text/vision value written out (defaults filled in, as transformers would)."""
    config = copy.deepcopy(raw)
    for key, value in TOP_DEFAULTS.items():
        config.setdefault(key, value)
    # Old configs used *_config_dict; transformers accepts both.
    text = dict(TEXT_DEFAULTS)
    text.update(config.pop("text_config_dict", None) or {})
    text.update(config.get("text_config") or {})
    vision = dict(VISION_DEFAULTS)
    vision.update(config.pop("vision_config_dict", None) or {})
    vision.update(config.get("vision_config") or {})
    # BlipConfig forces this: the decoder's cross-attention reads the vision tower's output.
    text["encoder_hidden_size"] = vision["hidden_size"]
    config["text_config"] = text
    config["vision_config"] = vision
    return config


def read_config(folder):
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        raw = json.load(handle)
    if raw.get("model_type", "blip") != "blip":
        raise SystemExit(f"{folder}/config.json has model_type {raw.get('model_type')!r}, expected 'blip'.")
    return complete_config(raw)


def activation(name):
    if name == "gelu":
        return nn.GELU()
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return nn.GELU(approximate="tanh")
    if name == "relu":
        return nn.ReLU()
    raise SystemExit(f"Unsupported hidden_act {name!r} in the BLIP config.")


# ----------------------------------------------------------------------------------------------------------------
# Vision tower (ViT with pre-norm layers and a final post-layernorm)


class VisionEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim, patch, size = cfg["hidden_size"], cfg["patch_size"], cfg["image_size"]
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, dim))
        self.patch_embedding = nn.Conv2d(cfg["num_channels"], dim, kernel_size=patch, stride=patch)
        self.position_embedding = nn.Parameter(torch.zeros(1, (size // patch) ** 2 + 1, dim))

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)  # [B, P, D]
        cls = self.class_embedding.expand(pixel_values.shape[0], 1, -1).to(patches.dtype)
        return torch.cat([cls, patches], dim=1) + self.position_embedding


class VisionAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dim = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = self.dim // self.heads
        self.qkv = nn.Linear(self.dim, 3 * self.dim)  # one fused projection, laid out [3, heads, head_dim]
        self.projection = nn.Linear(self.dim, self.dim)

    def forward(self, hidden):
        batch, tokens, _ = hidden.shape
        qkv = self.qkv(hidden).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(query, key.transpose(-1, -2)) * (self.head_dim ** -0.5)
        context = torch.matmul(scores.softmax(dim=-1), value)  # [B, H, T, d]
        context = context.permute(0, 2, 1, 3).reshape(batch, tokens, self.dim)
        return self.projection(context)


class VisionMlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.fc1 = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.act = activation(cfg["hidden_act"])
        self.fc2 = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])

    def forward(self, hidden):
        return self.fc2(self.act(self.fc1(hidden)))


class VisionLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = VisionAttention(cfg)
        self.layer_norm1 = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])
        self.mlp = VisionMlp(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, hidden):
        hidden = hidden + self.self_attn(self.layer_norm1(hidden))
        return hidden + self.mlp(self.layer_norm2(hidden))


class VisionEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([VisionLayer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, hidden):
        for layer in self.layers:
            hidden = layer(hidden)
        return hidden


class VisionModel(nn.Module):
    """pixel_values [B,3,S,S] -> image embeddings [B,T,D], post-layernorm included (what the decoder reads)."""

    def __init__(self, cfg):
        super().__init__()
        self.embeddings = VisionEmbeddings(cfg)
        self.encoder = VisionEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, pixel_values):
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))


# ----------------------------------------------------------------------------------------------------------------
# Text decoder (BERT with causal self-attention, cross-attention over the image tokens, and an LM head)


def split_heads(x, heads):
    batch, length, dim = x.shape
    return x.reshape(batch, length, heads, dim // heads).permute(0, 2, 1, 3)


def merge_heads(x):
    batch, heads, length, head_dim = x.shape
    return x.permute(0, 2, 1, 3).reshape(batch, length, heads * head_dim)


class TextEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, input_ids, position_ids):
        return self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(position_ids))


class TextSelfAttention(nn.Module):
    """Query/key/value projections. For cross-attention, key and value read the image embeddings."""

    def __init__(self, cfg, cross):
        super().__init__()
        dim = cfg["hidden_size"]
        source = cfg["encoder_hidden_size"] if cross else dim
        self.heads = cfg["num_attention_heads"]
        self.head_dim = dim // self.heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(source, dim)
        self.value = nn.Linear(source, dim)

    def keys_values(self, source):
        return split_heads(self.key(source), self.heads), split_heads(self.value(source), self.heads)

    def attend(self, hidden, key, value, mask=None):
        query = split_heads(self.query(hidden), self.heads)
        scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + mask
        return merge_heads(torch.matmul(scores.softmax(dim=-1), value))


class TextSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dense(hidden) + residual)


class TextAttention(nn.Module):
    def __init__(self, cfg, cross=False):
        super().__init__()
        self.self = TextSelfAttention(cfg, cross)
        self.output = TextSelfOutput(cfg)


class TextIntermediate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["intermediate_size"])
        self.act = activation(cfg["hidden_act"])

    def forward(self, hidden):
        return self.act(self.dense(hidden))


class TextOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["intermediate_size"], cfg["hidden_size"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dense(hidden) + residual)


class TextLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = TextAttention(cfg)
        self.crossattention = TextAttention(cfg, cross=True)
        self.intermediate = TextIntermediate(cfg)
        self.output = TextOutput(cfg)

    def forward(self, hidden, past_key, past_value, cross_key, cross_value, causal_mask):
        """Returns the new hidden states and this layer's self-attention keys/values (past + new)."""
        attn = self.attention
        new_key, new_value = attn.self.keys_values(hidden)
        key = torch.cat([past_key, new_key], dim=2)
        value = torch.cat([past_value, new_value], dim=2)
        hidden = attn.output(attn.self.attend(hidden, key, value, causal_mask), hidden)
        cross = self.crossattention
        hidden = cross.output(cross.self.attend(hidden, cross_key, cross_value), hidden)
        hidden = self.output(self.intermediate(hidden), hidden)
        return hidden, key, value


class TextEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([TextLayer(cfg) for _ in range(cfg["num_hidden_layers"])])


class TextModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = TextEmbeddings(cfg)
        self.encoder = TextEncoder(cfg)


class PredictionHeadTransform(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg["hidden_size"], cfg["hidden_size"])
        self.act = activation(cfg["hidden_act"])
        self.LayerNorm = nn.LayerNorm(cfg["hidden_size"], eps=cfg["layer_norm_eps"])

    def forward(self, hidden):
        return self.LayerNorm(self.act(self.dense(hidden)))


class LMPredictionHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transform = PredictionHeadTransform(cfg)
        self.decoder = nn.Linear(cfg["hidden_size"], cfg["vocab_size"])
        # One tensor under two names (`bias` and `decoder.bias`), as in the upstream state dict.
        self.bias = self.decoder.bias

    def forward(self, hidden):
        return self.decoder(self.transform(hidden))


class OnlyMLMHead(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.predictions = LMPredictionHead(cfg)


class TextDecoder(nn.Module):
    """BLIP's text decoder with an explicit cache API (lists of per-layer tensors [B,H,L,d])."""

    def __init__(self, cfg):
        super().__init__()
        self.bert = TextModel(cfg)
        self.cls = OnlyMLMHead(cfg)
        self.num_layers = cfg["num_hidden_layers"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = cfg["hidden_size"] // self.heads

    def cross_keys_values(self, image_embeds):
        """Per-layer cross-attention keys and values over the image tokens: computed once per caption."""
        keys, values = [], []
        for layer in self.bert.encoder.layer:
            key, value = layer.crossattention.self.keys_values(image_embeds)
            keys.append(key)
            values.append(value)
        return keys, values

    def empty_past(self, batch, dtype=torch.float32):
        shape = (batch, self.heads, 0, self.head_dim)
        return [torch.zeros(shape, dtype=dtype) for _ in range(self.num_layers)], [
            torch.zeros(shape, dtype=dtype) for _ in range(self.num_layers)
        ]

    def forward(self, input_ids, past_keys, past_values, cross_keys, cross_values):
        """input_ids [B,S] after `past` tokens -> logits [B,S,V] and the present keys/values [B,H,past+S,d]."""
        past_length = past_keys[0].shape[2]
        length = input_ids.shape[1]
        # Positions continue after the cached tokens; derived from the tensors so the graph keeps them dynamic.
        query_positions = torch.arange(length, device=input_ids.device) + past_length
        key_positions = torch.arange(length, device=input_ids.device) + past_length
        key_positions = torch.cat([torch.arange(past_length, device=input_ids.device), key_positions])
        position_ids = query_positions.unsqueeze(0).expand(input_ids.shape[0], length)
        hidden = self.bert.embeddings(input_ids, position_ids)
        # Causal mask: -10000 (as upstream) where a key lies after the query; every row has the same length.
        future = key_positions.unsqueeze(0) > query_positions.unsqueeze(1)  # [S, past+S]
        causal_mask = future.to(hidden.dtype) * -10000.0
        present_keys, present_values = [], []
        for i, layer in enumerate(self.bert.encoder.layer):
            hidden, key, value = layer(hidden, past_keys[i], past_values[i], cross_keys[i], cross_values[i], causal_mask)
            present_keys.append(key)
            present_values.append(value)
        return self.cls.predictions(hidden), present_keys, present_values

    def full_logits(self, input_ids, image_embeds):
        """Uncached: the whole sequence recomputed from scratch (the reference path for the tests)."""
        cross_keys, cross_values = self.cross_keys_values(image_embeds)
        past_keys, past_values = self.empty_past(input_ids.shape[0], image_embeds.dtype)
        logits, _, _ = self(input_ids, past_keys, past_values, cross_keys, cross_values)
        return logits


class BlipCaptioner(nn.Module):
    """Parameter names match transformers' BlipForConditionalGeneration."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.vision_model = VisionModel(config["vision_config"])
        self.text_decoder = TextDecoder(config["text_config"])


# ----------------------------------------------------------------------------------------------------------------
# Checkpoint loading


SAFETENSORS_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
    "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}


def read_safetensors(path):
    """Reads a .safetensors file: with the `safetensors` package when installed, else by its simple layout
    (8-byte little-endian header length, JSON header, raw little-endian data)."""
    try:
        from safetensors.torch import load_file
    except ImportError:
        load_file = None
    if load_file is not None:
        return load_file(path)
    tensors = {}
    with open(path, "rb") as handle:
        (header_length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_length))
        data = handle.read()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            # numpy has no bfloat16: widen the 16 bits into the top half of a float32.
            raw = np.frombuffer(data[start:end], dtype="<u2").astype(np.uint32) << 16
            array = raw.view(np.float32)
        else:
            array = np.frombuffer(data[start:end], dtype=np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).copy())
    return tensors


def read_state_dict(folder):
    """The checkpoint's tensors: model.safetensors (or its shards), else pytorch_model.bin (or its shards)."""
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        loader = read_safetensors if single.endswith(".safetensors") else (
            lambda p: torch.load(p, map_location="cpu"))
        if os.path.exists(os.path.join(folder, single)):
            return loader(os.path.join(folder, single))
        if os.path.exists(os.path.join(folder, index)):
            with open(os.path.join(folder, index), encoding="utf-8") as handle:
                shards = sorted(set(json.load(handle)["weight_map"].values()))
            state = {}
            for shard in shards:
                state.update(loader(os.path.join(folder, shard)))
            return state
    raise SystemExit(f"No model.safetensors or pytorch_model.bin in {folder}.")


# Checkpoint keys the loader drops (buffers recomputed in __init__), by suffix.
DROPPED_KEY_SUFFIXES = ("position_ids",)
_HEAD = "text_decoder.cls.predictions."
# Tied tensors a checkpoint may store only once: a model key -> the checkpoint keys that fill it, first present wins.
# Read by load_state_dict_into and by the graph templates (templates.py), which record them as each tensor's sources.
STATE_ALIASES = {
    _HEAD + "decoder.bias": (_HEAD + "decoder.bias", _HEAD + "bias"),
    _HEAD + "bias": (_HEAD + "bias", _HEAD + "decoder.bias"),
    _HEAD + "decoder.weight": (_HEAD + "decoder.weight", "text_decoder.bert.embeddings.word_embeddings.weight"),
}


def load_state_dict_into(model, state):
    """strict=True loading, after the only adjustments a real checkpoint needs: drop buffers (position_ids) and
    modules a captioner does not have, and restore tied tensors that a checkpoint may store only once."""
    state = {key: value for key, value in state.items() if not key.endswith(DROPPED_KEY_SUFFIXES)}
    for key, sources in STATE_ALIASES.items():
        if key not in state:
            present = [source for source in sources[1:] if source in state]
            if present:
                state[key] = state[present[0]]
    state = {key: value.float() for key, value in state.items()}
    model.load_state_dict(state, strict=True)
    return model


def load_checkpoint(folder):
    """A BlipCaptioner with the checkpoint's weights, in eval mode, float32."""
    config = read_config(folder)
    model = BlipCaptioner(config)
    load_state_dict_into(model, read_state_dict(folder))
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# ONNX export


class _CrossAttentionCacheGraph(nn.Module):
    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, image_embeds):
        keys, values = self.decoder.cross_keys_values(image_embeds)
        return tuple(t for pair in zip(keys, values) for t in pair)


class _TextDecoderGraph(nn.Module):
    """Flat tensor arguments for torch.onnx.export: input_ids, past (key, value) per layer, cross per layer."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder
        self.layers = decoder.num_layers

    def forward(self, input_ids, *tensors):
        layers = self.layers
        past = tensors[: 2 * layers]
        cross = tensors[2 * layers:]
        logits, keys, values = self.decoder(input_ids, list(past[0::2]), list(past[1::2]),
                                            list(cross[0::2]), list(cross[1::2]))
        return (logits,) + tuple(t for pair in zip(keys, values) for t in pair)


def graph_specs(config):
    """Manifest entries of the three graphs (names, dtypes, shapes; symbolic dims as strings)."""
    vision, text = config["vision_config"], config["text_config"]
    size = vision["image_size"]
    tokens = (size // vision["patch_size"]) ** 2 + 1
    heads = text["num_attention_heads"]
    head_dim = text["hidden_size"] // heads
    layers = text["num_hidden_layers"]
    cross = [(f"cross_{kind}.{i}", ["batch", heads, tokens, head_dim]) for i in range(layers) for kind in ("key", "value")]
    past = [(f"past_{kind}.{i}", ["batch", heads, "past_sequence", head_dim]) for i in range(layers) for kind in ("key", "value")]
    present = [(f"present_{kind}.{i}", ["batch", heads, "past_sequence+sequence", head_dim])
               for i in range(layers) for kind in ("key", "value")]
    return {
        "visionEncoder": {
            "file": "onnx/vision_encoder.onnx",
            "inputs": [tensor_spec("pixel_values", "float32", ["batch", vision["num_channels"], size, size])],
            "outputs": [tensor_spec("image_embeds", "float32", ["batch", tokens, vision["hidden_size"]])],
        },
        "crossAttentionCache": {
            "file": "onnx/cross_attention_cache.onnx",
            "inputs": [tensor_spec("image_embeds", "float32", ["batch", tokens, vision["hidden_size"]])],
            "outputs": [tensor_spec(name, "float32", shape) for name, shape in cross],
        },
        "textDecoder": {
            "file": "onnx/text_decoder.onnx",
            "inputs": [tensor_spec("input_ids", "int64", ["batch", "sequence"])]
            + [tensor_spec(name, "float32", shape) for name, shape in past + cross],
            "outputs": [tensor_spec("logits", "float32", ["batch", "sequence", text["vocab_size"]])]
            + [tensor_spec(name, "float32", shape) for name, shape in present],
        },
    }


def _dynamic_axes(specs):
    """torch.onnx dynamic_axes from the manifest shapes: every string dimension is symbolic."""
    axes = {}
    for spec in specs:
        named = {index: dim for index, dim in enumerate(spec["shape"]) if isinstance(dim, str)}
        if named:
            axes[spec["name"]] = named
    return axes


def _export(module, args, path, spec):
    inputs, outputs = spec["inputs"], spec["outputs"]
    export_graph(
        module, args, path, OPSET,
        [item["name"] for item in inputs], [item["name"] for item in outputs], _dynamic_axes(inputs + outputs),
    )


def export_graphs(model, folder, log=print, export=None):
    """Writes the three graphs of `model` (a BlipCaptioner) into folder/onnx; returns the manifest's graphs.

    export: replaces `_export` (same arguments); the graph templates (templates.py) pass their own."""
    export = export or _export
    model = model.float().eval()
    config = model.config
    specs = graph_specs(config)
    vision, text = config["vision_config"], config["text_config"]
    size = vision["image_size"]
    tokens = (size // vision["patch_size"]) ** 2 + 1
    decoder = model.text_decoder
    generator = torch.Generator().manual_seed(0)

    def random(*shape):
        return torch.randn(*shape, generator=generator)

    # Tracing needs example inputs of the right shapes only, not meaningful values: random tensors spare a
    # full-size vision forward pass (a minute on a CPU torch without an optimised BLAS). The vision tower is traced
    # with batch 1 (its forward pass is the expensive one), the decoder graphs with batch 2 and the decoder with a
    # non-empty past and 2 new tokens, so that no dimension is frozen into the graphs; the runtime's first decoder
    # call passes past_sequence = 0. Callers check the graphs with other batch sizes.
    started = time.time()
    export(model.vision_model, (random(1, vision["num_channels"], size, size),),
            os.path.join(folder, specs["visionEncoder"]["file"]), specs["visionEncoder"])
    log(f"  visionEncoder exported ({time.time() - started:.1f}s)")

    batch = 2
    image_embeds = random(batch, tokens, vision["hidden_size"])
    started = time.time()
    export(_CrossAttentionCacheGraph(decoder), (image_embeds,),
            os.path.join(folder, specs["crossAttentionCache"]["file"]), specs["crossAttentionCache"])
    log(f"  crossAttentionCache exported ({time.time() - started:.1f}s)")

    past = [random(batch, decoder.heads, 3, decoder.head_dim) for _ in range(2 * decoder.num_layers)]
    cross = [random(batch, decoder.heads, tokens, decoder.head_dim) for _ in range(2 * decoder.num_layers)]
    input_ids = torch.randint(0, text["vocab_size"], (batch, 2), generator=generator)
    started = time.time()
    export(_TextDecoderGraph(decoder), (input_ids, *past, *cross),
            os.path.join(folder, specs["textDecoder"]["file"]), specs["textDecoder"])
    log(f"  textDecoder exported ({time.time() - started:.1f}s)")
    return specs


def quantize_graphs(folder, graphs, log=print):
    """Dynamic int8 quantization of every graph into onnx/NAME.int8.onnx, listed under variants.int8."""
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise SystemExit("--int8 needs the onnxruntime Python package: pip install -r models/requirements.txt")
    for name, graph in graphs.items():
        source = os.path.join(folder, graph["file"])
        target_rel = graph["file"][: -len(".onnx")] + ".int8.onnx"
        started = time.time()
        quantize_graph(source, os.path.join(folder, target_rel))
        graph["variants"] = {"int8": target_rel}
        log(f"  {name} quantized to int8 ({time.time() - started:.1f}s)")
    return graphs


# ----------------------------------------------------------------------------------------------------------------
# Folder files other than the graphs


def preprocessor_config(config, upstream=None):
    """Every key the runtime reads, written out. An upstream preprocessor_config.json wins where it says more."""
    size = config["vision_config"]["image_size"]
    result = {
        "image_processor_type": "BlipImageProcessor",
        "processor_class": "BlipProcessor",
        "do_convert_rgb": True,
        "do_resize": True,
        "size": {"height": size, "width": size},
        "resample": 3,
        "do_center_crop": False,
        "crop_size": {"height": size, "width": size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
    }
    for key, value in (upstream or {}).items():
        if key == "size" and isinstance(value, int):
            value = {"height": value, "width": value}
        if key in ("size", "crop_size") and isinstance(value, dict) and "shortest_edge" in value:
            continue  # BLIP resizes to an exact square; keep the explicit height/width.
        result[key] = value
    # transformers.js's base processor defaults to bilinear: BLIP is bicubic unless the checkpoint says otherwise.
    result.setdefault("resample", 3)
    return result


def generation_config(config, upstream=None):
    text = config["text_config"]
    upstream = upstream or {}

    def pick(key, default):
        # generation_config.json first, then the text config (old checkpoints keep them there), then HF's default.
        for source in (upstream, text):
            if source.get(key) is not None:
                return source[key]
        return default

    result = {
        "bos_token_id": text["bos_token_id"],
        # The HF BLIP generate() stops on [SEP], not on the config's eos_token_id (2).
        "eos_token_id": text["sep_token_id"],
        "pad_token_id": text["pad_token_id"],
        "max_length": pick("max_length", 20),
        "min_length": pick("min_length", 0),
        "num_beams": pick("num_beams", 1),
        "repetition_penalty": float(pick("repetition_penalty", 1.0)),
    }
    # A checkpoint that sets no length at all gets transformers 5's default, 20 new tokens after the prompt (4.x
    # counted the prompt in its default max_length of 20); max_new_tokens wins over max_length, as in transformers.
    max_new_tokens = pick("max_new_tokens", None)
    if max_new_tokens is None and pick("max_length", None) is None:
        max_new_tokens = 20
    if max_new_tokens is not None:
        result["max_new_tokens"] = int(max_new_tokens)
    return result


def _read_json_if_exists(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_folder_files(model, folder, checkpoint_dir=None, tokenizer_writer=None):
    """config.json, preprocessor_config.json, generation_config.json and the tokenizer files.

    checkpoint_dir: copy tokenizer files and upstream preprocessing/generation settings from it.
    tokenizer_writer: callable(folder) writing the tokenizer files (test models, or a checkpoint without
    tokenizer.json, which is then built from its vocab.txt)."""
    os.makedirs(folder, exist_ok=True)
    config = model.config
    write_json(os.path.join(folder, "config.json"), config)
    upstream_pre = _read_json_if_exists(os.path.join(checkpoint_dir, "preprocessor_config.json")) if checkpoint_dir else None
    write_json(os.path.join(folder, "preprocessor_config.json"), preprocessor_config(config, upstream_pre))
    upstream_gen = _read_json_if_exists(os.path.join(checkpoint_dir, "generation_config.json")) if checkpoint_dir else None
    write_json(os.path.join(folder, "generation_config.json"), generation_config(config, upstream_gen))
    if checkpoint_dir:
        for name in TOKENIZER_FILES:
            source = os.path.join(checkpoint_dir, name)
            if os.path.exists(source):
                shutil.copyfile(source, os.path.join(folder, name))
        if not os.path.exists(os.path.join(folder, "tokenizer.json")):
            vocab_path = os.path.join(checkpoint_dir, "vocab.txt")
            if not os.path.exists(vocab_path):
                raise SystemExit(f"{checkpoint_dir} has neither tokenizer.json nor vocab.txt.")
            from .bert_tokenizer import read_vocab, write_bert_tokenizer

            write_bert_tokenizer(folder, read_vocab(vocab_path), only_missing=True)
    if tokenizer_writer is not None:
        tokenizer_writer(folder)


def export_blip(model, folder, name, source, checkpoint_dir=None, tokenizer_writer=None, int8=False, log=print):
    """The one export path, for real checkpoints and test models alike. Returns the manifest."""
    if int8:
        # Fail before minutes of export, not after.
        try:
            import onnxruntime.quantization  # noqa: F401
        except ImportError:
            raise SystemExit("--int8 needs the onnxruntime Python package: pip install -r models/requirements.txt")
    os.makedirs(folder, exist_ok=True)
    write_folder_files(model, folder, checkpoint_dir, tokenizer_writer)
    graphs = export_graphs(model, folder, log)
    if int8:
        quantize_graphs(folder, graphs, log)
    return write_manifest(folder, KIND, name, source, graphs, OPSET)


def export_blip_cli(args, log=print):
    """`python models/export.py blip --checkpoint DIR_OR_HUB_ID --out DIR [--revision R] [--int8]`."""
    checkpoint = args.checkpoint
    folder, resolved = resolve_checkpoint(checkpoint, args.revision, log)
    log(f"Loading {folder} ...")
    model = load_checkpoint(folder)
    name = args.name or os.path.basename(os.path.normpath(checkpoint.rstrip("/")))
    log(f"Exporting to {args.out} ...")
    manifest = export_blip(model, args.out, name, {"checkpoint": checkpoint, "revision": resolved},
                           checkpoint_dir=folder, int8=args.int8, log=log)
    log(f"Wrote {args.out} ({len(manifest['files'])} files).")
    return manifest


if __name__ == "__main__":  # pragma: no cover
    sys.exit("Use models/export.py blip ...")
