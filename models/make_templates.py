#!/usr/bin/env python3
"""Writes the graph templates shipped in the npm package (templates/<id>/), from the configs in models/upstream-configs.

    .venv/bin/python models/make_templates.py                 # every shipped template into templates/
    .venv/bin/python models/make_templates.py --only blip-image-captioning-base --out /tmp/templates

A template is the exporter's graphs for one architecture configuration with no weight bytes (docs/templates.md); the
TypeScript converter fills them from an upstream checkpoint. Regenerate them whenever the exporter's graph code
(models/vqa_llm_export/blip.py, vle.py) changes: test/upstream/templates.test.ts fails while a shipped template
differs from what the exporter writes now.
"""

import argparse
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

# id -> family, the hub ids it is meant for, and the CLIP image size VLE's loader derives from the position-embedding
# rows of the checkpoint (1 + 36 x 36 = 1297 rows for both VLE checkpoints; their config.json keeps CLIP's 224).
SHIPPED = {
    "blip-image-captioning-base": {"family": "blip", "upstream": ["Salesforce/blip-image-captioning-base"]},
    "blip-image-captioning-large": {"family": "blip", "upstream": ["Salesforce/blip-image-captioning-large"]},
    "vle-base-for-vqa": {"family": "vle", "upstream": ["hfl/vle-base-for-vqa"], "image_size": 576},
    "vle-large-for-vqa": {"family": "vle", "upstream": ["hfl/vle-large-for-vqa"], "image_size": 504},
}


def upstream_config(template_id, repo=REPO):
    """The upstream config.json, adjusted as the family's loader adjusts it for the checkpoint's weights."""
    with open(os.path.join(repo, "models", "upstream-configs", template_id, "config.json"), encoding="utf-8") as handle:
        raw = json.load(handle)
    entry = SHIPPED[template_id]
    if "image_size" in entry:
        raw = copy.deepcopy(raw)
        raw["vision_config"]["image_size"] = entry["image_size"]
    return raw


def write_shipped(template_id, out_dir, repo=REPO, log=print):
    from vqa_llm_export.templates import write_template

    entry = SHIPPED[template_id]
    return write_template(entry["family"], upstream_config(template_id, repo), out_dir, template_id, entry["upstream"],
                          log=log)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=sorted(SHIPPED), help="write these templates only")
    parser.add_argument("--out", default=os.path.join(REPO, "templates"), help="folder holding one folder per template")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    for template_id in args.only or SHIPPED:
        started = time.time()
        folder = os.path.join(args.out, template_id)
        write_shipped(template_id, folder, log=lambda *items: print(f"{template_id}:", *items, flush=True))
        sizes = {name: os.path.getsize(os.path.join(folder, name)) for name in sorted(os.listdir(folder))}
        print(f"{template_id}: written in {time.time() - started:.1f}s: "
              + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sizes.items()), flush=True)


if __name__ == "__main__":
    main()
