#!/usr/bin/env python3
"""Exports a Hugging Face checkpoint into a vqa-llm model folder (format: models/README.md).

    python models/export.py blip --checkpoint Salesforce/blip-image-captioning-base --out models/blip-base [--int8]
    python models/export.py vle  --checkpoint hfl/vle-base-for-vqa --out models/vle-base [--int8]
    python models/export.py template --family blip --config CONFIG.json --out templates/ID --id ID [--image-size N]

`template` writes a weight-less graph template (docs/templates.md) for the architecture a config.json describes;
models/make_templates.py writes the shipped ones.

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
    template = families.add_parser("template", help="weight-less graph template for the TypeScript converter")
    template.add_argument("--family", dest="template_family", required=True, choices=("blip", "vle"))
    template.add_argument("--config", required=True, help="the upstream config.json")
    template.add_argument("--out", required=True, help="template folder to write")
    template.add_argument("--id", required=True, help="template id")
    template.add_argument("--upstream", nargs="*", default=[], help="hub ids the template is meant for")
    template.add_argument("--image-size", type=int,
                          help="VLE: the image size the checkpoint's position embeddings fit (576 for vle-base)")
    args = parser.parse_args(argv)
    if args.family == "template":
        import json

        from vqa_llm_export.templates import write_template

        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        if args.image_size:
            config.setdefault("vision_config", {})["image_size"] = args.image_size
        write_template(args.template_family, config, args.out, args.id, args.upstream)
        return
    # Each family is imported only when asked for: their dependencies differ.
    if args.family == "blip":
        from vqa_llm_export.blip import export_blip_cli

        export_blip_cli(args)
    else:
        from vqa_llm_export.vle import export_vle_cli

        export_vle_cli(args)


if __name__ == "__main__":
    main()
