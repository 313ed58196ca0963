"""The tiny BLIP test model with its PyTorch reference outputs, and the full-size random stand-in.

Both go through the same export code as a real checkpoint (`blip.export_blip`); only the construction of the
modules differs. The reference decoding follows models/GENERATION.md in float64 with the *uncached* decoder
(the whole sequence recomputed at every step), so that it checks the runtime's past-key-values path independently.
"""

import copy
import math
import os
import time

import numpy as np
import torch
from torch import nn

from . import blip
from .bert_tokenizer import SPECIAL_TOKENS, write_bert_tokenizer
from .manifest import write_json

TINY_NAME = "tiny-blip"
STANDIN_NAME = "blip-base-standin"
# Images of the reference (in images_root); inputs use the first two.
REFERENCE_IMAGES = ("fishing.jpg", "truck.jpg", "synthetic.png")
INPUT_IMAGES = 2
# Scores at every decision of the reference must be further apart than this (GENERATION.md asks for 1e-4; the
# margin is larger so that float32 runtimes and their summation order cannot flip a decision).
MARGIN = 1e-3
FIRST_SEED = 20240601

# Whole lowercase words, no punctuation: the decoded text is then the words joined by single spaces.
WORDS = """
a an the of in on at with and to is are two three picture photo image view close up
man woman person people boy girl child men women group crowd player rider fisherman driver
dog dogs cat cats horse bird birds cow sheep fish elephant bear giraffe zebra
truck car bus train boat bicycle motorcycle plane road street river lake water sea beach shore
field grass tree trees forest mountain sky cloud snow sand rock bridge building house city
table chair bed door window wall floor kitchen room food pizza cake plate cup bottle
red blue green yellow white black brown orange large small big old young parked standing sitting
walking holding riding flying swimming fishing playing eating looking driving next front top side
pole rod line net hat shirt jacket bag sign light clock fence park
""".split()
PREFIXES = ("a picture of", "a photo of")


# ----------------------------------------------------------------------------------------------------------------
# Vocabulary and configs


def tiny_vocab():
    """[PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103 as in BERT; the words fill the other ids."""
    words = list(dict.fromkeys(WORDS))
    for prefix in PREFIXES:
        assert all(word in words for word in prefix.split()), prefix
    vocab = ["[PAD]"] + words[:99]
    assert len(vocab) == 100, "the word list must fill ids 1..99"
    vocab += ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words[99:]
    return vocab


def standin_vocab(size=30522):
    """A synthetic 30522-entry WordPiece vocabulary with BERT's layout of special and unused ids."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    vocab += letters + ["##" + c for c in letters]
    vocab += [word for word in dict.fromkeys(WORDS) if word not in letters]
    index = 0
    while len(vocab) < size:
        vocab.append(f"tok{index}")
        index += 1
    return vocab


def tiny_config(vocab_size):
    return blip.complete_config({
        "model_type": "blip",
        "architectures": ["BlipForConditionalGeneration"],
        "text_config": {
            # The decoder adds [DEC] (= bos) and [ENC] after the tokenizer's vocabulary, like BLIP's 30522 + 2.
            "vocab_size": vocab_size + 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "bos_token_id": vocab_size,
            "sep_token_id": 102,
            "pad_token_id": 0,
            "max_length": 20,
            "min_length": 0,
        },
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
    })


def standin_config():
    """The dimensions of Salesforce/blip-image-captioning-base."""
    return blip.complete_config({
        "model_type": "blip",
        "architectures": ["BlipForConditionalGeneration"],
        "text_config": {"vocab_size": 30524, "num_attention_heads": 12, "max_length": 20, "min_length": 0},
        "vision_config": {"image_size": 384, "patch_size": 16},
    })


def randomize_tiny(model, seed):
    """Random weights scaled so that activations stay O(1) and the logits are spread over several units
    (upstream's 0.02 init would make every logit nearly equal and decisions fragile)."""
    generator = torch.Generator().manual_seed(seed)

    def normal(tensor, std, mean=0.0):
        with torch.no_grad():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * std + mean)

    for module in model.modules():
        if isinstance(module, nn.Linear):
            normal(module.weight, 1.0 / math.sqrt(module.in_features))
            normal(module.bias, 0.1)
        elif isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            normal(module.weight, 1.0 / math.sqrt(fan_in))
            normal(module.bias, 0.1)
        elif isinstance(module, nn.LayerNorm):
            normal(module.weight, 0.2, 1.0)
            normal(module.bias, 0.2)
        elif isinstance(module, nn.Embedding):
            normal(module.weight, 1.0)
    embeddings = model.vision_model.embeddings
    normal(embeddings.class_embedding, 0.5)
    normal(embeddings.position_embedding, 0.5)
    head = model.text_decoder.cls.predictions
    normal(head.decoder.weight, 3.0 / math.sqrt(head.decoder.in_features))
    normal(head.decoder.bias, 0.5)
    eos = model.config["text_config"]["sep_token_id"]
    with torch.no_grad():
        head.decoder.bias[eos] += 2.0  # captions end on [SEP] now and then, not always at max length
    return model.eval()


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing (PIL, as transformers' BlipImageProcessor)


def preprocess(path, size):
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB").resize((size, size), Image.BICUBIC)
        pixels = np.asarray(image, dtype=np.float64) / 255.0
    pixels = (pixels - np.array(blip.CLIP_MEAN)) / np.array(blip.CLIP_STD)
    # float32, as the tensor a runtime feeds the graph
    return pixels.transpose(2, 0, 1)[None].astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# Reference decoding (models/GENERATION.md), float64


class Margins:
    """Records the closest call among all decisions; a reference is usable only if it stays above MARGIN."""

    def __init__(self):
        self.smallest = math.inf
        self.where = None

    def check(self, a, b, where):
        if math.isinf(a) and math.isinf(b):
            return
        gap = abs(a - b)
        if gap < self.smallest:
            self.smallest, self.where = gap, where


def process_scores(scores, sequence, step, options, eos):
    penalty = options.get("repetitionPenalty", 1.0)
    if penalty != 1.0:
        for token in set(sequence):
            scores[token] = scores[token] * penalty if scores[token] < 0 else scores[token] / penalty
    if step < options.get("minNewTokens", 0):
        scores[eos] = -math.inf
    return scores


def log_softmax(x):
    shifted = x - x.max()
    return shifted - math.log(np.exp(shifted).sum())


def greedy(next_logits, prompt, options, eos, margins, name):
    sequence = list(prompt)
    for step in range(options["maxNewTokens"]):
        scores = process_scores(next_logits([sequence])[0].copy(), sequence, step, options, eos)
        order = np.argsort(-scores, kind="stable")
        margins.check(scores[order[0]], scores[order[1]], f"{name} step {step}")
        token = int(order[0])
        sequence.append(token)
        if token == eos:
            break
    return sequence[len(prompt):]


def beam_search(next_logits, prompt, options, eos, margins, name):
    beams_count = options["numBeams"]
    max_new = options["maxNewTokens"]
    length_penalty = 1.0
    beams = [list(prompt) for _ in range(beams_count)]
    beam_scores = [0.0] + [-1e9] * (beams_count - 1)
    hyps = []  # (sequence, score), in the order added

    def add(sequence, score, where):
        if len(hyps) == beams_count:
            worst = min(s for _, s in hyps)
            margins.check(score, worst, where + " (hypothesis vs worst kept)")
        if len(hyps) < beams_count or score > min(s for _, s in hyps):
            hyps.append((sequence, score))
            if len(hyps) > beams_count:
                worst_index = min(range(len(hyps)), key=lambda i: (hyps[i][1], -i))
                del hyps[worst_index]

    stopped = False
    for step in range(max_new):
        logits = next_logits(beams)
        vocab = logits.shape[1]
        candidates = np.empty(beams_count * vocab)
        for b in range(beams_count):
            scores = process_scores(log_softmax(logits[b]), beams[b], step, options, eos)
            candidates[b * vocab:(b + 1) * vocab] = scores + beam_scores[b]
        order = np.argsort(-candidates, kind="stable")  # ties: lower flat index first
        top = order[: 2 * beams_count]
        # The order inside the top 2N and the cut after it are decisions.
        for rank in range(2 * beams_count):
            margins.check(candidates[order[rank]], candidates[order[rank + 1]], f"{name} step {step} rank {rank}")
        next_beams = []
        for rank, flat in enumerate(top):
            b, token = divmod(int(flat), vocab)
            score = float(candidates[flat])
            if token == eos:
                if rank < beams_count:
                    add(beams[b] + [eos], score / (step + 1) ** length_penalty, f"{name} step {step}")
            else:
                next_beams.append((beams[b] + [token], score))
            if len(next_beams) == beams_count:
                break
        beams = [sequence for sequence, _ in next_beams]
        beam_scores = [score for _, score in next_beams]
        if len(hyps) == beams_count:
            worst = min(s for _, s in hyps)
            best_running = max(beam_scores) / (step + 1) ** length_penalty
            margins.check(worst, best_running, f"{name} step {step} (early stop)")
            if worst >= best_running:
                stopped = True
                break
    if not stopped:
        for sequence, score in zip(beams, beam_scores):
            add(sequence, score / max_new ** length_penalty, f"{name} final")
    ranked = sorted(range(len(hyps)), key=lambda i: (-hyps[i][1], i))
    if len(ranked) > 1:
        margins.check(hyps[ranked[0]][1], hyps[ranked[1]][1], f"{name} best hypothesis")
    return hyps[ranked[0]][0][len(prompt):], stopped


def decode_text(ids, vocab):
    """transformers' decode(skip_special_tokens=True) for a BERT WordPiece tokenizer; ids at or above the
    tokenizer's vocabulary ([DEC], [ENC]) are dropped first, as the runtime does."""
    tokens = [vocab[i] for i in ids if i < len(vocab) and vocab[i] not in SPECIAL_TOKENS]
    text = " ".join(tokens).replace(" ##", "").replace("##", "")
    for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                          (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(before, after)
    return text.strip()


def prompt_ids(prefix, vocab, bos):
    """[CLS] prefix [SEP] -> [bos] prefix (whole words of the tiny vocabulary)."""
    if not prefix:
        return [bos]
    ids = {token: index for index, token in enumerate(vocab)}
    return [bos] + [ids[word] for word in prefix.lower().split()]


CASES = (
    ("greedy", 0, {"maxNewTokens": 12}),
    ("beam3", 0, {"numBeams": 3, "maxNewTokens": 12, "minNewTokens": 3}),
    ("prefix", 1, {"prefix": "a picture of", "maxNewTokens": 8}),
    ("repetition", 1, {"repetitionPenalty": 1.5, "maxNewTokens": 12}),
    ("beam3-prefix", 1, {"numBeams": 3, "prefix": "a photo of", "maxNewTokens": 10}),
    ("beam4", 1, {"numBeams": 4, "maxNewTokens": 12}),
    ("greedy-min", 0, {"minNewTokens": 6, "maxNewTokens": 12}),
    ("beam3-repetition", 0, {"numBeams": 3, "maxNewTokens": 12, "repetitionPenalty": 1.3}),
)


def reference_generation(model64, image_embeds, vocab):
    """Runs every case; returns (cases, margins, stats) with model64 a float64 copy of the model."""
    text = model64.config["text_config"]
    bos, eos = text["bos_token_id"], text["sep_token_id"]
    margins = Margins()
    results, stats = [], {"eos": 0, "early_stop": 0}

    for name, input_index, options in CASES:
        embeds = image_embeds[input_index]

        def next_logits(sequences):
            ids = torch.tensor(sequences, dtype=torch.long)
            with torch.no_grad():
                logits = model64.text_decoder.full_logits(ids, embeds.expand(len(sequences), -1, -1))
            return logits[:, -1, :].numpy()

        prompt = prompt_ids(options.get("prefix"), vocab, bos)
        if options.get("numBeams", 1) > 1:
            tokens, stopped = beam_search(next_logits, prompt, options, eos, margins, name)
            stats["early_stop"] += int(stopped)
        else:
            tokens = greedy(next_logits, prompt, options, eos, margins, name)
        stats["eos"] += int(tokens[-1] == eos)
        results.append({"name": name, "input": input_index, "options": options, "promptIds": prompt,
                        "tokenIds": tokens, "text": decode_text(tokens, vocab)})
    return results, margins, stats


def acceptable(results, margins, stats):
    """Why a seed is rejected, or None."""
    if margins.smallest <= MARGIN:
        return f"closest decision {margins.smallest:.2e} at {margins.where}"
    by_name = {case["name"]: case for case in results}
    if len(set(by_name["greedy"]["tokenIds"])) < 3:
        return "greedy caption has fewer than 3 distinct tokens"
    if any(len(set(case["tokenIds"])) < 3 for case in results):
        return "a caption repeats one or two tokens only"
    if by_name["greedy"]["tokenIds"] == by_name["greedy-min"]["tokenIds"]:
        return "greedy stops later than minNewTokens (the minimum length is not exercised)"
    if by_name["greedy"]["tokenIds"] == by_name["beam3"]["tokenIds"]:
        return "beam search finds the greedy caption"
    if by_name["beam3"]["tokenIds"] == by_name["beam3-repetition"]["tokenIds"]:
        return "repetition penalty changes nothing in beam search"
    if stats["eos"] == 0 or stats["eos"] == len(results):
        return "no mix of captions ending on [SEP] and at max length"
    if stats["early_stop"] == 0:
        return "no beam search stops early"
    return None


# ----------------------------------------------------------------------------------------------------------------
# Cache check in PyTorch: the cached path must equal the uncached one


def check_cache_path(model64, image_embeds, prompt, steps):
    decoder = model64.text_decoder
    with torch.no_grad():
        cross_keys, cross_values = decoder.cross_keys_values(image_embeds)
        past_keys, past_values = decoder.empty_past(1, torch.float64)
        sequence = list(prompt)
        new = list(prompt)
        worst = 0.0
        for _ in range(steps):
            logits, past_keys, past_values = decoder(torch.tensor([new]), past_keys, past_values, cross_keys, cross_values)
            full = decoder.full_logits(torch.tensor([sequence]), image_embeds)
            worst = max(worst, float((logits[0, -1] - full[0, -1]).abs().max()))
            token = int(full[0, -1].argmax())
            sequence.append(token)
            new = [token]
    if worst > 1e-9:
        raise AssertionError(f"cached decoder differs from the uncached one by {worst}")
    return worst


# ----------------------------------------------------------------------------------------------------------------
# Writers


def rounded(array, digits=9):
    """Flat list with 9 significant digits: exact for float32, well under any tolerance for float64."""
    return [float(f"{value:.{digits}g}") for value in np.asarray(array, dtype=np.float64).ravel()]


def tensor_json(array):
    return {"dims": list(array.shape), "data": rounded(array)}


def make_tiny_blip(models_root, reference_root, images_root, log=print):
    started = time.time()
    vocab = tiny_vocab()
    config = tiny_config(len(vocab))
    size = config["vision_config"]["image_size"]
    pixels = [preprocess(os.path.join(images_root, name), size) for name in REFERENCE_IMAGES]
    repo_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    seed = FIRST_SEED
    while True:
        model = randomize_tiny(blip.BlipCaptioner(config), seed)
        model64 = copy.deepcopy(model).double()
        with torch.no_grad():
            embeds = [model64.vision_model(torch.from_numpy(p).double()) for p in pixels[:INPUT_IMAGES]]
        results, margins, stats = reference_generation(model64, embeds, vocab)
        reason = acceptable(results, margins, stats)
        if reason is None:
            break
        log(f"  seed {seed} rejected: {reason}")
        seed += 1
        if seed > FIRST_SEED + 5000:
            raise RuntimeError("no seed gives a usable tiny-blip reference")
    log(f"  seed {seed}: closest decision {margins.smallest:.2e} ({margins.where}); "
        f"{stats['eos']} captions end on [SEP], {stats['early_stop']} beam searches stop early")
    bos = config["text_config"]["bos_token_id"]
    check_cache_path(model64, embeds[0], [bos], 8)
    check_cache_path(model64, embeds[1], prompt_ids("a picture of", vocab, bos), 6)

    folder = os.path.join(models_root, TINY_NAME)
    blip.export_blip(model, folder, TINY_NAME, {"checkpoint": "random-init (models/make_test_models.py)",
                                                 "revision": "random-init"},
                     tokenizer_writer=lambda target: write_bert_tokenizer(target, vocab), log=log)

    def image_path(name):
        return os.path.relpath(os.path.join(images_root, name), repo_root).replace(os.sep, "/")

    reference = {
        "model": TINY_NAME,
        "seed": seed,
        "preprocessing": [{"image": image_path(name), "pixelValues": tensor_json(p)}
                          for name, p in zip(REFERENCE_IMAGES, pixels)],
        "inputs": [{"pixelValues": tensor_json(pixels[i]), "imageEmbeds": tensor_json(embeds[i].numpy())}
                   for i in range(INPUT_IMAGES)],
        "generation": results,
    }
    write_json(os.path.join(reference_root, f"{TINY_NAME}.json"), reference)
    for case in results:
        log(f"  {case['name']:>18}: {case['tokenIds']} {case['text']!r}")
    log(f"  {TINY_NAME} written in {time.time() - started:.1f}s")
    return reference


def make_standin_blip(models_root, log=print):
    """Random weights at blip-image-captioning-base's real dimensions, through the real export path."""
    started = time.time()
    torch.manual_seed(0)
    model = blip.BlipCaptioner(standin_config()).eval()
    vocab = standin_vocab()
    folder = os.path.join(models_root, STANDIN_NAME)
    manifest = blip.export_blip(model, folder, STANDIN_NAME, {"checkpoint": "random-init (blip-image-captioning-base "
                                                                           "dimensions)", "revision": "random-init"},
                                tokenizer_writer=lambda target: write_bert_tokenizer(target, vocab), log=log)
    for path, info in manifest["files"].items():
        if path.endswith(".onnx"):
            log(f"  {path}: {info['bytes'] / 2**20:.1f} MiB")
    log(f"  {STANDIN_NAME} written in {time.time() - started:.1f}s")
    return manifest
