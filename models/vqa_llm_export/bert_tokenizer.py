"""A BERT WordPiece fast-tokenizer (tokenizer.json and companions) written from a vocabulary list.

Used for the tiny test models' hand-made vocabularies, the full-size stand-in's synthetic one, and checkpoints that
ship only vocab.txt. The JSON layout is the one the `tokenizers` library saves for bert-base-uncased, which
transformers.js loads offline.
"""

import os

from .manifest import write_json

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def read_vocab(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.rstrip("\n") != ""]


def tokenizer_json(vocab):
    ids = {token: index for index, token in enumerate(vocab)}
    if len(ids) != len(vocab):
        raise ValueError("duplicate tokens in the vocabulary")
    for token in SPECIAL_TOKENS:
        if token not in ids:
            raise ValueError(f"the vocabulary lacks {token}")
    added = [
        {"id": ids[token], "content": token, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for token in sorted(SPECIAL_TOKENS, key=lambda t: ids[t])
    ]

    def special(token, type_id=0):
        return {"SpecialToken": {"id": token, "type_id": type_id}}

    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                       "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [special("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, special("[SEP]")],
            "pair": [special("[CLS]"), {"Sequence": {"id": "A", "type_id": 0}}, special("[SEP]"),
                     {"Sequence": {"id": "B", "type_id": 1}}, special("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [ids["[CLS]"]], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [ids["[SEP]"]], "tokens": ["[SEP]"]},
            },
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }


def write_bert_tokenizer(folder, vocab, only_missing=False, model_max_length=512):
    """tokenizer.json, tokenizer_config.json, special_tokens_map.json and vocab.txt; only_missing keeps files
    already there (a checkpoint's own tokenizer_config.json, for instance)."""
    os.makedirs(folder, exist_ok=True)
    files = {
        "tokenizer.json": tokenizer_json(vocab),
        "tokenizer_config.json": {
            "tokenizer_class": "BertTokenizer",
            "processor_class": "BlipProcessor",
            "do_lower_case": True,
            "tokenize_chinese_chars": True,
            "strip_accents": None,
            "clean_up_tokenization_spaces": True,
            "model_max_length": model_max_length,
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        },
        "special_tokens_map.json": {
            "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
            "mask_token": "[MASK]",
        },
    }
    for name, content in files.items():
        path = os.path.join(folder, name)
        if only_missing and os.path.exists(path):
            continue
        write_json(path, content)
    vocab_path = os.path.join(folder, "vocab.txt")
    if not (only_missing and os.path.exists(vocab_path)):
        with open(vocab_path, "w", encoding="utf-8") as handle:
            handle.write("".join(token + "\n" for token in vocab))
