"""BLIP against transformers itself.

transformers' `BlipForConditionalGeneration` is random-initialised (seeded, weights spread so that decoding
decisions are not near ties), saved as the hub saves it (`save_pretrained` plus `BlipProcessor.save_pretrained`:
config.json, model.safetensors or pytorch_model.bin, preprocessor_config.json, tokenizer.json, vocab.txt, ...),
exported by the project's exporter exactly as a user runs it (`models/export.py blip --checkpoint DIR`), and
transformers' own outputs are recorded: `BlipProcessor` pixel values, the vision model's output, the first decoding
step's logits, and `generate()` greedy and beam, with and without a prefix.

Variants (each a folder under the part's output):
  tied        the config ties the output layer to the word embeddings (the hub's default); .safetensors
  untied      tie_word_embeddings false, a separate output layer; pytorch_model.bin (the other hub format)
  stored-head the config says tied, but the checkpoint stores a different output layer: transformers 5 keeps the
              stored one (it warns and does not tie when both are present and differ)
"""

import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn

from vqa_llm_export import testmodels_blip

IMAGES = ("fishing.jpg", "truck.jpg", "synthetic.png")
FIRST_SEED = 20261201
# Greedy decisions must be further apart than this in transformers' float32 scores, so that summation order in
# another runtime cannot flip them.
MARGIN = 2e-3

# Runtime option names (CaptionOptions) -> transformers generate() keywords. max/min are new-token counts.
CASES = (
    ("greedy", 0, {"maxNewTokens": 12}),
    ("greedy-prefix", 1, {"prefix": "a picture of", "maxNewTokens": 10}),
    ("beam3", 0, {"numBeams": 3, "maxNewTokens": 12, "minNewTokens": 3}),
    ("beam3-prefix", 1, {"numBeams": 3, "prefix": "a photo of", "maxNewTokens": 10}),
    ("beam4", 2, {"numBeams": 4, "maxNewTokens": 14}),
    ("repetition", 2, {"repetitionPenalty": 1.5, "maxNewTokens": 12}),
    ("beam3-repetition", 1, {"numBeams": 3, "repetitionPenalty": 1.3, "maxNewTokens": 12}),
    ("defaults", 0, {}),
    # Hits the default length limit (SEP is barred until then): transformers 5 allows 20 new tokens, 4.x 19.
    ("defaults-to-limit", 1, {"minNewTokens": 19}),
)
VARIANTS = (
    # name, tie in config, separate stored head, weights file format
    ("tied", True, False, "safetensors"),
    ("untied", False, True, "bin"),
    ("stored-head", True, True, "safetensors"),
)


def generate_kwargs(options):
    kwargs = {"num_beams": options.get("numBeams", 1), "do_sample": False}
    if "maxNewTokens" in options:
        kwargs["max_new_tokens"] = options["maxNewTokens"]
    if "minNewTokens" in options:
        kwargs["min_new_tokens"] = options["minNewTokens"]
    if "repetitionPenalty" in options:
        kwargs["repetition_penalty"] = options["repetitionPenalty"]
    return kwargs


def hf_config(vocab_size, tie, base):
    from transformers import BlipConfig

    tiny = testmodels_blip.standin_config() if base else testmodels_blip.tiny_config(vocab_size)
    text = dict(tiny["text_config"])
    text.update({"vocab_size": vocab_size + 2, "bos_token_id": vocab_size, "tie_word_embeddings": tie})
    vision = dict(tiny["vision_config"])
    if not base:
        vision.update({"image_size": 48, "patch_size": 8})
    return BlipConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie)


def randomize(model, seed, separate_head):
    """Spread weights (upstream's 0.02 init makes every logit nearly equal); keeps a tied head tied."""
    generator = torch.Generator().manual_seed(seed)

    def normal(tensor, std, mean=0.0):
        with torch.no_grad():
            tensor.copy_(torch.randn(tensor.shape, generator=generator) * std + mean)

    head = model.text_decoder.cls.predictions
    for module in model.modules():
        if module is head.decoder:
            continue
        if isinstance(module, nn.Linear):
            normal(module.weight, 1.0 / math.sqrt(module.in_features))
            if module.bias is not None:
                normal(module.bias, 0.1)
        elif isinstance(module, nn.Conv2d):
            fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            normal(module.weight, 1.0 / math.sqrt(fan_in))
            normal(module.bias, 0.1)
        elif isinstance(module, nn.LayerNorm):
            normal(module.weight, 0.2, 1.0)
            normal(module.bias, 0.2)
        elif isinstance(module, nn.Embedding):
            normal(module.weight, 1.0 / math.sqrt(module.embedding_dim) * 3.0)
    embeddings = model.vision_model.embeddings
    normal(embeddings.class_embedding, 0.5)
    normal(embeddings.position_embedding.weight if hasattr(embeddings.position_embedding, "weight")
           else embeddings.position_embedding, 0.5)
    if separate_head:
        with torch.no_grad():
            head.decoder.weight = nn.Parameter(torch.randn(head.decoder.weight.shape, generator=generator)
                                               * 3.0 / math.sqrt(head.decoder.in_features))
    normal(head.bias, 0.5)
    with torch.no_grad():
        head.bias[model.config.text_config.sep_token_id] += 2.0  # captions end on [SEP] now and then
        if head.decoder.bias is not None and head.decoder.bias is not head.bias:
            head.decoder.bias.copy_(head.bias)
    return model.eval()


def save_checkpoint(model, processor, folder, separate_head, tie, weights_format):
    """As the hub holds it. A separate head under a tying config is written into the weights file by hand:
    save_pretrained drops tied keys."""
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    if weights_format == "bin":
        # transformers 5 writes safetensors only (safe_serialization=False is ignored); older checkpoints on the hub,
        # Salesforce/blip-image-captioning-base's first upload among them, hold the same state dict in a torch.save zip.
        from safetensors.torch import load_file

        path = os.path.join(folder, "model.safetensors")
        torch.save(load_file(path), os.path.join(folder, "pytorch_model.bin"))
        os.remove(path)
    if separate_head and tie:
        from safetensors.torch import load_file, save_file

        path = os.path.join(folder, "model.safetensors")
        state = load_file(path)
        state["text_decoder.cls.predictions.decoder.weight"] = model.text_decoder.cls.predictions.decoder.weight.detach().clone()
        save_file(state, path, metadata={"format": "pt"})


def tensor_json(array, digits=9):
    array = np.asarray(array, dtype=np.float64)
    return {"dims": list(array.shape), "data": [float(f"{value:.{digits}g}") for value in array.reshape(-1)]}


def greedy_margins(model, pixel_values, input_ids, options):
    """Smallest gap between the best and second-best processed score over the greedy steps."""
    with torch.no_grad():
        output = model.generate(pixel_values=pixel_values, input_ids=input_ids, output_scores=True,
                                return_dict_in_generate=True, **generate_kwargs(options))
    smallest = math.inf
    for scores in output.scores:
        top = torch.topk(scores[0].double(), 2).values
        if torch.isfinite(top).all():
            smallest = min(smallest, float(top[0] - top[1]))
    return smallest


def make_variant(folder, repo, name, tie, separate_head, weights_format, base, log):
    from transformers import BertTokenizer, BlipForConditionalGeneration, BlipImageProcessor, BlipProcessor
    from PIL import Image

    vocab = testmodels_blip.standin_vocab() if base else testmodels_blip.tiny_vocab()
    checkpoint = os.path.join(folder, "checkpoint")
    os.makedirs(checkpoint, exist_ok=True)
    # The hub's BLIP repos hold vocab.txt beside tokenizer.json; the tokenizer is built from it as BERT's was.
    with open(os.path.join(checkpoint, "vocab.txt"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer.from_pretrained(checkpoint, do_lower_case=True)
    assert tokenizer.vocab_size == len(vocab), "the tokenizer did not take the vocabulary"
    config = hf_config(len(vocab), tie, base)
    size = config.vision_config.image_size
    image_processor = BlipImageProcessor(size={"height": size, "width": size})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    images = [Image.open(os.path.join(repo, "test", "fixtures", "images", image)).convert("RGB") for image in IMAGES]
    pixel_values = [processor(images=image, return_tensors="pt")["pixel_values"] for image in images]

    def prompt(options):
        prefix = options.get("prefix")
        if not prefix:
            return None
        return processor(images=images[0], text=prefix, return_tensors="pt")["input_ids"]

    seed = FIRST_SEED
    while True:
        torch.manual_seed(seed)
        model = randomize(BlipForConditionalGeneration(config), seed, separate_head)
        smallest = min(greedy_margins(model, pixel_values[index], prompt(options), options)
                       for _, index, options in CASES if options.get("numBeams", 1) == 1)
        if smallest > MARGIN:
            break
        log(f"{name}: seed {seed} rejected (closest greedy decision {smallest:.1e})")
        seed += 1
    log(f"{name}: seed {seed}, closest greedy decision {smallest:.2e}")
    save_checkpoint(model, processor, checkpoint, separate_head, tie, weights_format)

    # What users get: the checkpoint loaded back by transformers, exported by the project's own command.
    model = BlipForConditionalGeneration.from_pretrained(checkpoint).eval()
    head = model.text_decoder.cls.predictions.decoder.weight
    tied = torch.equal(head, model.text_decoder.bert.embeddings.word_embeddings.weight)
    assert tied == (not separate_head), f"{name}: transformers loaded the head {'tied' if tied else 'untied'}"
    export = os.path.join(folder, "model")
    subprocess.run([sys.executable, os.path.join(repo, "models", "export.py"), "blip", "--checkpoint", checkpoint,
                    "--out", export, "--name", f"upstream-blip-{name}"], check=True)

    reference = {"variant": name, "seed": seed, "tieWordEmbeddings": tie, "separateHead": separate_head,
                 "weightsFormat": weights_format, "closestGreedyDecision": smallest, "images": [], "generation": []}
    with torch.no_grad():
        for image, pixels in zip(IMAGES, pixel_values):
            embeds = model.vision_model(pixel_values=pixels).last_hidden_state
            bos = torch.tensor([[config.text_config.bos_token_id]])
            logits = model.text_decoder(input_ids=bos, encoder_hidden_states=embeds).logits[0, -1]
            reference["images"].append({"image": f"test/fixtures/images/{image}", "pixelValues": tensor_json(pixels),
                                        "imageEmbeds": tensor_json(embeds), "firstStepLogits": tensor_json(logits)})
        for case, index, options in CASES:
            input_ids = prompt(options)
            output = model.generate(pixel_values=pixel_values[index], input_ids=input_ids, **generate_kwargs(options))
            ids = output[0].tolist()
            prompt_length = 1 if input_ids is None else input_ids.shape[1] - 1  # bos replaces [CLS]; [SEP] dropped
            new_ids = ids[prompt_length:]
            while new_ids and new_ids[-1] == config.text_config.pad_token_id:
                new_ids.pop()
            # [DEC] (bos) lies past the tokenizer's vocabulary: dropped before decoding, as the runtime does.
            text = processor.decode([i for i in ids if i < len(vocab)], skip_special_tokens=True).strip()
            prefix = options.get("prefix", "").lower()
            if prefix and text.startswith(prefix):
                text = text[len(prefix):].strip()
            reference["generation"].append({"name": case, "input": index, "options": options,
                                            "promptIds": ids[:prompt_length], "tokenIds": new_ids, "text": text})
            log(f"{name}: {case:>17} {new_ids} {text!r}")
    with open(os.path.join(folder, "reference.json"), "w", encoding="utf-8") as handle:
        json.dump(reference, handle)


def make(out, repo, base=False, log=print):
    for name, tie, separate_head, weights_format in VARIANTS:
        make_variant(os.path.join(out, name), repo, name, tie, separate_head, weights_format, base, log)
