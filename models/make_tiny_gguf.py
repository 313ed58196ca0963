#!/usr/bin/env python3
"""Writes GGUF language models with random weights for the embedded LLM's tests and benchmark.

    .venv/bin/python models/make_tiny_gguf.py [--out DIR]            # tiny models + bad inputs (test/output/gguf)
    .venv/bin/python models/make_tiny_gguf.py --full-size [--out DIR] # the default model's real dimensions

Tiny (`tiny.gguf`, well under 2 MB): a 2-layer llama-architecture model, width 64, with a SentencePiece-style
vocabulary of ~400 tokens (every byte as a byte token, so that any text, JSON included, can be spelt) and a ChatML
chat template. Random weights make it say nonsense, which is the point: the tests show that the JSON-schema grammar
alone makes the reply parse. Beside it, the bad inputs the loader must refuse with a reason: `no-template.gguf` (the
same model without a chat template, as base models ship), `unknown-arch.gguf` (an architecture llama.cpp does not
know), `truncated.gguf` (the first part of tiny.gguf) and `not-gguf.gguf` (random bytes).

--full-size (`full-size/qwen2.5-1.5b-instruct-stand-in.gguf`, ~1 GB, not committed): Qwen2.5-1.5B-Instruct's real
dimensions and architecture (qwen2: 28 layers, width 1536, 12 query and 2 key/value heads, FFN 8960, q/k/v biases,
tied embeddings, vocabulary 151936) with random weights, quantized as Q4_0 (token embeddings Q8_0), the nearest
types this gguf package can write to the published Q4_K_M. Its speed is the real model's speed; its words are not.
Its vocabulary is synthetic (the words of this repository's text, with the prefixes SentencePiece merges them
through, then filler pieces), so English prompts tokenize into about as many tokens as with Qwen's own tokenizer.
"""

import argparse
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# ChatML, as Qwen's and many small instruct models' templates are; node-llama-cpp recognises it.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# llama.cpp's token types (gguf.TokenType): 1 normal, 2 unknown, 3 control, 6 byte.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6
SPECIAL = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL)]
IM_END = 4

TINY = {"dim": 64, "layers": 2, "heads": 4, "kv_heads": 2, "ff": 128, "context": 4096}
# Qwen/Qwen2.5-1.5B-Instruct's config.json.
QWEN25_15B = {"dim": 1536, "layers": 28, "heads": 12, "kv_heads": 2, "ff": 8960, "context": 32768, "vocab": 151936}


def tiny_pieces():
    """A small SentencePiece vocabulary: printable ASCII, '▁' + each letter, a few words the prompt and JSON use."""
    pieces = ["▁"] + [chr(code) for code in range(33, 127)]
    pieces += ["▁" + chr(code) for code in range(97, 123)]
    words = ["the", "a", "is", "of", "man", "hat", "boat", "fish", "pole", "photo", "answer", "short", "Answer", "caption", "question", "yes", "no"]
    pieces += ["▁" + word for word in words] + ['{"', '":', '"}', '",', "shortAnswer", "answer"]
    return list(dict.fromkeys(pieces))


def repository_words(limit):
    """Words of this repository's own text, most frequent first: a stand-in vocabulary that splits English prompts
    into about as many tokens as a real 150k vocabulary does."""
    counts = {}
    for folder in ("prompts", "chains", "docs", "src"):
        for base, _dirs, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if not name.endswith((".ts", ".md")):
                    continue
                with open(os.path.join(base, name), encoding="utf-8", errors="ignore") as handle:
                    for word in re.findall(r"[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]", handle.read()):
                        counts[word] = counts.get(word, 0) + 1
    return [word for word, _ in sorted(counts.items(), key=lambda item: -item[1])][:limit]


def full_size_pieces(vocab_size):
    budget = vocab_size - len(SPECIAL) - 256
    pieces = dict.fromkeys(tiny_pieces())
    for word in repository_words(60_000):
        if len(pieces) >= budget:
            break
        for variant in ("▁" + word, word, "▁" + word.lower(), "▁" + word.capitalize()):
            # SentencePiece builds a word by merging adjacent pieces: every prefix must be a piece for it to form.
            for end in range(2, len(variant) + 1):
                pieces.setdefault(variant[:end])
    pieces = list(pieces)[:budget]
    pieces += [f"<filler_{index}>" for index in range(budget - len(pieces))]
    return pieces


def add_vocabulary(writer, pieces, chat_template):
    tokens = [text for text, _ in SPECIAL] + [f"<0x{byte:02X}>" for byte in range(256)] + pieces
    types = [kind for _, kind in SPECIAL] + [BYTE] * 256 + [NORMAL] * len(pieces)
    # SentencePiece prefers the piece with the highest score: longer pieces score higher, so words win over letters.
    scores = [0.0] * (len(SPECIAL) + 256) + [float(len(piece)) - index * 1e-6 for index, piece in enumerate(pieces)]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(IM_END)
    writer.add_add_bos_token(False)
    writer.add_add_eos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    return len(tokens)


def random_matrix(rng, rows, columns, scale):
    return (rng.standard_normal((rows, columns), dtype=np.float32) * scale).astype(np.float32)


def write_model(path, architecture, dims, pieces, chat_template, seed, quantize=None, biases=False, tied=False, name="vqa-llm tiny"):
    """One GGUF file. `quantize(name, array)` returns (data, type) for weight matrices, or None for float32."""
    import gguf

    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(path, architecture)
    writer.add_name(name)
    writer.add_license("apache-2.0")
    head_dim = dims["dim"] // dims["heads"]
    writer.add_context_length(dims["context"])
    writer.add_embedding_length(dims["dim"])
    writer.add_block_count(dims["layers"])
    writer.add_feed_forward_length(dims["ff"])
    writer.add_head_count(dims["heads"])
    writer.add_head_count_kv(dims["kv_heads"])
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(1_000_000.0 if architecture == "qwen2" else 10_000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0 if quantize else gguf.LlamaFileType.ALL_F32)
    vocab = add_vocabulary(writer, pieces, chat_template)

    def matrix(tensor_name, rows, columns, scale=0.02):
        data = random_matrix(rng, rows, columns, scale)
        if quantize is None:
            writer.add_tensor(tensor_name, data)
            return
        quantized, kind = quantize(tensor_name, data)
        writer.add_tensor(tensor_name, quantized, raw_shape=quantized.shape, raw_dtype=kind)

    def vector(tensor_name, size, value=None):
        data = np.full(size, value, dtype=np.float32) if value is not None else (rng.standard_normal(size, dtype=np.float32) * 0.02)
        writer.add_tensor(tensor_name, data.astype(np.float32))

    kv_dim = dims["kv_heads"] * head_dim
    matrix("token_embd.weight", vocab, dims["dim"])
    for layer in range(dims["layers"]):
        prefix = f"blk.{layer}"
        vector(f"{prefix}.attn_norm.weight", dims["dim"], 1.0)
        matrix(f"{prefix}.attn_q.weight", dims["dim"], dims["dim"])
        matrix(f"{prefix}.attn_k.weight", kv_dim, dims["dim"])
        matrix(f"{prefix}.attn_v.weight", kv_dim, dims["dim"])
        if biases:
            vector(f"{prefix}.attn_q.bias", dims["dim"])
            vector(f"{prefix}.attn_k.bias", kv_dim)
            vector(f"{prefix}.attn_v.bias", kv_dim)
        matrix(f"{prefix}.attn_output.weight", dims["dim"], dims["dim"])
        vector(f"{prefix}.ffn_norm.weight", dims["dim"], 1.0)
        matrix(f"{prefix}.ffn_gate.weight", dims["ff"], dims["dim"])
        matrix(f"{prefix}.ffn_up.weight", dims["ff"], dims["dim"])
        matrix(f"{prefix}.ffn_down.weight", dims["dim"], dims["ff"])
    vector("output_norm.weight", dims["dim"], 1.0)
    if not tied:
        matrix("output.weight", vocab, dims["dim"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "vocab": vocab, "architecture": architecture, **dims}


def make_tiny(out, log=print):
    """The tiny model and the bad inputs, with summary.json describing them."""
    os.makedirs(out, exist_ok=True)
    pieces = tiny_pieces()
    summary = {"tiny": write_model(os.path.join(out, "tiny.gguf"), "llama", TINY, pieces, CHATML_TEMPLATE, seed=7)}
    summary["noTemplate"] = write_model(os.path.join(out, "no-template.gguf"), "llama", TINY, pieces, None, seed=7)
    summary["unknownArch"] = write_model(os.path.join(out, "unknown-arch.gguf"), "vqa-llm-unknown", TINY, pieces, CHATML_TEMPLATE, seed=7)
    with open(os.path.join(out, "tiny.gguf"), "rb") as handle:
        whole = handle.read()
    with open(os.path.join(out, "truncated.gguf"), "wb") as handle:
        handle.write(whole[: len(whole) // 2])
    with open(os.path.join(out, "not-gguf.gguf"), "wb") as handle:
        handle.write(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    summary["imEndToken"] = IM_END
    summary["chatTemplate"] = CHATML_TEMPLATE
    with open(os.path.join(out, "summary.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=2)
    log(f"tiny.gguf: {summary['tiny']['bytes']} bytes, vocabulary {summary['tiny']['vocab']}")
    if summary["tiny"]["bytes"] >= 2 * 1024 * 1024:
        raise SystemExit("tiny.gguf grew past 2 MB")
    return summary


def make_full_size(out, log=print):
    import gguf

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "qwen2.5-1.5b-instruct-stand-in.gguf")

    def quantize(tensor_name, data):
        kind = gguf.GGMLQuantizationType.Q8_0 if tensor_name == "token_embd.weight" else gguf.GGMLQuantizationType.Q4_0
        return gguf.quants.quantize(data, kind), kind

    info = write_model(
        path,
        "qwen2",
        QWEN25_15B,
        full_size_pieces(QWEN25_15B["vocab"]),
        CHATML_TEMPLATE,
        seed=11,
        quantize=quantize,
        biases=True,
        tied=True,
        name="Qwen2.5-1.5B-Instruct stand-in (random weights)",
    )
    with open(os.path.join(out, "qwen2.5-1.5b-instruct-stand-in.json"), "w", encoding="utf-8") as handle:
        json.dump({**info, "quantization": "Q4_0 (token embeddings Q8_0)", "of": "Qwen/Qwen2.5-1.5B-Instruct"}, handle, indent=2)
    log(f"{path}: {info['bytes']} bytes")
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-size", action="store_true", help="the default model's real dimensions (~1 GB, a minute or two)")
    parser.add_argument("--out", help="output folder (default test/output/gguf, or models/full-size with --full-size)")
    args = parser.parse_args(argv)
    if args.full_size:
        make_full_size(args.out or os.path.join(REPO, "models", "full-size"))
    else:
        make_tiny(args.out or os.path.join(REPO, "test", "output", "gguf"))


if __name__ == "__main__":
    sys.exit(main())
