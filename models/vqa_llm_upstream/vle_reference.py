#!/usr/bin/env python3
"""Makes test/fixtures/upstream/vle-small/: a small random-weight VLE VQA checkpoint and the outputs iflytek/VLE's own
code gives for it. Run by hand on a developer machine; both are committed (the CI part, vle_whole.py, only exports the
checkpoint and copies the references, so CI never needs the upstream code).

    # iflytek/VLE at the pinned commit, outside the repository (never committed or vendored):
    git clone https://github.com/iflytek/VLE /tmp/VLE-git && git -C /tmp/VLE-git archive e322bb97b4ecd2c1eed11959416aed640a4bf76a | (mkdir -p /tmp/VLE && tar -x -C /tmp/VLE)
    # the newest transformers its modelling code runs under (see below):
    python3 -m venv /tmp/vle-venv && /tmp/vle-venv/bin/pip install torch==2.13.0 transformers==4.54.1 tokenizers==0.21.4 sentencepiece==0.2.3 protobuf pillow matplotlib numpy
    /tmp/vle-venv/bin/python models/vqa_llm_upstream/vle_reference.py --vle-repo /tmp/VLE
    # re-run the committed checkpoint under another stack and compare with the committed references (writes nothing):
    /tmp/vle-venv-426/bin/python models/vqa_llm_upstream/vle_reference.py --vle-repo /tmp/VLE --check

What it does:
  1. trains a SentencePiece unigram model (spm.model) on a small generated corpus (every printable ASCII character
     included, so only the "café" question goes through byte fallback), laid out as DeBERTa-v3's: [PAD] 0,
     [CLS] 1, [SEP] 2, [UNK] 3, byte fallback, nmt_nfkc; the tokenizer adds [MASK] after the pieces, and the text
     tower's vocab_size is the piece count + 100, as microsoft/deberta-v3-base (128000 pieces, vocab_size 128100);
  2. builds upstream's VLEForVQA (CLIP vision tower at 48 px with 16 px patches, DeBERTa-v3-style text tower with
     relative attention, log position buckets and shared keys, 2 co-attention layers; three different widths so the
     projections matter) with seeded random weights at a scale where answers differ, trying seeds until the top-5
     scores of every case are well apart and the top answers vary between cases;
  3. writes checkpoint/ as the hub has hfl/vle-base-for-vqa: config.json, pytorch_model.bin, spm.model,
     preprocessor_config.json (CLIPImageProcessor: shortest edge 48, center crop 48, bicubic, CLIP mean/std);
  4. loads it back with upstream's own VLEForVQA.from_pretrained / VLEProcessor.from_pretrained and runs
     VLEForVQAPipeline(top_k=5) on the committed test images with the questions below (the pipeline does not
     truncate: two questions are longer than the 50 tokens of fine-tuning), recording what its processor produced
     (pixel_values, input_ids, attention_mask), the model's logits (called directly, and checked equal to what the
     pipeline computed) and the pipeline's answers, into reference.json.

transformers: the pinned commit was written against 4.26. Its BertCrossLayer calls BertAttention positionally as
(hidden_states, attention_mask, head_mask, encoder_hidden_states, encoder_attention_mask, past_key_value,
output_attentions); 4.55 dropped encoder_attention_mask from that signature (the image mask would land in
past_key_value) and 5.x changed BertAttention's constructor, so 4.54.1 is the newest release that runs it
unchanged. The script checks that signature before it runs anything. Shims, applied here, not in upstream files:
  - VLEConfig.has_no_defaults_at_init = True: the name transformers >= 4.52 gives the `is_composition = True` that
    upstream sets, so that writing config.json does not try to build a VLEConfig without arguments;
  - the vision tower's attention implementation is set to "eager" (4.54 defaults CLIP to SDPA; 4.26 had only eager);
  - config.json and pytorch_model.bin are written with to_json_file and torch.save(state_dict) rather than
    save_pretrained, whose generation-parameter check also builds a VLEConfig without arguments.
"""

import argparse
import hashlib
import inspect
import io
import json
import math
import os
import platform
import random
import shutil
import string
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, "test", "fixtures", "upstream", "vle-small")
# Run as a script, this folder comes first on sys.path, where the tokenizers part (tokenizers.py) would shadow the
# tokenizers package.
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != HERE]

UPSTREAM_REPOSITORY = "https://github.com/iflytek/VLE"
UPSTREAM_COMMIT = "e322bb97b4ecd2c1eed11959416aed640a4bf76a"
# sha256 of the upstream files at UPSTREAM_COMMIT (models/VLE/), so that a checkout of another commit is refused
# whichever way it was made (git worktree, git archive, a copy).
UPSTREAM_SOURCES = {
    "__init__.py": "6e1fa1b5a66467446ab262d37badf675f24d0d9cb63b94c2c7b0560c4ef5c74a",
    "configuration_vle.py": "095a55df936b5f753a0723bcfc4c4e57ba63fb36d41635792469539d1a316e20",
    "modeling_vle.py": "7dcdf64c266796c47dc80d7d7b9110cfb3c9a431b321fd324efa7f918d4fd811",
    "pipeline_vle.py": "0774a31888e87b8bbede308b497de0662cbcede9f2127bc3cdc221266d9089b7",
    "processing_vle.py": "3552e4f2c4e6007faaccadfdb9a071f6fdbfca5b73ad46266e87342856b1301d",
}
# BertAttention.forward's positional parameters as upstream's BertCrossLayer passes them (transformers 4.26).
BERT_ATTENTION_PARAMETERS = [
    "self", "hidden_states", "attention_mask", "head_mask", "encoder_hidden_states", "encoder_attention_mask",
    "past_key_value", "output_attentions",
]

SEED = 20240607
MAX_SEED_ATTEMPTS = 200
LOGIT_SCALE = 3.0  # the answer layer's weights, times this: scores spread out, answers vary with the inputs
MIN_TOP5_GAP = 1e-3  # smallest gap between consecutive top-5 scores over every case (errors are ~1e-6)
MAX_TOP1 = 0.9
MIN_DISTINCT_TOP1 = 5  # different top answers over the cases

IMAGE_SIZE = 48
PATCH_SIZE = 16
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]

SPM_PIECES = 576  # 4 specials + 256 byte pieces + 316 trained pieces
TEXT_VOCAB_SIZE = SPM_PIECES + 100

# Answers of the kind VQA v2 has: testmodels_vle.py's, and more.
LABELS = [
    "yes", "no", "2", "3", "4", "fish", "fishing pole", "dog", "husky", "pink",
    "blue", "brown", "red", "man", "truck", "sliding door", "1", "5", "white", "black",
    "green", "yellow", "cat", "bird", "birds", "boat", "water", "hat", "frisbee", "tennis",
    "baseball", "surfing", "kitchen", "pizza", "horse", "umbrella", "wood", "nothing", "circle", "square",
]

IMAGES = ["fishing.jpg", "truck.jpg", "synthetic.png"]

QUESTION_60 = (  # 61 tokens
    "Looking at the whole picture, what is the man in the red hat holding in his hand while he is standing near the "
    "water?"
)
QUESTION_200 = (  # 266 tokens
    "Please look carefully at every part of this picture before you answer. On the left there may be a tall man or a "
    "young woman standing near a wooden fence, and on the right there may be a white truck parked on the street next "
    "to a green tree, or a blue boat on the water of a quiet lake. In the sky there could be clouds, birds, a kite or "
    "an airplane, and on the ground there could be dogs, cats, a bench, a ball or a bicycle. Taking all of that into "
    "account, what is the main thing that the person in the middle of the picture is holding?"
)
# (image index, question); the pipeline passes each question to the tokenizer as it is.
CASES = [
    (0, "What is in the man's hand?"),
    (0, "What is the man holding?"),
    (0, "Is the man fishing?"),
    (1, "How many people are there?"),
    (1, "What color is the truck?"),
    (1, "Are there TWO  dogs next to the truck??"),
    (2, "What shape is in the middle of the picture?"),
    (2, "Is it 3:45 or 10 o'clock?"),
    (2, "What's written on the café sign?"),
    (0, QUESTION_60),
    (1, QUESTION_200),
]

# ----------------------------------------------------------------------------------------------------------------
# Tokenizer corpus: VQA-like sentences from fixed word lists and a seeded generator.

PEOPLE = (
    "man woman boy girl child children people person player skier surfer rider driver chef cook farmer fisherman "
    "tourist family couple baby student teacher worker officer police soldier crowd team lady guy kid kids men women "
    "friends"
).split()
ANIMALS = (
    "dog dogs puppy husky cat cats kitten horse horses cow cows sheep bird birds duck ducks pigeon pigeons seagull "
    "giraffe giraffes elephant elephants zebra zebras bear bears fish goat monkey lion tiger rabbit squirrel"
).split()
THINGS = (
    "truck car bus train bicycle bike motorcycle boat ship airplane plane kite umbrella hat cap shirt jacket coat "
    "dress shoes glasses phone laptop computer keyboard table chair bench bed couch sofa lamp clock vase bottle cup "
    "mug glass plate bowl fork knife spoon pizza sandwich cake donut banana apple orange carrot broccoli hotdog book "
    "bag backpack suitcase ball frisbee skateboard surfboard skis racket bat glove pole rod net sign light window "
    "door wall floor roof fence tree trees grass water river lake ocean beach sand snow sky cloud clouds mountain "
    "hill road street sidewalk building house tower bridge field park garden kitchen bathroom bedroom room mirror "
    "sink toilet towel curtain picture painting photo television remote toy teddy flowers plant pot basket box "
    "paper pen"
).split()
COLORS = "red blue green yellow white black brown pink purple orange gray grey silver gold tan beige".split()
ADJECTIVES = (
    "big small large little tall short old young new wooden metal plastic glass open closed sliding empty full wet "
    "dry sunny cloudy rainy snowy bright dark clean dirty happy sad busy quiet round square striped long"
).split()
VERBS = (
    "holding wearing riding eating drinking sitting standing walking running flying swimming fishing playing "
    "looking carrying pulling pushing throwing catching cutting cooking reading watching sleeping smiling talking "
    "waiting parked crossing jumping lying hanging"
).split()
PLACES = "on in near behind under above beside next to at inside outside across along over".split()
NUMBERS = "0 1 2 3 4 5 6 7 8 9 10 11 12 15 20 25 30 50 100 one two three four five six seven eight nine ten".split()
OPENINGS = [
    "What is", "What are", "What color is", "What color are", "How many", "Is the", "Are the", "Is there",
    "Are there", "Where is", "Where are", "Why is", "Who is", "Which", "What kind of", "What type of",
    "What breed is", "What sport is", "What time is it", "Does the", "Do the", "Can you see", "What is the man",
    "What is the woman", "What is in the", "What's",
]


def corpus(seed=SEED, sentences=6000):
    rng = random.Random(seed)
    pick = rng.choice
    # Every printable ASCII character becomes a piece (character_coverage 1.0); others go through byte fallback.
    lines = [" ".join(string.ascii_uppercase), " ".join(string.digits), " ".join(string.punctuation)]
    for index in range(sentences):
        kind = index % 6
        if kind == 0:
            lines.append(f"{pick(OPENINGS)} {pick(PEOPLE)} {pick(VERBS)} {pick(PLACES)} the {pick(THINGS)}?")
        elif kind == 1:
            lines.append(f"A {pick(ADJECTIVES)} {pick(COLORS)} {pick(THINGS)} {pick(PLACES)} the {pick(THINGS)}.")
        elif kind == 2:
            lines.append(f"How many {pick(ANIMALS)} are {pick(VERBS)} {pick(PLACES)} the {pick(THINGS)}?")
        elif kind == 3:
            lines.append(
                f"The {pick(PEOPLE)} is {pick(VERBS)} a {pick(COLORS)} {pick(THINGS)} while the {pick(ANIMALS)} "
                f"is {pick(VERBS)}."
            )
        elif kind == 4:
            lines.append(
                f"There are {pick(NUMBERS)} {pick(ANIMALS)} and {pick(NUMBERS)} {pick(PEOPLE)} in the "
                f"{pick(ADJECTIVES)} {pick(THINGS)}."
            )
        else:
            lines.append(
                f"{pick(OPENINGS)} {pick(COLORS)} {pick(THINGS)}'s {pick(THINGS)}, {pick(ADJECTIVES)} or "
                f"{pick(ADJECTIVES)}?"
            )
    return lines


def train_spm():
    """spm.model bytes. Single-threaded over an in-memory corpus, so the same sentencepiece gives the same model."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()),
        model_writer=model,
        model_type="unigram",
        vocab_size=SPM_PIECES,
        pad_id=0, pad_piece="[PAD]", bos_id=1, bos_piece="[CLS]", eos_id=2, eos_piece="[SEP]", unk_id=3, unk_piece="[UNK]",
        byte_fallback=True,
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        num_threads=1,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        minloglevel=2,
    )
    return model.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Model


def vle_config_arguments():
    """Keyword arguments of upstream's VLEConfig (fresh dicts: VLEConfig pops model_type from them)."""
    return dict(
        text_config={
            "model_type": "deberta-v2",
            "vocab_size": TEXT_VOCAB_SIZE,
            "hidden_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "intermediate_size": 96,
            "hidden_act": "gelu",
            "max_position_embeddings": 512,
            "type_vocab_size": 0,
            "layer_norm_eps": 1e-7,
            "relative_attention": True,
            "max_relative_positions": -1,
            # deberta-v3-base has 256 buckets over 512 positions; 64 puts most distances of the long questions in
            # the logarithmic range (beyond 32).
            "position_buckets": 64,
            "pad_token_id": 0,
            "position_biased_input": False,
            "pos_att_type": "p2c|c2p",
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
        },
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_channels": 3,
            "image_size": IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-5,
        },
        num_token_types=2,
        hidden_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=80,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        id2label={index: label for index, label in enumerate(LABELS)},
        label2id={label: index for index, label in enumerate(LABELS)},
        architectures=["VLEForVQA"],
    )


def preprocessor_config():
    return {
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": IMAGE_SIZE},
    }


def randomize(model, seed, logit_scale=LOGIT_SCALE):
    """Seeded weights at unit-ish scale (upstream's 0.02 init gives every answer the same score); every parameter."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    touched = set()

    def normal(tensor, std, mean=0.0):
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std + mean)
        touched.add(id(tensor))

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                normal(module.weight, module.in_features ** -0.5)
                if module.bias is not None:
                    normal(module.bias, 0.1)
            elif isinstance(module, nn.Conv2d):
                normal(module.weight, module.weight[0].numel() ** -0.5)
                if module.bias is not None:
                    normal(module.bias, 0.1)
            elif isinstance(module, nn.Embedding):
                normal(module.weight, 1.0)
            elif isinstance(module, nn.LayerNorm):
                normal(module.weight, 0.1, 1.0)
                normal(module.bias, 0.1)
        normal(model.vle.vision_model.vision_model.embeddings.class_embedding, 1.0)
        normal(model.vle.token_type_embeddings.weight, 0.5)
        model.vqa_classifier[3].weight.mul_(logit_scale)
    missed = [name for name, parameter in model.named_parameters() if id(parameter) not in touched]
    if missed:
        raise RuntimeError(f"parameters left at upstream's init: {missed}")


# ----------------------------------------------------------------------------------------------------------------
# Upstream


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def import_upstream(vle_repo):
    """iflytek/VLE's models/VLE package from a checkout of UPSTREAM_COMMIT, with the shims of the docstring."""
    package = os.path.join(vle_repo, "models", "VLE")
    if not os.path.isdir(package):
        raise SystemExit(f"{package} does not exist: --vle-repo must be a checkout of {UPSTREAM_REPOSITORY}")
    wrong = {name: sha256(os.path.join(package, name)) for name in UPSTREAM_SOURCES}
    wrong = {name: digest for name, digest in wrong.items() if digest != UPSTREAM_SOURCES[name]}
    if wrong:
        raise SystemExit(f"{package} is not iflytek/VLE at {UPSTREAM_COMMIT}: {sorted(wrong)} differ")
    from transformers.models.bert.modeling_bert import BertAttention

    parameters = list(inspect.signature(BertAttention.forward).parameters)[: len(BERT_ATTENTION_PARAMETERS)]
    if parameters != BERT_ATTENTION_PARAMETERS:
        import transformers

        raise SystemExit(
            f"transformers {transformers.__version__}: BertAttention.forward takes {parameters}, not the "
            f"{BERT_ATTENTION_PARAMETERS} upstream's BertCrossLayer passes positionally; use transformers==4.54.1"
        )
    sys.dont_write_bytecode = True  # leave the checkout as it is
    sys.path.insert(0, os.path.join(vle_repo, "models"))
    import VLE  # noqa: N811  (upstream's package name)

    VLE.VLEConfig.has_no_defaults_at_init = True
    return VLE


class _Recorder:
    """What VLEForVQAPipeline fed the model and what the model returned, per call."""

    def __init__(self):
        self.inputs = []
        self.logits = []


def make_pipeline(VLE, model, processor):
    recorder = _Recorder()

    class RecordingPipeline(VLE.VLEForVQAPipeline):
        def preprocess(self, inputs):
            model_inputs = super().preprocess(inputs)
            recorder.inputs.append({name: value.clone() for name, value in model_inputs.items()})
            return model_inputs

        def _forward(self, model_inputs):
            outputs = super()._forward(model_inputs)
            recorder.logits.append(outputs["logits"].detach().clone())
            return outputs

    return RecordingPipeline(model=model, device="cpu", vle_processor=processor), recorder


def open_images():
    from PIL import Image

    images = []
    for name in IMAGES:
        with Image.open(os.path.join(REPO, "test", "fixtures", "images", name)) as image:
            image.load()
            images.append(image.copy())
    return images


def direct_logits(model, processor, images):
    """Logits of the model called directly on the processor's output, one per case."""
    import torch

    results = []
    with torch.no_grad():
        for image_index, question in CASES:
            encoding = processor(text=question, images=images[image_index], return_tensors="pt", padding=True)
            logits = model(
                input_ids=encoding["input_ids"],
                pixel_values=encoding["pixel_values"],
                attention_mask=encoding["attention_mask"],
            ).logits
            results.append((encoding, logits[0]))
    return results


def top5(logits):
    import torch

    scores = torch.softmax(logits, dim=-1)
    values, _indices = torch.sort(scores, descending=True)
    return values[:5].tolist()


def spread(logits):
    """(smallest gap between consecutive top-5 scores, largest top-1 score, distinct top-1 answers) over the cases."""
    gaps, tops = [], []
    for row in logits:
        scores = top5(row)
        gaps.append(min(a - b for a, b in zip(scores, scores[1:])))
        tops.append(scores[0])
    return min(gaps), max(tops), len({int(row.argmax()) for row in logits})


def run_upstream(VLE, checkpoint):
    """Loads checkpoint/ with upstream's classes and runs the pipeline and the model on every case."""
    import torch

    model = VLE.VLEForVQA.from_pretrained(checkpoint).eval()
    model.config.vision_config._attn_implementation = "eager"
    processor = VLE.VLEProcessor.from_pretrained(checkpoint)
    images = open_images()
    pipeline, recorder = make_pipeline(VLE, model, processor)
    direct = direct_logits(model, processor, images)
    pixel_values = [None] * len(IMAGES)
    cases = []
    for index, (image_index, question) in enumerate(CASES):
        answers = pipeline(image=images[image_index], question=question, top_k=5)
        fed = recorder.inputs[index]
        encoding, logits = direct[index]
        for name in ("input_ids", "attention_mask", "pixel_values"):
            if not torch.equal(fed[name], encoding[name]):
                raise AssertionError(f"case {index}: the pipeline's {name} differ from the processor's")
        if not torch.equal(recorder.logits[index][0], logits):
            difference = (recorder.logits[index][0] - logits).abs().max().item()
            raise AssertionError(f"case {index}: the pipeline's logits differ from the model's by {difference}")
        if pixel_values[image_index] is None:
            pixel_values[image_index] = fed["pixel_values"]
        elif not torch.equal(pixel_values[image_index], fed["pixel_values"]):
            raise AssertionError(f"{IMAGES[image_index]}: pixel_values differ between questions")
        cases.append(
            {
                "image": image_index,
                "question": question,
                "inputIds": fed["input_ids"][0].tolist(),
                "attentionMask": fed["attention_mask"][0].tolist(),
                "logits": logits,
                "topK": answers,
            }
        )
    return model, processor, pixel_values, cases


# ----------------------------------------------------------------------------------------------------------------
# Output


def _number(value):
    # 9 significant digits round-trip float32 exactly.
    return float(f"{value:.9g}")


def _floats(tensor):
    return [_number(value) for value in tensor.detach().reshape(-1).tolist()]


def versions():
    import PIL
    import sentencepiece
    import tokenizers
    import torch
    import transformers

    return {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "sentencepiece": sentencepiece.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def reference_json(pixel_values, cases, seed, gap):
    return {
        "model": "vle-small",
        "upstream": {
            "repository": UPSTREAM_REPOSITORY,
            "commit": UPSTREAM_COMMIT,
            "classes": ["VLEForVQA", "VLEProcessor", "VLEForVQAPipeline"],
        },
        "versions": versions(),
        "checkpoint": "test/fixtures/upstream/vle-small/checkpoint",
        "seed": seed,
        "smallestTop5Gap": _number(gap),
        "images": [
            {
                "image": f"test/fixtures/images/{name}",
                "pixelValues": {"dims": list(pixels.shape), "data": _floats(pixels)},
            }
            for name, pixels in zip(IMAGES, pixel_values)
        ],
        "cases": [
            {
                "image": case["image"],
                "question": case["question"],
                "inputIds": case["inputIds"],
                "attentionMask": case["attentionMask"],
                "logits": _floats(case["logits"]),
                "topK": [{"answer": entry["answer"], "score": _number(entry["score"])} for entry in case["topK"]],
            }
            for case in cases
        ],
    }


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, ensure_ascii=False, separators=(",", ":"))
        handle.write("\n")


# ----------------------------------------------------------------------------------------------------------------
# Main


def generate(VLE, out):
    import torch

    checkpoint = os.path.join(out, "checkpoint")
    shutil.rmtree(checkpoint, ignore_errors=True)
    os.makedirs(checkpoint)
    with open(os.path.join(checkpoint, "spm.model"), "wb") as handle:
        handle.write(train_spm())
    with open(os.path.join(checkpoint, "preprocessor_config.json"), "w", encoding="utf-8") as handle:
        json.dump(preprocessor_config(), handle, indent=2, sort_keys=True)
        handle.write("\n")
    processor = VLE.VLEProcessor.from_pretrained(checkpoint)
    images = open_images()

    chosen = None
    for attempt in range(MAX_SEED_ATTEMPTS):
        seed = SEED + attempt
        torch.manual_seed(seed)
        config = VLE.VLEConfig(**vle_config_arguments())
        model = VLE.VLEForVQA(config).eval()
        model.config.vision_config._attn_implementation = "eager"
        randomize(model, seed)
        gap, top1, distinct = spread([logits for _encoding, logits in direct_logits(model, processor, images)])
        print(f"seed {seed}: smallest top-5 gap {gap:.5f}, largest top-1 {top1:.3f}, {distinct} top answers", flush=True)
        if gap > MIN_TOP5_GAP and top1 < MAX_TOP1 and distinct >= MIN_DISTINCT_TOP1:
            chosen = (seed, model, config)
            break
    if chosen is None:
        raise SystemExit(f"no seed in {MAX_SEED_ATTEMPTS} gave well separated, varied answers")
    seed, model, config = chosen

    # As save_pretrained writes them (see the docstring for why not save_pretrained itself).
    config.to_json_file(os.path.join(checkpoint, "config.json"))
    torch.save(model.state_dict(), os.path.join(checkpoint, "pytorch_model.bin"))

    loaded, _processor, pixel_values, cases = run_upstream(VLE, checkpoint)
    for (name, saved), (loaded_name, value) in zip(model.state_dict().items(), loaded.state_dict().items()):
        if name != loaded_name or not torch.equal(saved, value):
            raise AssertionError(f"{name}: the checkpoint does not load back as saved")
    gap, _top1, _distinct = spread([case["logits"] for case in cases])
    write_json(os.path.join(out, "reference.json"), reference_json(pixel_values, cases, seed, gap))
    total = sum(os.path.getsize(os.path.join(checkpoint, name)) for name in os.listdir(checkpoint))
    print(f"seed {seed}; smallest top-5 gap {gap:.5f}; checkpoint {total} bytes; "
          f"reference.json {os.path.getsize(os.path.join(out, 'reference.json'))} bytes", flush=True)
    for case in cases:
        print(f"  image {case['image']}: {len(case['inputIds'])} tokens, top-1 {case['topK'][0]['answer']!r} "
              f"{case['topK'][0]['score']:.4f}: {case['question'][:60]!r}", flush=True)


def check(VLE, out):
    """Recomputes the committed references from the committed checkpoint; prints the largest differences."""
    with open(os.path.join(out, "reference.json"), encoding="utf-8") as handle:
        reference = json.load(handle)
    _model, _processor, pixel_values, cases = run_upstream(VLE, os.path.join(out, "checkpoint"))
    print(f"with {versions()} against references from {reference['versions']}")
    pixels = max(
        max(abs(a - b) for a, b in zip(_floats(mine), entry["pixelValues"]["data"]))
        for mine, entry in zip(pixel_values, reference["images"])
    )
    ids = all(case["inputIds"] == entry["inputIds"] for case, entry in zip(cases, reference["cases"]))
    logits = max(
        max(abs(a - b) for a, b in zip(_floats(case["logits"]), entry["logits"]))
        for case, entry in zip(cases, reference["cases"])
    )
    answers = all(
        [item["answer"] for item in case["topK"]] == [item["answer"] for item in entry["topK"]]
        for case, entry in zip(cases, reference["cases"])
    )
    scores = max(
        max(abs(item["score"] - other["score"]) for item, other in zip(case["topK"], entry["topK"]))
        for case, entry in zip(cases, reference["cases"])
    )
    print(f"pixel_values max |diff| {pixels:.3g}; input_ids equal: {ids}; logits max |diff| {logits:.3g}; "
          f"top-5 answers equal: {answers}; scores max |diff| {scores:.3g}")
    if not (ids and answers and math.isfinite(logits)):
        raise SystemExit(1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vle-repo", required=True, help=f"a checkout of {UPSTREAM_REPOSITORY} at {UPSTREAM_COMMIT}")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for checkpoint/ and reference.json")
    parser.add_argument("--check", action="store_true", help="recompute and compare with the committed references")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    VLE = import_upstream(args.vle_repo)
    if args.check:
        check(VLE, args.out)
    else:
        os.makedirs(args.out, exist_ok=True)
        generate(VLE, args.out)


if __name__ == "__main__":
    main()
