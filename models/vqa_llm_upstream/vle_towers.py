"""VLE's two towers against transformers itself: the exporter's CLIP vision tower against `CLIPVisionModel`, its
DeBERTa-v2/v3 text tower against `DebertaV2Model`, with the same random weights.

transformers' models are random-initialised (seeded, weights spread), their state dicts loaded with strict=True into
the exporter's modules (the names are upstream's: a real VLE checkpoint holds them under vision_model. and
text_model.), each exporter tower exported to ONNX the way the exporter exports VLE, and transformers' outputs written
for the TypeScript test to compare with what onnxruntime-node computes from those graphs. The Python-side
differences are recorded too (report.json), so that a divergence says whether it lies in the modules or the runtime.

Texts cover the DeBERTa-v3 settings of hfl/vle-*: relative attention with log buckets, shared attention keys,
layer-normed relative embeddings, p2c|c2p, no absolute positions; lengths from 3 to well past the bucket range,
and a padded batch.
"""

import json
import math
import os

import numpy as np
import torch
from torch import nn

from vqa_llm_export import vle

SEED = 20261201


def configs(base):
    from transformers import CLIPVisionConfig, DebertaV2Config

    if base:
        vision = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                  num_attention_heads=12, image_size=576, patch_size=16)
        text = DebertaV2Config(vocab_size=128100, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                               num_attention_heads=12, max_position_embeddings=512, relative_attention=True,
                               position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
                               pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1,
                               type_vocab_size=0, layer_norm_eps=1e-7)
    else:
        vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  image_size=48, patch_size=8)
        text = DebertaV2Config(vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                               num_attention_heads=4, max_position_embeddings=512, relative_attention=True,
                               position_buckets=16, norm_rel_ebd="layer_norm", share_att_key=True,
                               pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1,
                               type_vocab_size=0, layer_norm_eps=1e-7)
    return vision, text


def spread(model, seed):
    """Weights wide enough that differences show (transformers' 0.02 init makes every layer nearly the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2:
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) / math.sqrt(fan_in))
            elif "LayerNorm" in name or "layer_norm" in name or "layrnorm" in name or "layernorm" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.2 + (1.0 if name.endswith("weight") else 0.0))
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return model.eval()


def load_exactly(module, state):
    """strict loading, but for the position_ids buffers the exporter registers and transformers 5 does not store."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.endswith("position_ids")]
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"


def tensor_json(array, digits=9):
    array = np.asarray(array, dtype=np.float64)
    return {"dims": list(array.shape), "data": [float(f"{value:.{digits}g}") for value in array.reshape(-1)]}


class _TextTower(nn.Module):
    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, input_ids, attention_mask):
        return self.tower(input_ids, attention_mask)


class _VisionTower(nn.Module):
    """Both what VLE uses (post_layernorm over every token) and CLIP's raw last hidden state."""

    def __init__(self, tower):
        super().__init__()
        self.tower = tower

    def forward(self, pixel_values):
        hidden = self.tower(pixel_values)
        return hidden, self.tower.vision_model.post_layernorm(hidden)


def make(out, repo, base=False, log=print):
    from transformers import CLIPVisionModel, DebertaV2Model

    torch.manual_seed(SEED)
    vision_config, text_config = configs(base)
    hf_vision = spread(CLIPVisionModel(vision_config), SEED)
    hf_text = spread(DebertaV2Model(text_config), SEED + 1)
    ours = vle.VLEConfig({"vision_config": vision_config.to_dict(), "text_config": text_config.to_dict(),
                          "id2label": {"0": "unused"}})
    vision_tower = vle.ClipVisionModel(ours.vision)
    # transformers 5's CLIPVisionModel names its parameters without the "vision_model." that 4.x (and so a VLE
    # checkpoint, under its own "vision_model.") has.
    vision_state = {key if key.startswith("vision_model.") else f"vision_model.{key}": value
                    for key, value in hf_vision.state_dict().items()}
    load_exactly(vision_tower, vision_state)
    text_tower = vle.DebertaV2Model(ours.text)
    load_exactly(text_tower, hf_text.state_dict())
    vision_tower.eval()
    text_tower.eval()

    generator = torch.Generator().manual_seed(SEED + 2)
    size = vision_config.image_size
    pixel_values = torch.randn((2, 3, size, size), generator=generator)
    lengths = (3, 17, 60, 230) if not base else (3, 17, 60, 230, 500)
    texts = []
    for length in lengths:
        ids = torch.randint(4, text_config.vocab_size, (1, length), generator=generator)
        ids[0, 0], ids[0, -1] = 1, 2  # [CLS] ... [SEP]
        texts.append((ids, torch.ones_like(ids)))
    # A padded batch: the shorter row's padding must not change its tokens' outputs.
    padded = torch.zeros((2, 40), dtype=torch.long)
    mask = torch.zeros((2, 40), dtype=torch.long)
    padded[0, :40] = torch.randint(4, text_config.vocab_size, (40,), generator=generator)
    padded[1, :25] = torch.randint(4, text_config.vocab_size, (25,), generator=generator)
    mask[0, :40] = 1
    mask[1, :25] = 1
    texts.append((padded, mask))

    report = {"vision": {}, "text": []}
    reference = {"pixelValues": tensor_json(pixel_values), "texts": []}
    with torch.no_grad():
        upstream = hf_vision(pixel_values=pixel_values)
        hidden, normed = _VisionTower(vision_tower)(pixel_values)
        upstream_normed = hf_vision.post_layernorm(upstream.last_hidden_state)
        report["vision"] = {
            "lastHiddenState": float((hidden - upstream.last_hidden_state).abs().max()),
            "postLayernormAllTokens": float((normed - upstream_normed).abs().max()),
            "pooled": float((normed[:, 0] - upstream.pooler_output).abs().max()),
        }
        reference["lastHiddenState"] = tensor_json(upstream.last_hidden_state)
        reference["postLayernorm"] = tensor_json(upstream_normed)
        for ids, attention in texts:
            expected = hf_text(input_ids=ids, attention_mask=attention).last_hidden_state
            got = text_tower(ids, attention)
            valid = attention.bool()
            report["text"].append({"shape": list(ids.shape), "maxDifference": float((got - expected)[valid].abs().max())})
            reference["texts"].append({"inputIds": ids.tolist(), "attentionMask": attention.tolist(),
                                       "lastHiddenState": tensor_json(expected)})
    log(f"python-side max |difference|: vision {report['vision']}, text {[entry['maxDifference'] for entry in report['text']]}")
    for key, value in report["vision"].items():
        assert value < 1e-4, f"exporter's CLIP tower differs from transformers ({key}: {value})"
    for entry in report["text"]:
        assert entry["maxDifference"] < 1e-4, f"exporter's DeBERTa tower differs from transformers: {entry}"

    vle._export_graph(_VisionTower(vision_tower), (pixel_values[:1],), os.path.join(out, "vision_tower.onnx"),
                      ["pixel_values"], ["last_hidden_state", "post_layernorm"],
                      {"pixel_values": {0: "batch"}, "last_hidden_state": {0: "batch"}, "post_layernorm": {0: "batch"}})
    vle._export_graph(_TextTower(text_tower), texts[1], os.path.join(out, "text_tower.onnx"),
                      ["input_ids", "attention_mask"], ["last_hidden_state"],
                      {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                       "last_hidden_state": {0: "batch", 1: "sequence"}})
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as handle:
        json.dump(reference, handle)
    with open(os.path.join(out, "report.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
