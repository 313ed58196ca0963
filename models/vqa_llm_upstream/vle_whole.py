"""vle_whole: VLE as a whole against iflytek/VLE's own code, through the committed fixture test/fixtures/upstream/vle-small.

The checkpoint there (random weights, saved as the hub has hfl/vle-base-for-vqa) and the outputs of upstream's
VLEForVQA / VLEForVQAPipeline for it (reference.json) were made once with vle_reference.py, which needs the upstream
code and an older transformers; this part needs neither. It exports the checkpoint with the project's exporter, as
`models/export.py vle --checkpoint test/fixtures/upstream/vle-small/checkpoint --out <out>/model --name vle-small`
does, and copies reference.json beside it:

    <out>/model/           the exported vle-vqa folder (test/upstream/vle-whole.test.ts loads it)
    <out>/reference.json   upstream's pixel_values, input_ids, logits and top-5 answers

As a first look it also runs the exported graphs with onnxruntime on upstream's pixel_values and input_ids and logs the
largest logit difference; the TypeScript tests are the check.
"""

import json
import os
import shutil
import time
from types import SimpleNamespace

FIXTURE = "test/fixtures/upstream/vle-small"


def _onnx_logit_difference(model_folder, reference):
    """Largest |logit difference| of the exported graphs (onnxruntime, Python) against upstream, over every case."""
    import numpy as np
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    encoder = onnxruntime.InferenceSession(os.path.join(model_folder, "onnx", "image_encoder.onnx"), options)
    fusion = onnxruntime.InferenceSession(os.path.join(model_folder, "onnx", "fusion.onnx"), options)
    embeds = []
    for image in reference["images"]:
        pixels = np.asarray(image["pixelValues"]["data"], dtype=np.float32).reshape(image["pixelValues"]["dims"])
        embeds.append(encoder.run(["image_embeds"], {"pixel_values": pixels})[0])
    worst = 0.0
    for case in reference["cases"]:
        (logits,) = fusion.run(
            ["logits"],
            {
                "input_ids": np.asarray([case["inputIds"]], dtype=np.int64),
                "attention_mask": np.asarray([case["attentionMask"]], dtype=np.int64),
                "image_embeds": embeds[case["image"]],
            },
        )
        worst = max(worst, float(np.abs(logits[0] - np.asarray(case["logits"], dtype=np.float32)).max()))
    return worst


def make(out, repo, base=False, log=print):
    from vqa_llm_export.vle import export_vle_cli

    if base:
        log("no base-size variant: the committed references are for the small checkpoint only")
    fixture = os.path.join(repo, FIXTURE)
    model_folder = os.path.abspath(os.path.join(out, "model"))
    started = time.time()
    # From the repository root, so that the manifest records the checkpoint as the repository path it is, whatever
    # the working directory.
    previous = os.getcwd()
    os.chdir(repo)
    try:
        export_vle_cli(
            SimpleNamespace(
                checkpoint=f"{FIXTURE}/checkpoint",
                out=model_folder,
                revision="random-init",
                int8=False,
                name="vle-small",
            )
        )
    finally:
        os.chdir(previous)
    log(f"exported {FIXTURE}/checkpoint in {time.time() - started:.1f}s")
    shutil.copyfile(os.path.join(fixture, "reference.json"), os.path.join(out, "reference.json"))
    with open(os.path.join(out, "reference.json"), encoding="utf-8") as handle:
        reference = json.load(handle)
    log(
        f"references from iflytek/VLE {reference['upstream']['commit'][:8]} with transformers "
        f"{reference['versions']['transformers']}: {len(reference['cases'])} cases"
    )
    try:
        difference = _onnx_logit_difference(model_folder, reference)
    except ImportError as error:
        log(f"onnxruntime not available for the first look ({error})")
    else:
        log(f"exported graphs (onnxruntime, Python) vs upstream logits: max |difference| {difference:.2e}")
