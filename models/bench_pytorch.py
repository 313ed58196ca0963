#!/usr/bin/env python3
"""PyTorch eager baseline of the full-size stand-ins: the same four stages the ONNX bench times, same threads.

    .venv/bin/python models/bench_pytorch.py --models models/full-size --threads 1,2 --iterations 5 \
        [--image test/fixtures/images/fishing.jpg] [--check] [--onnx]

Prints one JSON line on stdout (progress goes to stderr):
    {"torch": "2.13.0+cpu", "threads": {"1": {"captionVision": ms, "decoderStep": ms, "vqaVision": ms,
     "fusion": ms}, "2": {...}}, ...}
with the median wall milliseconds of --iterations timed calls after --warmup untimed ones, per thread count
(torch.set_num_threads, torch.inference_mode); `cpuMs` gives the median process CPU milliseconds per call, which a
shared machine's load moves much less than the wall time.

Stages, as the runtime runs them (src/runtime/blip-captioner.ts, blip-step-decoder.ts, vle-vqa.ts), batch 1:
- captionVision: BLIP vision tower, pixel_values [1,3,384,384] -> image_embeds [1,577,768];
- decoderStep: one greedy text-decoder call with the KV cache, as the textDecoder graph computes it: one new token,
  --decoder-step - 1 cached self-attention positions (the prompt is [bos] alone by default, so step 10 has 9), the
  cross-attention keys/values over the image given (the crossAttentionCache graph's work is not part of a step);
  logits over the whole vocabulary and the present keys/values out;
- vqaVision: VLE image encoder, pixel_values [1,3,576,576] -> image_embeds [1,1297,768];
- fusion: VLE fusion graph on the question's tokens (--question, tokenized by the folder's tokenizer.json: 8
  tokens for the default) and the image embeddings -> logits [1,3129].
Inputs come from --image (preprocessed as the runtime does; not timed), or random pixels without one.

Weights: the stand-ins keep no PyTorch weights, and the exporter's ONNX graphs do not keep every parameter's name
(Linear weights are folded into transposed `onnx::MatMul_*` initializers, equal LayerNorms deduplicated), so the
modules are rebuilt by the stand-in generator's own seeded code (vqa_llm_export.testmodels_blip / testmodels_vle,
torch.manual_seed(0)): the same weights on the same torch. --check proves it per stage: it runs each ONNX graph
with onnxruntime on the same inputs and reports the largest absolute difference of an output. Speed does not
depend on the values anyway.

--onnx also times each ONNX graph with onnxruntime from Python at the same thread counts, with the session options
the runtime uses (src/runtime/onnx-session.ts: sequential, no spinning, no CPU arena): a cross-check of the Node
bench's figures from the same process and inputs. Models are built one family at a time and sessions one graph at a
time, so that the peak stays near one family's weights held twice (torch's and one session's), not all of them.

Exit status 3: torch or numpy (or onnxruntime, for --check/--onnx) is not importable; bench/pytorch.ts reports that as skipped.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

MISSING_DEPENDENCY = 3
STAGES = ("captionVision", "decoderStep", "vqaVision", "fusion")
DEFAULT_QUESTION = "What is in the picture?"  # the question bench/run.ts asks first

try:
    import numpy as np
    import torch
except ImportError as error:  # pragma: no cover - reported by bench/pytorch.ts as a skip
    print(f"bench_pytorch: {error}", file=sys.stderr)
    sys.exit(MISSING_DEPENDENCY)


def log(message):
    print(message, file=sys.stderr, flush=True)


def parse_threads(text):
    counts = [int(part) for part in text.split(",") if part.strip()]
    if not counts or any(count < 1 for count in counts):
        raise argparse.ArgumentTypeError(f"--threads must list positive integers, got {text!r}")
    return counts


def median_ms(call, warmup, iterations):
    """Median wall and process-CPU milliseconds of `iterations` calls after `warmup` untimed ones.

    The CPU time (every thread of the process) is what a call costs when other processes take turns on the cores:
    on a shared machine the 1-thread wall time swings with the load, its CPU time much less."""
    for _ in range(warmup):
        call()
    walls, cpus = [], []
    for _ in range(iterations):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu_started) * 1000)
    return round(statistics.median(walls), 2), round(statistics.median(cpus), 2)


class Stage:
    """One timed stage: a PyTorch call and the ONNX graph that computes the same thing."""

    def __init__(self, name, torch_call, onnx_path, onnx_feeds, onnx_output, torch_output):
        self.name = name
        self.torch_call = torch_call
        self.onnx_path = onnx_path
        self.onnx_feeds = onnx_feeds
        self.onnx_output = onnx_output
        self.torch_output = torch_output  # picks the compared tensor out of torch_call's result


# ----------------------------------------------------------------------------------------------------------------
# Stand-ins, rebuilt by the generator's seeded code


def blip_stages(folder, image, decoder_step):
    from vqa_llm_export import blip, testmodels_blip

    started = time.time()
    # make_standin_blip's own two lines: the seed, then the modules in the same order.
    torch.manual_seed(0)
    model = blip.BlipCaptioner(testmodels_blip.standin_config()).eval()
    log(f"blip stand-in rebuilt in {time.time() - started:.1f} s")
    size = model.config["vision_config"]["image_size"]
    if image:
        pixels = torch.from_numpy(testmodels_blip.preprocess(image, size))
    else:
        pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    vision, decoder = model.vision_model, model.text_decoder
    bos = model.config["text_config"]["bos_token_id"]
    with torch.inference_mode():
        image_embeds = vision(pixels)
        cross_keys, cross_values = decoder.cross_keys_values(image_embeds)
        # Greedy from [bos] up to the measured step, so the cache holds what a real caption's would.
        past_keys, past_values = decoder.empty_past(1)
        token = bos
        for _ in range(decoder_step - 1):
            logits, past_keys, past_values = decoder(torch.tensor([[token]]), past_keys, past_values,
                                                     cross_keys, cross_values)
            token = int(logits[0, -1].argmax())
    input_ids = torch.tensor([[token]])
    decoder_feeds = {"input_ids": input_ids.numpy()}
    for layer in range(decoder.num_layers):
        decoder_feeds[f"past_key.{layer}"] = past_keys[layer].numpy()
        decoder_feeds[f"past_value.{layer}"] = past_values[layer].numpy()
    for layer in range(decoder.num_layers):
        decoder_feeds[f"cross_key.{layer}"] = cross_keys[layer].numpy()
        decoder_feeds[f"cross_value.{layer}"] = cross_values[layer].numpy()
    stages = [
        Stage("captionVision", lambda: vision(pixels), os.path.join(folder, "onnx", "vision_encoder.onnx"),
              {"pixel_values": pixels.numpy()}, "image_embeds", lambda output: output),
        Stage("decoderStep", lambda: decoder(input_ids, past_keys, past_values, cross_keys, cross_values),
              os.path.join(folder, "onnx", "text_decoder.onnx"), decoder_feeds, "logits", lambda output: output[0]),
    ]
    info = {"decoderPast": int(past_keys[0].shape[2]), "captionImageSize": size}
    return model, stages, info


def question_ids(folder, question):
    """The folder's tokenizer.json, as the runtime tokenizes (special tokens added)."""
    try:
        from tokenizers import Tokenizer
    except ImportError:
        # Same length as the default question's encoding ([CLS] 6 pieces [SEP]); only the length matters for speed.
        log("the tokenizers package is missing: using 8 fixed token ids")
        return [1, 10, 11, 12, 13, 14, 15, 2]
    return Tokenizer.from_file(os.path.join(folder, "tokenizer.json")).encode(question).ids


def vle_stages(folder, image, question):
    from vqa_llm_export import testmodels_vle, vle

    started = time.time()
    model, config, _vocabulary = testmodels_vle.standin_model()
    log(f"vle stand-in rebuilt in {time.time() - started:.1f} s")
    size = config.image_size
    if image:
        pixels = testmodels_vle.preprocess(image, size)
    else:
        pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    encoder, fusion = vle.ImageEncoderGraph(model), vle.FusionGraph(model)
    ids = question_ids(folder, question)
    input_ids = torch.tensor([ids], dtype=torch.long)
    attention_mask = torch.ones_like(input_ids)
    with torch.inference_mode():
        image_embeds = encoder(pixels)
    stages = [
        Stage("vqaVision", lambda: encoder(pixels), os.path.join(folder, "onnx", "image_encoder.onnx"),
              {"pixel_values": pixels.numpy()}, "image_embeds", lambda output: output),
        Stage("fusion", lambda: fusion(input_ids, attention_mask, image_embeds), os.path.join(folder, "onnx", "fusion.onnx"),
              {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
               "image_embeds": image_embeds.numpy()}, "logits", lambda output: output),
    ]
    info = {"questionTokens": len(ids), "vqaImageSize": size}
    return model, stages, info


# ----------------------------------------------------------------------------------------------------------------
# onnxruntime, configured as src/runtime/onnx-session.ts configures it


def onnx_session(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = True
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.use_device_allocator_for_initializers", "1")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run_stage(stage, args, results, onnx_results, cpu_results, checks):
    for threads in args.threads:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            ms, cpu_ms = median_ms(stage.torch_call, args.warmup, args.iterations)
        results[str(threads)][stage.name] = ms
        cpu_results["torch"][str(threads)][stage.name] = cpu_ms
        log(f"{stage.name}: torch {threads} thread(s) {ms} ms (CPU {cpu_ms} ms)")
    if not (args.check or args.onnx):
        return
    for threads in (args.threads if args.onnx else [max(args.threads)]):
        started = time.time()
        session = onnx_session(stage.onnx_path, threads)
        log(f"{stage.name}: onnxruntime session ({threads} thread(s)) in {time.time() - started:.1f} s")

        def run():
            return session.run([stage.onnx_output], stage.onnx_feeds)[0]

        if args.onnx:
            ms, cpu_ms = median_ms(run, args.warmup, args.iterations)
            onnx_results[str(threads)][stage.name] = ms
            cpu_results["onnxruntime"][str(threads)][stage.name] = cpu_ms
            log(f"{stage.name}: onnxruntime {threads} thread(s) {ms} ms (CPU {cpu_ms} ms)")
        if args.check and stage.name not in checks:
            expected = run()
            torch.set_num_threads(max(args.threads))
            with torch.inference_mode():
                actual = stage.torch_output(stage.torch_call()).numpy()
            if actual.shape != expected.shape:
                raise SystemExit(f"{stage.name}: PyTorch gives {actual.shape}, onnxruntime {expected.shape}")
            checks[stage.name] = {
                "output": stage.onnx_output,
                "shape": list(expected.shape),
                "maxAbsDiff": float(np.abs(actual - expected).max()),
                "maxAbs": float(np.abs(expected).max()),
            }
            log(f"{stage.name}: max |torch - onnxruntime| = {checks[stage.name]['maxAbsDiff']:.3g} "
                f"(outputs up to {checks[stage.name]['maxAbs']:.3g})")
        del session
        gc.collect()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=os.path.join(REPO, "models", "full-size"),
                        help="folder holding the two stand-ins (default models/full-size)")
    parser.add_argument("--caption-model", default="blip-base-standin")
    parser.add_argument("--vqa-model", default="vle-base-standin")
    parser.add_argument("--threads", type=parse_threads, default=[1, 2], help="comma-separated, default 1,2")
    parser.add_argument("--iterations", type=int, default=5, help="timed calls per stage and thread count")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before them")
    parser.add_argument("--image", help="image to preprocess into the inputs (default: random pixels)")
    parser.add_argument("--question", default=DEFAULT_QUESTION)
    parser.add_argument("--decoder-step", type=int, default=10,
                        help="which greedy step decoderStep times (its cache holds step - 1 positions)")
    parser.add_argument("--only", choices=STAGES, action="append", help="time only these stages (repeatable)")
    parser.add_argument("--check", action="store_true",
                        help="compare each stage's output with onnxruntime's on the same inputs (max abs diff)")
    parser.add_argument("--onnx", action="store_true", help="also time the ONNX graphs with onnxruntime")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.decoder_step < 1:
        parser.error("--iterations and --decoder-step must be at least 1, --warmup at least 0")
    caption_folder = os.path.join(args.models, args.caption_model)
    vqa_folder = os.path.join(args.models, args.vqa_model)
    for folder in (caption_folder, vqa_folder):
        if not os.path.exists(os.path.join(folder, "vqa-llm.json")):
            parser.error(f"{folder} is not a model folder: make the stand-ins with `npm run models:full-size`")
    if args.check or args.onnx:
        try:
            import onnxruntime  # noqa: F401
        except ImportError as error:
            log(f"bench_pytorch: --check and --onnx need onnxruntime: {error}")
            return MISSING_DEPENDENCY
    wanted = set(args.only or STAGES)
    results = {str(threads): {} for threads in args.threads}
    onnx_results = {str(threads): {} for threads in args.threads}
    cpu_results = {engine: {str(threads): {} for threads in args.threads} for engine in ("torch", "onnxruntime")}
    checks, info = {}, {}
    families = [("blip", lambda: blip_stages(caption_folder, args.image, args.decoder_step),
                 {"captionVision", "decoderStep"}),
                ("vle", lambda: vle_stages(vqa_folder, args.image, args.question), {"vqaVision", "fusion"})]
    for _family, build, names in families:
        if not wanted & names:
            continue
        model, stages, family_info = build()
        info.update(family_info)
        for stage in stages:
            if stage.name in wanted:
                run_stage(stage, args, results, onnx_results, cpu_results, checks)
        # One family's weights at a time: the stand-ins together hold ~2.5 GiB of float32.
        del model, stages
        gc.collect()
    output = {
        "torch": torch.__version__,
        "threads": results,
        "iterations": args.iterations,
        "warmup": args.warmup,
        "weights": "seeded: rebuilt by the stand-in generator (torch.manual_seed(0)); --check compares with the ONNX",
        "inputs": {"image": os.path.basename(args.image) if args.image else "random", **info},
    }
    # Process CPU ms per call, same keys: a load-robust second reading (see median_ms).
    output["cpuMs"] = cpu_results if args.onnx else {"torch": cpu_results["torch"]}
    if args.check:
        output["check"] = checks
    if args.onnx:
        import onnxruntime

        output["onnxruntime"] = {"version": onnxruntime.__version__, "threads": onnx_results}
    print(json.dumps(output), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
