"""TWN-Digits: an MMEB-shaped benchmark on scikit-learn's handwritten digits (no download).

Six tasks, each a list of queries with a candidate list and one positive (hit@1):

direct (no intermediate step needed)
    ``img2name``   image → the digit's name among the ten names
    ``name2img``   "a handwritten four" → the image of a four among ten images (one per digit)
    ``img2img``    image → another image of the same digit among ten images
reasoning (a computed step, one to three operations deep)
    ``img_math2num``  image + "this digit plus three, times two" → the number among the results of the
                      same chain applied to every digit (so the magnitude alone never gives it away)
    ``math2img``      "a digit equal to fifteen minus eight" → the image of that digit among ten
    ``img_rel2img``   image + "the digit two more than this one" → the image of that digit among ten

A teacher writes the chain of thought for every query by program ("This is a four. Four plus
three is seven. Seven times two is fourteen. The answer is fourteen."). Splits are image-disjoint
and seeded; candidates come from the query's own split.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

IMAGE_SIDE = 56  # 8x8 digits upscaled: 4 visual tokens with a patch-14, merge-2 processor

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]

DIRECT_TASKS = ("img2name", "name2img", "img2img")
REASONING_TASKS = ("img_math2num", "math2img", "img_rel2img")
TASKS = DIRECT_TASKS + REASONING_TASKS
GROUP_OF = {**{t: "direct" for t in DIRECT_TASKS}, **{t: "reasoning" for t in REASONING_TASKS}}

INSTRUCTIONS = {
    "img2name": "Find the name of the handwritten digit.",
    "name2img": "Find the image of the described digit.",
    "img2img": "Find another image of the same digit.",
    "img_math2num": "Find the number that the description gives.",
    "math2img": "Find the image of the described digit.",
    "img_rel2img": "Find the image of the described digit.",
}


def number_word(n: int) -> str:
    if not 0 <= n < 100:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + ("" if ones == 0 else " " + ONES[ones])


@dataclass(frozen=True)
class Op:
    """One arithmetic step: `plus k`, `minus k` or `times k`."""

    kind: str
    k: int

    def apply(self, x: int) -> int:
        return {"plus": x + self.k, "minus": x - self.k, "times": x * self.k}[self.kind]

    def phrase(self) -> str:
        return f"{self.kind} {number_word(self.k)}"


def apply_chain(x: int, chain: list[Op]) -> list[int]:
    """Every intermediate value, starting with x."""
    values = [x]
    for op in chain:
        values.append(op.apply(values[-1]))
    return values


def chain_cot(start_phrase: str, x: int, chain: list[Op]) -> str:
    """The teacher's chain of thought for applying `chain` to x."""
    values = apply_chain(x, chain)
    steps = [f"{number_word(a).capitalize()} {op.phrase()} is {number_word(b)}."
             for a, op, b in zip(values, chain, values[1:])]
    return " ".join([start_phrase, *steps, f"The answer is {number_word(values[-1])}."])


@dataclass
class Query:
    """One benchmark query with its candidates; `positive` indexes `candidates`."""

    task: str
    text: str | None
    image: int | None  # index into the image table
    candidates: list  # str (text candidates) or int (image indices)
    positive: int
    cot: str  # the teacher's chain of thought
    instruction: str = ""
    depth: int = 0

    @property
    def group(self) -> str:
        return GROUP_OF[self.task]


@dataclass
class DigitsData:
    images: list[Image.Image]
    labels: np.ndarray
    splits: dict[str, np.ndarray]  # split -> image indices
    queries: dict[str, list[Query]] = field(default_factory=dict)  # split -> queries


def load_digit_images() -> tuple[list[Image.Image], np.ndarray]:
    """The 1,797 8x8 scikit-learn digits as 56x56 RGB images (dark ink on white), and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = []
    for pixels in digits.images:
        ink = (255 - pixels * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(ink, mode="L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BILINEAR)
        images.append(image.convert("RGB"))
    return images, digits.target.astype(int)


def split_indices(n: int, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_train, n_val = int(fractions[0] * n), int(fractions[1] * n)
    return {"train": order[:n_train], "validation": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}


def _random_chain(rng: random.Random, depth: int) -> list[Op]:
    """An op chain safe for every digit 0-9 (values stay in 0..99) and injective (distinct results)."""
    while True:
        chain, top = [], 9
        for _ in range(depth):
            kind = rng.choice(("plus", "times"))
            op = Op("plus", rng.randint(1, 5)) if kind == "plus" else Op("times", rng.randint(2, 3))
            chain.append(op)
            top = op.apply(top)
        if top < 100:
            return chain


def _relation_chain(rng: random.Random, digit: int, depth: int) -> list[Op] | None:
    """A chain taking `digit` to another digit 0-9 (intermediates in 0..99), or None if none was found."""
    for _ in range(50):
        chain, value = [], digit
        for _ in range(depth):
            kind = rng.choice(("plus", "minus", "times"))
            k = rng.randint(2, 3) if kind == "times" else rng.randint(1, 5)
            op = Op(kind, k)
            value = op.apply(value)
            chain.append(op)
            if not 0 <= value < 100:
                break
        if 0 <= value <= 9 and value != digit:
            return chain
    return None


def _expression_for(rng: random.Random, target: int, depth: int) -> tuple[int, list[Op]] | None:
    """A start number and chain whose result is `target` (a digit), e.g. fifteen minus eight."""
    for _ in range(100):
        start = rng.randint(0, 19)
        chain = _relation_chain(rng, start, depth) if depth > 0 else []
        if chain is not None and apply_chain(start, chain)[-1] == target:
            return start, chain
    return None


def _one_image_per_digit(rng: random.Random, by_digit: dict[int, list[int]], exclude: int | None = None) -> list[int]:
    return [rng.choice([i for i in by_digit[d] if i != exclude] or by_digit[d]) for d in range(10)]


def make_queries(images_idx: np.ndarray, labels: np.ndarray, seed: int, per_image: int = 1,
                 text_queries: int = 0) -> list[Query]:
    """Queries of all six tasks over one split's images; text-only tasks get `text_queries` each."""
    rng = random.Random(seed)
    by_digit = {d: [int(i) for i in images_idx if labels[i] == d] for d in range(10)}
    queries: list[Query] = []
    for _ in range(per_image):
        for index in (int(i) for i in images_idx):
            digit = int(labels[index])
            seen = f"This is a {number_word(digit)}."
            queries.append(Query("img2name", None, index, [number_word(d) for d in range(10)], digit,
                                 f"{seen} The answer is {number_word(digit)}.", INSTRUCTIONS["img2name"]))
            queries.append(Query("img2img", None, index, _one_image_per_digit(rng, by_digit, exclude=index), digit,
                                 f"{seen} The answer is {number_word(digit)}.", INSTRUCTIONS["img2img"]))
            depth = rng.randint(1, 3)
            chain = _random_chain(rng, depth)
            results = [apply_chain(d, chain)[-1] for d in range(10)]
            text = "this digit " + ", ".join(op.phrase() for op in chain)
            queries.append(Query("img_math2num", text, index, [number_word(r) for r in results], digit,
                                 chain_cot(seen, digit, chain), INSTRUCTIONS["img_math2num"], depth))
            depth = rng.randint(1, 3)
            relation = _relation_chain(rng, digit, depth)
            if relation is not None:
                target = apply_chain(digit, relation)[-1]
                text = "the digit you get from this one " + ", ".join(op.phrase() for op in relation)
                queries.append(Query("img_rel2img", text, index, _one_image_per_digit(rng, by_digit), target,
                                     chain_cot(seen, digit, relation), INSTRUCTIONS["img_rel2img"], depth))
    for _ in range(text_queries):
        digit = rng.randint(0, 9)
        queries.append(Query("name2img", f"a handwritten {number_word(digit)}", None,
                             _one_image_per_digit(rng, by_digit), digit,
                             f"The digit is {number_word(digit)}. The answer is {number_word(digit)}.",
                             INSTRUCTIONS["name2img"]))
        depth = rng.randint(1, 3)
        found = _expression_for(rng, digit, depth)
        if found is not None:
            start, chain = found
            text = "a digit equal to " + number_word(start) + " " + ", ".join(op.phrase() for op in chain)
            cot = chain_cot(f"Start from {number_word(start)}.", start, chain)
            queries.append(Query("math2img", text, None, _one_image_per_digit(rng, by_digit), digit, cot,
                                 INSTRUCTIONS["math2img"], depth))
    return queries


def build_digits(seed: int = 0, text_queries: dict[str, int] | None = None) -> DigitsData:
    """Images, seeded image-disjoint splits and the queries of every split."""
    images, labels = load_digit_images()
    splits = split_indices(len(images), seed)
    text_queries = text_queries or {"train": 1000, "validation": 200, "test": 300}
    data = DigitsData(images, labels, splits)
    for offset, (name, idx) in enumerate(splits.items()):
        data.queries[name] = make_queries(idx, labels, seed=seed * 100 + offset, text_queries=text_queries[name])
    return data
