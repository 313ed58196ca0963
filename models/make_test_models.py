#!/usr/bin/env python3
"""Writes the tiny test models, their PyTorch reference outputs and the test images.

    /usr/bin/python3 models/make_test_models.py [--only blip|vle] [--full-size] [--int8 | --int8-only]

Default outputs: test/fixtures/models/tiny-*, test/fixtures/reference/tiny-*.json, test/fixtures/images/.
--full-size writes random stand-ins with the real models' dimensions into models/full-size/ (git-ignored) instead:
they check that the export path copes with real sizes in time and memory.
--int8 also writes dynamically quantized int8 graphs (onnx/*.int8.onnx, `variants.int8` in the manifest) into each
folder it makes, with the exporter's own quantization (blip.quantize_graphs, vle.quantize_graphs), as
`models/export.py --int8` does; --int8-only adds them to the folders already there without making them again.

Each family's code is imported only when it runs, so that one family's module can be worked on (or be missing)
without breaking the other.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

# Photographs used by the tests: committed fixtures (from iflytek/VLE `pics/`, Apache-2.0), never fetched.
PHOTOS = ("fishing.jpg", "truck.jpg")
SYNTHETIC = "synthetic.png"


def write_synthetic_image(path):
    """A 97x61 gradient with shapes: odd, non-square size and sharp edges exercise resizing and RGB handling."""
    from PIL import Image, ImageDraw

    width, height = 97, 61
    image = Image.new("RGB", (width, height))
    pixels = image.load()
    for y in range(height):
        for x in range(width):
            pixels[x, y] = (x * 255 // (width - 1), y * 255 // (height - 1), (x + y) * 255 // (width + height - 2))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 10, 40, 35), fill=(250, 250, 250))
    draw.ellipse((50, 20, 88, 55), fill=(20, 40, 200))
    draw.line((0, 60, 96, 0), fill=(255, 0, 0), width=3)
    image.save(path, format="PNG")


def ensure_images(images_root):
    """The images are committed fixtures: only missing ones are (re)created, so references stay stable."""
    os.makedirs(images_root, exist_ok=True)
    for name in PHOTOS:
        target = os.path.join(images_root, name)
        if not os.path.exists(target):
            raise SystemExit(f"{target} is missing: it is a committed fixture (git checkout -- {target}).")
    if not os.path.exists(os.path.join(images_root, SYNTHETIC)):
        write_synthetic_image(os.path.join(images_root, SYNTHETIC))


def add_int8_variants(folder, log=print):
    """Quantizes a written folder's graphs with the exporter's own code and rewrites its manifest."""
    from vqa_llm_export import blip, vle
    from vqa_llm_export.manifest import MANIFEST_NAME, write_manifest

    with open(os.path.join(folder, MANIFEST_NAME), encoding="utf-8") as handle:
        manifest = json.load(handle)
    exporter = {blip.KIND: blip, vle.KIND: vle}[manifest["kind"]]
    graphs = exporter.quantize_graphs(folder, manifest["graphs"], log)
    manifest = write_manifest(folder, manifest["kind"], manifest["name"], manifest["source"], graphs, manifest["opset"])
    for name, graph in graphs.items():
        fp32, int8 = manifest["files"][graph["file"]]["bytes"], manifest["files"][graph["variants"]["int8"]]["bytes"]
        log(f"  {name}: fp32 {fp32 / 2**20:.1f} MiB, int8 {int8 / 2**20:.1f} MiB")
    return manifest


def run_family(family, args):
    started = time.time()
    if family == "blip":
        from vqa_llm_export import testmodels_blip as module

        tiny, standin = module.make_tiny_blip, module.make_standin_blip
    else:
        from vqa_llm_export import testmodels_vle as module

        tiny, standin = module.make_tiny_vle, module.make_standin_vle
    if args.full_size:
        root, name = args.full_size_out, module.STANDIN_NAME
        print(f"{family}: full-size stand-in -> {root}", flush=True)
        if not args.int8_only:
            standin(root)
    else:
        root, name = args.models, module.TINY_NAME
        print(f"{family}: tiny model -> {root}", flush=True)
        if not args.int8_only:
            tiny(args.models, args.references, args.images)
    if args.int8 or args.int8_only:
        print(f"{family}: int8 variants of {os.path.join(root, name)}", flush=True)
        add_int8_variants(os.path.join(root, name))
    print(f"{family}: done in {time.time() - started:.1f}s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("blip", "vle"), help="make one family only")
    parser.add_argument("--full-size", action="store_true", help="write full-size random stand-ins instead")
    int8 = parser.add_mutually_exclusive_group()
    int8.add_argument("--int8", action="store_true", help="also write dynamically quantized int8 graphs")
    int8.add_argument("--int8-only", action="store_true", help="add int8 graphs to the existing folders only")
    parser.add_argument("--models", default=os.path.join(REPO, "test", "fixtures", "models"))
    parser.add_argument("--references", default=os.path.join(REPO, "test", "fixtures", "reference"))
    parser.add_argument("--images", default=os.path.join(REPO, "test", "fixtures", "images"))
    parser.add_argument("--full-size-out", default=os.path.join(REPO, "models", "full-size"))
    args = parser.parse_args(argv)
    if not args.full_size and not args.int8_only:
        ensure_images(args.images)
    for family in ([args.only] if args.only else ["blip", "vle"]):
        run_family(family, args)


if __name__ == "__main__":
    main()
