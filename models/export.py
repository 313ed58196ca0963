#!/usr/bin/env python3
"""Exports a Hugging Face checkpoint into a vqa-llm model folder (format: models/README.md).

    python models/export.py blip --checkpoint Salesforce/blip-image-captioning-base --out models/blip-base [--int8]
    python models/export.py vle  --checkpoint hfl/vle-base-for-vqa --out models/vle-base [--int8]

--checkpoint is a local folder (config.json + model.safetensors or pytorch_model.bin + tokenizer files) or a hub
id, which is downloaded with huggingface_hub when that package is installed (pip install -r models/requirements.txt).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def add_common(parser):
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder or Hugging Face hub id")
    parser.add_argument("--out", required=True, help="model folder to write")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit); recorded in the manifest")
    parser.add_argument("--name", help="model name in the manifest (default: the checkpoint's last path part)")
    parser.add_argument("--int8", action="store_true", help="also write dynamically quantized onnx/*.int8.onnx")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    families = parser.add_subparsers(dest="family", required=True)
    add_common(families.add_parser("blip", help="BLIP image captioning (BlipForConditionalGeneration)"))
    add_common(families.add_parser("vle", help="VLE visual question answering (VLEForVQA)"))
    args = parser.parse_args(argv)
    # Each family is imported only when asked for: their dependencies differ.
    if args.family == "blip":
        from vqa_llm_export.blip import export_blip_cli

        export_blip_cli(args)
    else:
        from vqa_llm_export.vle import export_vle_cli

        export_vle_cli(args)


if __name__ == "__main__":
    main()
