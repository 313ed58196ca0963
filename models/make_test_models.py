#!/usr/bin/env python3
"""Writes the tiny test models, their PyTorch reference outputs and the test images.

    /usr/bin/python3 models/make_test_models.py [--only blip|vle] [--full-size]

Default outputs: test/fixtures/models/tiny-*, test/fixtures/reference/tiny-*.json, test/fixtures/images/.
--full-size writes random stand-ins with the real models' dimensions into models/full-size/ (git-ignored) instead:
they check that the export path copes with real sizes in time and memory.

Each family's code is imported only when it runs, so that one family's module can be worked on (or be missing)
without breaking the other.
"""

import argparse
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


def run_family(family, args):
    started = time.time()
    if family == "blip":
        from vqa_llm_export import testmodels_blip as module

        tiny, standin = module.make_tiny_blip, module.make_standin_blip
    else:
        from vqa_llm_export import testmodels_vle as module

        tiny, standin = module.make_tiny_vle, module.make_standin_vle
    if args.full_size:
        print(f"{family}: full-size stand-in -> {args.full_size_out}", flush=True)
        standin(args.full_size_out)
    else:
        print(f"{family}: tiny model -> {args.models}", flush=True)
        tiny(args.models, args.references, args.images)
    print(f"{family}: done in {time.time() - started:.1f}s", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("blip", "vle"), help="make one family only")
    parser.add_argument("--full-size", action="store_true", help="write full-size random stand-ins instead")
    parser.add_argument("--models", default=os.path.join(REPO, "test", "fixtures", "models"))
    parser.add_argument("--references", default=os.path.join(REPO, "test", "fixtures", "reference"))
    parser.add_argument("--images", default=os.path.join(REPO, "test", "fixtures", "images"))
    parser.add_argument("--full-size-out", default=os.path.join(REPO, "models", "full-size"))
    args = parser.parse_args(argv)
    if not args.full_size:
        ensure_images(args.images)
    for family in ([args.only] if args.only else ["blip", "vle"]):
        run_family(family, args)


if __name__ == "__main__":
    main()
