"""The fixed benchmark workloads: mixed texts / images / text+image, and text-only inputs of set token length.

Everything is a pure function of the seed: the same config gives the same inputs on every machine.
Images are seeded random colour blocks (their content does not change the cost; their size does).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

WORDS = (
    "a photo of the dog running on beach at sunset two cats are sleeping red sofa near window quick brown fox "
    "jumps over lazy man is riding bicycle down busy city street find video that shows person cooking pasta in "
    "small kitchen what shown this picture how many people standing front building train leaves arrives journey "
    "company reported revenue million year diagram explaining water cycle evaporation condensation precipitation "
    "children were playing football park while their parents watched from benches mountains rivers forests lakes "
    "landscape changes with every season model encodes text images videos into shared embedding space search"
).split()


def make_text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def make_image(rng: random.Random, width: int, height: int) -> Image.Image:
    """A width x height RGB image of 8x8 random colour blocks."""
    blocks = np.random.default_rng(rng.randrange(2**32)).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return Image.fromarray(blocks).resize((width, height), Image.Resampling.NEAREST)


def mixed_workload(spec: dict) -> list:
    """`texts` texts, `images` images and `text_images` text+image pairs, interleaved in a seeded order."""
    rng = random.Random(spec.get("seed", 0))
    sizes = [tuple(size) for size in spec["image_sizes"]]
    items = []
    for _ in range(spec["texts"]):
        items.append(make_text(rng, rng.randint(*spec["text_words"])))
    for _ in range(spec["images"]):
        items.append(make_image(rng, *rng.choice(sizes)))
    for _ in range(spec["text_images"]):
        items.append({"text": make_text(rng, rng.randint(*spec["caption_words"])),
                      "image": make_image(rng, *rng.choice(sizes))})
    rng.shuffle(items)
    return items


def context_workload(model, target_tokens: int, n: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """`n` texts whose full prompt (instruction, text, think prompt, chat template) is ~`target_tokens` tokens.

    Returns the texts and their measured prompt lengths.
    """
    from twn_hf.modeling.inputs_twn import TWNInput

    rng = random.Random(seed * 1000 + target_tokens)
    base = len(model.prepare_features([TWNInput(text="x")])["input_ids"][0]) - 1
    texts, lengths = [], []
    for _ in range(n):
        words: list[str] = []
        step = max(1, (target_tokens - base) // 2)
        while True:
            candidate = words + [rng.choice(WORDS) for _ in range(step)]
            length = len(model.prepare_features([TWNInput(text=" ".join(candidate))])["input_ids"][0])
            if length > target_tokens:
                if step == 1:
                    break
                step = max(1, step // 2)
                continue
            words = candidate
            if length == target_tokens:
                break
        text = " ".join(words) if words else rng.choice(WORDS)
        texts.append(text)
        lengths.append(len(model.prepare_features([TWNInput(text=text)])["input_ids"][0]))
    return texts, lengths
