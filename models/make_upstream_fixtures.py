#!/usr/bin/env python3
"""Writes the upstream parity fixtures that test/upstream/ checks the TypeScript runtime against.

    npm run fixtures:upstream                      # .venv with models/requirements.txt, then every part
    .venv/bin/python models/make_upstream_fixtures.py [--only PART ...] [--out DIR] [--base]

Parts (models/vqa_llm_upstream/<part>.py), each written to <out>/<part>/ and ended by done.json:
  blip        transformers' BlipForConditionalGeneration, random weights (tied and untied output layer), saved
              as the hub does (.safetensors and .bin), exported, with transformers' own outputs
  vle_towers  the exporter's CLIP and DeBERTa-v2 towers against transformers' CLIPVisionModel and DebertaV2Model
  vle_whole   the committed iflytek/VLE checkpoint and reference outputs (test/fixtures/upstream/vle-small),
              exported
  tokenizers  the project's tokenizers against transformers' DebertaV2Tokenizer and BertTokenizer (slow)
  checkpoints safetensors and PyTorch .bin files of every dtype and layout, sharded, legacy and hostile ones, with
              what torch and safetensors read from them, for the TypeScript checkpoint readers
  int8        the exporter's dynamically quantized graphs (--int8) of the tiny models, with op counts and onnxruntime
              Python's outputs; the runtime loads them with its int8 option
  convert     upstream-format checkpoints (good, fine-tuned and bad ones), the graph templates of the test
              configurations, the exporter's folders and their outputs, for the TypeScript converter (docs/templates.md)
  gguf        tiny GGUF language models with random weights (and bad ones) for the embedded LLM, made with the
              gguf package (models/make_tiny_gguf.py)

--base uses the real base dimensions instead of the small CI configurations (minutes, gigabytes; not in CI).
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

PARTS = ("blip", "vle_towers", "vle_whole", "checkpoints", "tokenizers", "int8", "convert", "gguf")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=PARTS, help="make these parts only")
    parser.add_argument("--out", default=os.path.join(REPO, "test", "output", "upstream"))
    parser.add_argument("--base", action="store_true", help="real base dimensions (slow; a documented check)")
    args = parser.parse_args(argv)
    import torch
    import transformers

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "python": sys.version.split()[0]}
    print(f"upstream fixtures with {versions}", flush=True)
    for part in args.only or PARTS:
        started = time.time()
        folder = os.path.join(args.out, part)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        module = importlib.import_module(f"vqa_llm_upstream.{part}")
        module.make(folder, REPO, base=args.base, log=lambda *items: print(f"{part}:", *items, flush=True))
        with open(os.path.join(folder, "done.json"), "w", encoding="utf-8") as handle:
            json.dump({"versions": versions, "base": args.base, "seconds": round(time.time() - started, 1)}, handle)
        print(f"{part}: done in {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main()
