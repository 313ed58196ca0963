"""VLE for visual question answering (hfl/vle-base-for-vqa, hfl/vle-large-for-vqa), written for ONNX export.

This is an independent implementation of the architecture described by iflytek/VLE (Apache-2.0), whose modelling
code builds on transformers 4.26's CLIP vision tower and DeBERTa-v2 text encoder. Module and parameter names follow
the upstream `VLEForVQA` state dict, so a real checkpoint loads without renaming. Everything is written with plain
tensor ops (no custom autograd functions, no TorchScript helpers) so that `torch.onnx.export` at opset 14 traces it.

The model is split into the two graphs of models/README.md:
  imageEncoder: pixel_values -> image_embeds (CLIP tower, post-layernorm over the whole sequence, image projection,
                token-type-1 embedding); computed once per image and cached by the runtime.
  fusion:       input_ids, attention_mask, image_embeds -> logits (DeBERTa, text projection + token-type-0
                embedding, co-attention layers, poolers, VQA classifier); run once per question.
"""

import copy
import json
import math
import os
import shutil
import sys
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from .manifest import tensor_spec, write_json, write_manifest
from .onnx_export import export_graph, quantize_graph

OPSET = 14
KIND = "vle-vqa"
# Fine-tuning on VQA v2 used max_text_len 50 (examples/VQA/vqa_train_config.json upstream); the upstream pipeline
# itself does not truncate: config.json records the length so that the runtime can warn past it (and truncate on request).
MAX_QUESTION_TOKENS = 50

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

IMAGE_ENCODER_FILE = "onnx/image_encoder.onnx"
FUSION_FILE = "onnx/fusion.onnx"


# Defaults of the transformers config classes the upstream checkpoints were written with: a config.json only
# stores values that differ from them, so they are needed to read one.
CLIP_VISION_DEFAULTS = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 32,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
DEBERTA_V2_DEFAULTS = {
    "vocab_size": 128100,
    "hidden_size": 1536,
    "num_hidden_layers": 24,
    "num_attention_heads": 24,
    "intermediate_size": 6144,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "layer_norm_eps": 1e-7,
    "relative_attention": False,
    "max_relative_positions": -1,
    "pad_token_id": 0,
    "position_biased_input": True,
    "pos_att_type": None,
    "position_buckets": -1,
    "norm_rel_ebd": "none",
    "share_att_key": False,
    "conv_kernel_size": 0,
    "conv_groups": 1,
    "conv_act": "tanh",
}
VLE_DEFAULTS = {
    "num_token_types": 2,
    "hidden_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
}


# ----------------------------------------------------------------------------------------------------------------
# Configuration


def _section(values, defaults):
    merged = dict(defaults)
    merged.update({key: value for key, value in values.items() if value is not None or key not in defaults})
    return SimpleNamespace(**merged)


class VLEConfig:
    """The parts of an upstream VLE config.json this implementation reads, with the library defaults filled in."""

    def __init__(self, raw):
        self.raw = copy.deepcopy(raw)
        vision = dict(raw.get("vision_config") or {})
        if vision.get("model_type") == "clip" and "vision_config" in vision:
            # A full CLIP config was given; VLE keeps only its vision half.
            vision = dict(vision["vision_config"])
        text = dict(raw.get("text_config") or {})
        self.vision = _section(vision, CLIP_VISION_DEFAULTS)
        self.text = _section(text, DEBERTA_V2_DEFAULTS)
        if isinstance(self.text.pos_att_type, str):
            self.text.pos_att_type = [part.strip() for part in self.text.pos_att_type.lower().split("|")]
        self.text.pos_att_type = list(self.text.pos_att_type or [])
        if not hasattr(self.text, "embedding_size") or self.text.embedding_size is None:
            self.text.embedding_size = self.text.hidden_size
        fusion = {key: raw[key] for key in VLE_DEFAULTS if key in raw}
        self.fusion = _section(fusion, VLE_DEFAULTS)
        id2label = raw.get("id2label") or {}
        self.id2label = {int(key): value for key, value in id2label.items()}
        if not self.id2label:
            raise ValueError("config.json has no id2label: a VLE VQA checkpoint needs its answer vocabulary")
        if sorted(self.id2label) != list(range(len(self.id2label))):
            raise ValueError("config.json id2label must map every index 0..num_labels-1")

    @property
    def num_labels(self):
        return len(self.id2label)

    @property
    def image_size(self):
        return int(self.vision.image_size)

    @property
    def num_image_tokens(self):
        return (self.image_size // self.vision.patch_size) ** 2 + 1

    def to_export_dict(self):
        """config.json as written into the model folder: upstream values plus what the runtime must not guess."""
        out = copy.deepcopy(self.raw)
        out["model_type"] = out.get("model_type", "vle")
        out["vision_config"] = dict(vars(self.vision), **{"model_type": "clip_vision_model"})
        text = dict(vars(self.text))
        text["pos_att_type"] = "|".join(text["pos_att_type"]) if text["pos_att_type"] else None
        text["model_type"] = "deberta-v2"
        out["text_config"] = text
        for key, value in vars(self.fusion).items():
            out[key] = value
        out["num_labels"] = self.num_labels
        out["id2label"] = {str(index): self.id2label[index] for index in range(self.num_labels)}
        out["label2id"] = {label: index for index, label in sorted(self.id2label.items())}
        out["max_question_tokens"] = int(self.raw.get("max_question_tokens", MAX_QUESTION_TOKENS))
        return out


def read_config(folder):
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        return VLEConfig(json.load(handle))


# ----------------------------------------------------------------------------------------------------------------
# Shared pieces


def _activation(name):
    if name == "gelu":
        return lambda x: F.gelu(x)
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    raise ValueError(f"unsupported activation {name!r}")


def _split_heads(x, heads):
    """[batch, length, heads*size] -> [batch, heads, length, size]."""
    return x.view(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)


def _merge_heads(x):
    """[batch, heads, length, size] -> [batch, length, heads*size]."""
    x = x.transpose(1, 2)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _float32_sqrt(value):
    # Upstream divides by torch.sqrt of a float32 tensor; take the same float32 value.
    return float(torch.sqrt(torch.tensor(float(value), dtype=torch.float32)))


# ----------------------------------------------------------------------------------------------------------------
# CLIP vision tower (names as transformers' CLIPVisionModel)


class ClipVisionEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(cfg.hidden_size))
        self.patch_embedding = nn.Conv2d(
            cfg.num_channels, cfg.hidden_size, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False
        )
        num_positions = (cfg.image_size // cfg.patch_size) ** 2 + 1
        self.position_embedding = nn.Embedding(num_positions, cfg.hidden_size)
        self.register_buffer("position_ids", torch.arange(num_positions).unsqueeze(0))

    def forward(self, pixel_values):
        patches = self.patch_embedding(pixel_values).flatten(2).transpose(1, 2)
        cls = self.class_embedding.view(1, 1, -1).expand(pixel_values.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding(self.position_ids)


class ClipAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.scale = (cfg.hidden_size // cfg.num_attention_heads) ** -0.5
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out_proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x):
        # CLIP scales the queries before the product (not the scores after it).
        q = _split_heads(self.q_proj(x) * self.scale, self.heads)
        k = _split_heads(self.k_proj(x), self.heads)
        v = _split_heads(self.v_proj(x), self.heads)
        probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)), dim=-1)
        return self.out_proj(_merge_heads(torch.matmul(probs, v)))


class ClipMlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.act = _activation(cfg.hidden_act)
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class ClipEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = ClipAttention(cfg)
        self.layer_norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = ClipMlp(cfg)
        self.layer_norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([ClipEncoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ClipVisionTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = ClipVisionEmbeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)  # sic: upstream spelling
        self.encoder = ClipEncoder(cfg)
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixel_values):
        """The last hidden state, before post_layernorm (CLIP applies that only to the pooled token; VLE to all)."""
        return self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))


class ClipVisionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.vision_model = ClipVisionTransformer(cfg)

    def forward(self, pixel_values):
        return self.vision_model(pixel_values)


# ----------------------------------------------------------------------------------------------------------------
# DeBERTa-v2/v3 text encoder (names as transformers' DebertaV2Model)


def log_bucket_position(relative, bucket_size, max_position):
    """DeBERTa's log-bucketed relative distance, evaluated in float32 like upstream so the buckets agree."""
    mid = bucket_size // 2
    sign = torch.sign(relative)
    inside = (relative < mid) & (relative > -mid)
    magnitude = torch.where(inside, torch.full_like(relative, mid - 1), relative.abs())
    log_ratio = torch.log(magnitude.to(torch.float32) / mid) / torch.log(
        torch.tensor((max_position - 1) / mid, dtype=torch.float32)
    )
    logged = torch.ceil(log_ratio * (mid - 1)) + mid
    return torch.where(magnitude <= mid, relative.to(torch.float32), logged * sign).to(torch.long)


class DebertaEmbeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.embedding_size, padding_idx=cfg.pad_token_id)
        if cfg.position_biased_input:
            self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.embedding_size)
        if cfg.type_vocab_size > 0:
            self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.embedding_size)
        if cfg.embedding_size != cfg.hidden_size:
            self.embed_proj = nn.Linear(cfg.embedding_size, cfg.hidden_size, bias=False)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.register_buffer("position_ids", torch.arange(cfg.max_position_embeddings).unsqueeze(0))

    def forward(self, input_ids, mask):
        x = self.word_embeddings(input_ids)
        if self.cfg.position_biased_input:
            x = x + self.position_embeddings(self.position_ids[:, : input_ids.shape[1]])
        if self.cfg.type_vocab_size > 0:
            # VLE never passes token_type_ids to the text tower: every token has type 0.
            x = x + self.token_type_embeddings.weight[0]
        if self.cfg.embedding_size != self.cfg.hidden_size:
            x = self.embed_proj(x)
        return self.LayerNorm(x) * mask.unsqueeze(2).to(x.dtype)


class DisentangledSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.num_attention_heads
        head_size = getattr(cfg, "attention_head_size", None) or cfg.hidden_size // cfg.num_attention_heads
        all_heads = head_size * self.heads
        self.query_proj = nn.Linear(cfg.hidden_size, all_heads)
        self.key_proj = nn.Linear(cfg.hidden_size, all_heads)
        self.value_proj = nn.Linear(cfg.hidden_size, all_heads)
        self.share_att_key = bool(cfg.share_att_key)
        self.pos_att_type = list(cfg.pos_att_type)
        self.relative_attention = bool(cfg.relative_attention)
        if self.relative_attention and not self.share_att_key:
            if "c2p" in self.pos_att_type:
                self.pos_key_proj = nn.Linear(cfg.hidden_size, all_heads)
            if "p2c" in self.pos_att_type:
                self.pos_query_proj = nn.Linear(cfg.hidden_size, all_heads)
        factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)
        self.scale = _float32_sqrt(head_size * factor)

    def forward(self, x, keep, rel_embeddings=None, c2p_index=None, p2c_index=None):
        """keep: bool [batch,1,L,L], True where query i may attend key j; *_index: long [L,L] into rel_embeddings."""
        q = _split_heads(self.query_proj(x), self.heads)
        k = _split_heads(self.key_proj(x), self.heads)
        v = _split_heads(self.value_proj(x), self.heads)
        scores = torch.matmul(q, k.transpose(-1, -2)) / self.scale
        if self.relative_attention:
            rel = rel_embeddings.unsqueeze(0)
            shape = (q.shape[0], q.shape[1], q.shape[2], q.shape[2])
            if "c2p" in self.pos_att_type:
                pos_key = _split_heads(self.key_proj(rel) if self.share_att_key else self.pos_key_proj(rel), self.heads)
                c2p = torch.matmul(q, pos_key.transpose(-1, -2))
                scores = scores + torch.gather(c2p, -1, c2p_index.expand(shape)) / self.scale
            if "p2c" in self.pos_att_type:
                pos_query = _split_heads(
                    self.query_proj(rel) if self.share_att_key else self.pos_query_proj(rel), self.heads
                )
                p2c = torch.matmul(k, pos_query.transpose(-1, -2))
                scores = scores + torch.gather(p2c, -1, p2c_index.expand(shape)).transpose(-1, -2) / self.scale
        # Masked softmax (upstream XSoftmax): masked entries get the float minimum, and rows of padding queries,
        # whose every entry is masked, come out as zeros rather than a uniform distribution.
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
        probs = torch.softmax(scores, dim=-1).masked_fill(~keep, 0.0)
        return _merge_heads(torch.matmul(probs, v))


class DebertaSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class DebertaAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = DisentangledSelfAttention(cfg)
        self.output = DebertaSelfOutput(cfg)

    def forward(self, x, keep, rel_embeddings, c2p_index, p2c_index):
        return self.output(self.self(x, keep, rel_embeddings, c2p_index, p2c_index), x)


class FeedForwardIn(nn.Module):
    """The feed-forward's first half, named as transformers' DebertaV2Intermediate and BertIntermediate alike."""

    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _activation(cfg.hidden_act)

    def forward(self, x):
        return self.act(self.dense(x))


class FeedForwardOut(nn.Module):
    """The feed-forward's second half with the residual and LayerNorm (DebertaV2Output, BertOutput)."""

    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class DebertaLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.attention = DebertaAttention(cfg)
        self.intermediate = FeedForwardIn(cfg)
        self.output = FeedForwardOut(cfg)

    def forward(self, x, keep, rel_embeddings, c2p_index, p2c_index):
        attended = self.attention(x, keep, rel_embeddings, c2p_index, p2c_index)
        return self.output(self.intermediate(attended), attended)


class DebertaConvLayer(nn.Module):
    """The convolution after the first layer that some DeBERTa-v2 sizes have (not v3)."""

    def __init__(self, cfg):
        super().__init__()
        size = cfg.conv_kernel_size
        self.act = _activation(cfg.conv_act)
        self.conv = nn.Conv1d(cfg.hidden_size, cfg.hidden_size, size, padding=(size - 1) // 2, groups=cfg.conv_groups)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, embedded, layer_output, mask):
        out = self.conv(embedded.transpose(1, 2)).transpose(1, 2)
        valid = mask.unsqueeze(-1).to(out.dtype)
        out = self.act(out * valid)
        return self.LayerNorm(layer_output + out) * valid


class DebertaEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.layer = nn.ModuleList([DebertaLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.relative_attention = bool(cfg.relative_attention)
        if self.relative_attention:
            max_relative = cfg.max_relative_positions
            if max_relative < 1:
                max_relative = cfg.max_position_embeddings
            buckets = cfg.position_buckets
            self.span = buckets if buckets > 0 else max_relative
            self.rel_embeddings = nn.Embedding(self.span * 2, cfg.hidden_size)
            # Relative positions depend only on i - j, so the bucketed (and clamped) indices into the relative
            # embeddings are tabulated once per distance here, in float32 torch exactly as upstream computes them;
            # the graph then only gathers from the table. Beyond the table's reach the clamped index no longer
            # changes, so clamping the distance keeps every sequence length exact.
            self.reach = max(1024, 2 * cfg.max_position_embeddings, self.span + 1)
            distance = torch.arange(-self.reach, self.reach + 1)
            if buckets > 0 and max_relative > 0:
                bucketed = log_bucket_position(distance, buckets, max_relative)
            else:
                bucketed = distance
            top = self.span * 2 - 1
            self.register_buffer("c2p_table", torch.clamp(bucketed + self.span, 0, top), persistent=False)
            self.register_buffer("p2c_table", torch.clamp(-bucketed + self.span, 0, top), persistent=False)
        norm = [part.strip() for part in str(cfg.norm_rel_ebd).lower().split("|")]
        self.norm_rel_embeddings = "layer_norm" in norm
        if self.norm_rel_embeddings:
            self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        if cfg.conv_kernel_size > 0:
            self.conv = DebertaConvLayer(cfg)

    def forward(self, embedded, mask):
        row = mask.unsqueeze(1).unsqueeze(2)
        keep = (row * row.transpose(-1, -2)).to(torch.bool)
        rel_embeddings = c2p_index = p2c_index = None
        if self.relative_attention:
            rel_embeddings = self.rel_embeddings.weight
            if self.norm_rel_embeddings:
                rel_embeddings = self.LayerNorm(rel_embeddings)
            positions = torch.arange(embedded.shape[1], device=embedded.device)
            distance = (positions.unsqueeze(1) - positions.unsqueeze(0)).clamp(-self.reach, self.reach) + self.reach
            c2p_index = self.c2p_table[distance]
            p2c_index = self.p2c_table[distance]
        x = embedded
        for index, layer in enumerate(self.layer):
            x = layer(x, keep, rel_embeddings, c2p_index, p2c_index)
            if index == 0 and hasattr(self, "conv"):
                x = self.conv(embedded, x, mask)
        return x


class DebertaV2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embeddings = DebertaEmbeddings(cfg)
        self.encoder = DebertaEncoder(cfg)

    def forward(self, input_ids, attention_mask):
        return self.encoder(self.embeddings(input_ids, attention_mask), attention_mask)


# ----------------------------------------------------------------------------------------------------------------
# Co-attention fusion (names as transformers' BertAttention/BertIntermediate/BertOutput inside VLE's BertCrossLayer)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_size = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x, context, additive_mask):
        q = _split_heads(self.query(x), self.heads)
        k = _split_heads(self.key(context), self.heads)
        v = _split_heads(self.value(context), self.heads)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_size)
        if additive_mask is not None:
            scores = scores + additive_mask
        return _merge_heads(torch.matmul(torch.softmax(scores, dim=-1), v))


class BertSelfOutput(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x, context, additive_mask):
        return self.output(self.self(x, context, additive_mask), x)


class CoAttentionLayer(nn.Module):
    """Self-attention over one stream, cross-attention to the other stream, feed-forward."""

    def __init__(self, cfg):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.crossattention = BertAttention(cfg)
        self.intermediate = FeedForwardIn(cfg)
        self.output = FeedForwardOut(cfg)

    def forward(self, x, other, own_mask, other_mask):
        attended = self.attention(x, x, own_mask)
        crossed = self.crossattention(attended, other, other_mask)
        return self.output(self.intermediate(crossed), crossed)


class Pooler(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


def additive_mask(mask, dtype=torch.float32):
    """[batch, L] of 1/0 -> [batch,1,1,L] of 0/-max, as transformers' get_extended_attention_mask."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


# ----------------------------------------------------------------------------------------------------------------
# VLE


class VLEModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        fusion = config.fusion
        self.vision_model = ClipVisionModel(config.vision)
        self.text_model = DebertaV2Model(config.text)
        self.text_projection_layer = nn.Linear(config.text.hidden_size, fusion.hidden_size)
        self.image_projection_layer = nn.Linear(config.vision.hidden_size, fusion.hidden_size)
        self.token_type_embeddings = nn.Embedding(fusion.num_token_types, fusion.hidden_size)
        self.cross_modal_image_layers = nn.ModuleList(
            [CoAttentionLayer(fusion) for _ in range(fusion.num_hidden_layers)]
        )
        self.cross_modal_text_layers = nn.ModuleList(
            [CoAttentionLayer(fusion) for _ in range(fusion.num_hidden_layers)]
        )
        self.cross_modal_image_pooler = Pooler(fusion.hidden_size)
        self.cross_modal_text_pooler = Pooler(fusion.hidden_size)

    def encode_image(self, pixel_values):
        """imageEncoder graph: everything that depends on the image alone."""
        hidden = self.vision_model(pixel_values)
        hidden = self.vision_model.vision_model.post_layernorm(hidden)
        return self.image_projection_layer(hidden) + self.token_type_embeddings.weight[1]

    def fuse(self, input_ids, attention_mask, image_embeds):
        """fusion graph up to the pooled output [batch, 2*hidden]."""
        text = self.text_projection_layer(self.text_model(input_ids, attention_mask))
        text = text + self.token_type_embeddings.weight[0]
        text_mask = additive_mask(attention_mask, text.dtype)
        # Every image token is valid: upstream's all-ones image mask adds zeros, so it is left out of the graph.
        x, y = text, image_embeds
        for text_layer, image_layer in zip(self.cross_modal_text_layers, self.cross_modal_image_layers):
            x, y = text_layer(x, y, text_mask, None), image_layer(y, x, None, text_mask)
        return torch.cat([self.cross_modal_text_pooler(x), self.cross_modal_image_pooler(y)], dim=-1)


class VLEForVQA(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        hidden = config.fusion.hidden_size
        self.vle = VLEModel(config)
        self.vqa_classifier = nn.Sequential(
            nn.Linear(hidden * 2, hidden * 2),
            nn.LayerNorm(hidden * 2),
            nn.GELU(),
            nn.Linear(hidden * 2, config.num_labels),
        )

    def forward(self, input_ids, pixel_values, attention_mask):
        """The unsplit forward in upstream's order (VLEModel.forward + VLEForVQA head), for checking the split."""
        vle = self.vle
        image_hidden = vle.vision_model(pixel_values)
        text_hidden = vle.text_model(input_ids, attention_mask)
        image_embeds = vle.image_projection_layer(vle.vision_model.vision_model.post_layernorm(image_hidden))
        text_embeds = vle.text_projection_layer(text_hidden)
        image_masks = torch.ones(image_embeds.shape[:2], dtype=torch.long)
        extend_image_masks = additive_mask(image_masks)
        extend_text_masks = additive_mask(attention_mask)
        image_embeds = image_embeds + vle.token_type_embeddings(torch.full_like(image_masks, 1))
        text_embeds = text_embeds + vle.token_type_embeddings(torch.zeros_like(attention_mask))
        x, y = text_embeds, image_embeds
        for text_layer, image_layer in zip(vle.cross_modal_text_layers, vle.cross_modal_image_layers):
            x1 = text_layer(x, y, extend_text_masks, extend_image_masks)
            y1 = image_layer(y, x, extend_image_masks, extend_text_masks)
            x, y = x1, y1
        pooled = torch.cat([vle.cross_modal_text_pooler(x), vle.cross_modal_image_pooler(y)], dim=-1)
        return self.vqa_classifier(pooled)


class ImageEncoderGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model.vle.encode_image(pixel_values)


class FusionGraph(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, image_embeds):
        return self.model.vqa_classifier(self.model.vle.fuse(input_ids, attention_mask, image_embeds))


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


def _read_state_dict(folder):
    safetensors_path = os.path.join(folder, "model.safetensors")
    bin_path = os.path.join(folder, "pytorch_model.bin")
    index_path = os.path.join(folder, "pytorch_model.bin.index.json")
    if os.path.exists(safetensors_path):
        try:
            from safetensors.torch import load_file
        except ImportError:
            load_file = None
        if load_file is not None:
            return load_file(safetensors_path)
        if not os.path.exists(bin_path):
            raise SystemExit(f"{safetensors_path} needs the safetensors package: pip install safetensors")
    if os.path.exists(bin_path):
        return torch.load(bin_path, map_location="cpu")
    if os.path.exists(index_path):
        with open(index_path, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(torch.load(os.path.join(folder, shard), map_location="cpu"))
        return state
    raise SystemExit(f"no pytorch_model.bin or model.safetensors in {folder}")


# Checkpoint keys the loader tolerates missing or unexpected (buffers recomputed in __init__), by suffix.
DROPPED_KEY_SUFFIXES = ("position_ids",)


def load_vle_checkpoint(folder):
    """Builds VLEForVQA from a checkpoint folder and loads its weights; every parameter must be in the file."""
    config = read_config(folder)
    state = _read_state_dict(folder)
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    # The CLIP position table of VLE checkpoints is stretched to the fine-tuning resolution (576 for base); trust
    # the weights over a config that may still carry the original 224.
    key = "vle.vision_model.vision_model.embeddings.position_embedding.weight"
    if key in state:
        grid = math.isqrt(state[key].shape[0] - 1)
        if grid * grid + 1 != state[key].shape[0]:
            raise SystemExit(f"{key} has {state[key].shape[0]} rows, not 1 + a square number of patches")
        size = grid * config.vision.patch_size
        if size != config.image_size:
            print(f"vision image_size {config.image_size} -> {size} (from the position embeddings)", file=sys.stderr)
            config.vision.image_size = size
    model = VLEForVQA(config)
    state = {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}
    result = model.load_state_dict(state, strict=False)
    # Upstream declares position_ids optional (_keys_to_ignore_on_load_missing); anything else must match.
    missing = [name for name in result.missing_keys if not name.endswith(DROPPED_KEY_SUFFIXES)]
    unexpected = [name for name in result.unexpected_keys if not name.endswith(DROPPED_KEY_SUFFIXES)]
    if missing or unexpected:
        raise SystemExit(
            "checkpoint does not match VLEForVQA:\n"
            f"  missing: {missing[:20]}{' ...' if len(missing) > 20 else ''}\n"
            f"  unexpected: {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}"
        )
    model.eval()
    return model, config


def resolve_checkpoint(checkpoint, revision=None):
    """A local folder as is; otherwise a Hugging Face hub id, downloaded with huggingface_hub. -> (folder, revision)."""
    from .hub import resolve_checkpoint as resolve

    return resolve(checkpoint, revision)


# ----------------------------------------------------------------------------------------------------------------
# Folder files


def preprocessor_config(image_size, upstream=None):
    """Every key the runtime reads, written out. Values of the checkpoint's own file win where it has them."""
    upstream = dict(upstream or {})

    def edge(value, fallback):
        if isinstance(value, dict):
            return int(value.get("shortest_edge") or value.get("height") or fallback)
        return int(value) if value else fallback

    shortest = edge(upstream.get("size"), image_size)
    crop = edge(upstream.get("crop_size"), image_size)
    if crop != image_size:
        raise SystemExit(
            f"preprocessor_config.json crops to {crop} but the vision tower's position embeddings fit {image_size}"
        )
    return {
        "image_processor_type": "CLIPImageProcessor",
        "do_convert_rgb": bool(upstream.get("do_convert_rgb", True)),
        "do_resize": bool(upstream.get("do_resize", True)),
        "size": {"shortest_edge": shortest},
        "resample": int(upstream.get("resample", 3)),
        "do_center_crop": bool(upstream.get("do_center_crop", True)),
        "crop_size": {"height": crop, "width": crop},
        "do_rescale": bool(upstream.get("do_rescale", True)),
        "rescale_factor": float(upstream.get("rescale_factor", 1 / 255)),
        "do_normalize": bool(upstream.get("do_normalize", True)),
        "image_mean": list(upstream.get("image_mean", CLIP_MEAN)),
        "image_std": list(upstream.get("image_std", CLIP_STD)),
    }


def tokenizer_side_files(do_lower_case=False, model_max_length=512):
    """tokenizer_config.json and special_tokens_map.json of a DeBERTa-v3 tokenizer."""
    special = {
        "bos_token": "[CLS]",
        "eos_token": "[SEP]",
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    config = dict(
        {"tokenizer_class": "DebertaV2Tokenizer", "do_lower_case": do_lower_case, "split_by_punct": False},
        **special,
        model_max_length=model_max_length,
        padding_side="right",
        truncation_side="right",
        clean_up_tokenization_spaces=False,
    )
    return {"tokenizer_config.json": config, "special_tokens_map.json": special}


def read_spm_proto(path):
    """The SentencePiece ModelProto of an spm.model file."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as handle:
        proto.ParseFromString(handle.read())
    return proto


# DeBERTa-v3's special tokens, in the order its tokenizer adds them: [PAD] [CLS] [SEP] [UNK] are pieces 0-3 of the
# spm.model (control and unknown pieces), [MASK] is added after the last piece (128000 in hfl/vle-*).
SPM_SPECIAL_PIECES = ("[PAD]", "[CLS]", "[SEP]", "[UNK]")
SPM_MASK_TOKEN = "[MASK]"


def spm_tokenizer_json(spm_path, do_lower_case=False, added_tokens=None):
    """tokenizer.json that encodes like upstream's SentencePiece DebertaV2Tokenizer, from the spm.model proto.

    Built with transformers' `SpmConverter.build_tokenizer_from_spm_proto`, which follows the model's own normalizer
    spec: the `Precompiled` normalizer with the model's charsmap (DeBERTa-v3's is nmt_nfkc: NFKC plus SentencePiece's
    whitespace and control-character mapping), SentencePiece's whitespace rules (extra spaces removed, dummy prefix,
    `▁`) and the model's byte_fallback. Not `DebertaV2TokenizerFast`: in transformers 5 it rebuilds the normalizer as
    Replace/NFC/Strip and drops the charsmap, so full-width `？`, `ﬁ`, `①`, U+00A0, U+3000 and the like come out as
    other pieces than SentencePiece gives. `legacy=True` prefixes every stretch between special tokens with `▁`, as
    the slow tokenizer's `sp_model.encode` does for each.
    """
    try:
        from tokenizers import AddedToken, normalizers, processors
        from transformers.convert_slow_tokenizer import SpmConverter
    except ImportError:
        raise SystemExit(
            "converting spm.model to tokenizer.json needs transformers, tokenizers, sentencepiece and protobuf: "
            "pip install transformers sentencepiece protobuf"
        )
    proto = read_spm_proto(spm_path)
    vocab = [(piece.piece, piece.score) for piece in proto.pieces]
    tokenizer = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    if tokenizer is None:
        raise SystemExit(f"{spm_path} has no pieces")
    if do_lower_case:
        # The slow tokenizer lowercases the text before SentencePiece sees it.
        tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), tokenizer.normalizer])
    for token in SPM_SPECIAL_PIECES:
        if tokenizer.token_to_id(token) is None:
            raise SystemExit(f"{spm_path} has no {token} piece: not a DeBERTa-v3 SentencePiece model")
    tokenizer.add_special_tokens([AddedToken(token, normalized=False, special=True) for token in SPM_SPECIAL_PIECES])
    tokenizer.add_special_tokens([AddedToken(SPM_MASK_TOKEN, normalized=False, special=True)])
    for token, index in (added_tokens or {}).items():
        if tokenizer.token_to_id(token) != index:
            raise SystemExit(
                f"added_tokens.json gives {token} id {index}, the conversion {tokenizer.token_to_id(token)}"
            )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    tokenizer_json = json.loads(tokenizer.to_str())
    # SentencePiece's byte fallback: an unknown character becomes the <0xXX> pieces of its UTF-8 bytes.
    tokenizer_json["model"]["byte_fallback"] = bool(proto.trainer_spec.byte_fallback)
    return tokenizer_json


def convert_spm_tokenizer(folder):
    """tokenizer.json and its side files from the checkpoint's spm.model (see spm_tokenizer_json).

    spm.model wins over a tokenizer.json shipped beside it: one saved by transformers 5 lacks the SentencePiece
    normalization map, so its ids differ from upstream's. A checkpoint with a tokenizer.json only uses it as is.
    """
    upstream = {}
    path = os.path.join(folder, "tokenizer_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            upstream = json.load(handle)
    do_lower_case = bool(upstream.get("do_lower_case", False))
    if not os.path.exists(os.path.join(folder, "spm.model")):
        if not os.path.exists(os.path.join(folder, "tokenizer.json")):
            raise SystemExit(f"{folder} has neither spm.model nor tokenizer.json")
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as handle:
            tokenizer_json = json.load(handle)
    else:
        added_tokens = None
        path = os.path.join(folder, "added_tokens.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                added_tokens = json.load(handle)
        tokenizer_json = spm_tokenizer_json(
            os.path.join(folder, "spm.model"), do_lower_case=do_lower_case, added_tokens=added_tokens
        )
    files = tokenizer_side_files(do_lower_case=do_lower_case)
    files["tokenizer.json"] = tokenizer_json
    return files


# ----------------------------------------------------------------------------------------------------------------
# Export


def check_split(model, pixel_values, input_ids, attention_mask, tolerance=1e-5):
    """The two graphs chained must give what the unsplit forward gives."""
    with torch.no_grad():
        whole = model(input_ids, pixel_values, attention_mask)
        embeds = ImageEncoderGraph(model)(pixel_values)
        split = FusionGraph(model)(input_ids, attention_mask, embeds)
    difference = (whole - split).abs().max().item()
    if difference > tolerance:
        raise AssertionError(f"split graphs differ from the unsplit forward by {difference}")
    return difference, embeds


def _export_graph(module, args, path, input_names, output_names, dynamic_axes):
    export_graph(module, args, path, OPSET, input_names, output_names, dynamic_axes)


def quantize_graphs(out, graphs, log=print):
    """Dynamic int8 quantization of every graph into onnx/NAME.int8.onnx, listed under variants.int8."""
    for graph in graphs.values():
        target = graph["file"][: -len(".onnx")] + ".int8.onnx"
        started = time.time()
        quantize_graph(os.path.join(out, graph["file"]), os.path.join(out, target))
        graph["variants"] = {"int8": target}
        log(f"{target} quantized in {time.time() - started:.1f} s")
    return graphs


def require_onnxruntime_for_int8():
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        raise SystemExit("--int8 needs onnxruntime's quantization tools: pip install onnxruntime")


def example_inputs(config):
    """Tracing inputs: batch 2 and a padded row, so the traced graphs keep batch and sequence symbolic and the mask
    is exercised."""
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(2, config.vision.num_channels, config.image_size, config.image_size, generator=generator)
    input_ids = torch.randint(4, config.text.vocab_size, (2, 7), generator=generator)
    input_ids[:, 0] = 1
    input_ids[0, 6] = 2
    input_ids[1, 4:] = torch.tensor([2, 0, 0])
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    return pixel_values, input_ids, attention_mask


def export_graphs(model, config, out, inputs, image_embeds, log=print, export=None):
    """Writes the two graphs into out/onnx; returns the manifest's graphs.

    inputs: example_inputs(config); export: replaces `_export_graph` (same arguments), as the graph templates
    (templates.py) do."""
    export = export or _export_graph
    pixel_values, input_ids, attention_mask = inputs
    started = time.time()
    export(
        ImageEncoderGraph(model),
        (pixel_values,),
        os.path.join(out, IMAGE_ENCODER_FILE),
        ["pixel_values"],
        ["image_embeds"],
        {"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
    )
    log(f"imageEncoder exported in {time.time() - started:.1f} s")
    started = time.time()
    export(
        FusionGraph(model),
        (input_ids, attention_mask, image_embeds),
        os.path.join(out, FUSION_FILE),
        ["input_ids", "attention_mask", "image_embeds"],
        ["logits"],
        {
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "image_embeds": {0: "batch"},
            "logits": {0: "batch"},
        },
    )
    log(f"fusion exported in {time.time() - started:.1f} s")
    return graph_specs(config)


def graph_specs(config):
    """Manifest entries of the two graphs (names, dtypes, shapes; symbolic dims as strings)."""
    size = config.image_size
    tokens = config.num_image_tokens
    width = config.fusion.hidden_size
    return {
        "imageEncoder": {
            "file": IMAGE_ENCODER_FILE,
            "inputs": [tensor_spec("pixel_values", "float32", ["batch", config.vision.num_channels, size, size])],
            "outputs": [tensor_spec("image_embeds", "float32", ["batch", tokens, width])],
        },
        "fusion": {
            "file": FUSION_FILE,
            "inputs": [
                tensor_spec("input_ids", "int64", ["batch", "sequence"]),
                tensor_spec("attention_mask", "int64", ["batch", "sequence"]),
                tensor_spec("image_embeds", "float32", ["batch", tokens, width]),
            ],
            "outputs": [tensor_spec("logits", "float32", ["batch", config.num_labels])],
        },
    }


def export_vle_folder(model, config, out, name, source, preprocessor, tokenizer_files, int8=False, log=print):
    """Writes a complete `vle-vqa` model folder (models/README.md) from a VLEForVQA in eval mode."""
    if int8:
        require_onnxruntime_for_int8()
    model.eval()
    os.makedirs(out, exist_ok=True)
    inputs = example_inputs(config)
    difference, image_embeds = check_split(model, *inputs)
    log(f"split graphs match the unsplit forward (max |difference| {difference:.2e})")
    graphs = export_graphs(model, config, out, inputs, image_embeds, log)
    if int8:
        quantize_graphs(out, graphs, log)

    write_json(os.path.join(out, "config.json"), config.to_export_dict())
    write_json(os.path.join(out, "preprocessor_config.json"), preprocessor)
    for file_name, value in tokenizer_files.items():
        write_json(os.path.join(out, file_name), value)
    return write_manifest(out, KIND, name, source, graphs, OPSET)


def export_vle_cli(args):
    """`models/export.py vle`: args has .checkpoint, .out, .revision, .int8, .name."""
    if getattr(args, "int8", False):
        require_onnxruntime_for_int8()
    folder, revision = resolve_checkpoint(args.checkpoint, getattr(args, "revision", None))
    print(f"loading {folder}")
    model, config = load_vle_checkpoint(folder)
    upstream_preprocessor = None
    path = os.path.join(folder, "preprocessor_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            upstream_preprocessor = json.load(handle)
    preprocessor = preprocessor_config(config.image_size, upstream_preprocessor)
    tokenizer_files = convert_spm_tokenizer(folder)
    name = getattr(args, "name", None) or os.path.basename(os.path.normpath(args.checkpoint))
    return export_vle_folder(
        model,
        config,
        args.out,
        name,
        {"checkpoint": args.checkpoint, "revision": revision},
        preprocessor,
        tokenizer_files,
        int8=bool(getattr(args, "int8", False)),
    )
