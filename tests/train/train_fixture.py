"""Helpers of the training tests: tiny images and a few dozen rows of the TWN training format."""

from __future__ import annotations

import json

from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 60), "blue": (30, 60, 220),
           "yellow": (230, 220, 40), "purple": (140, 40, 170), "black": (10, 10, 10)}
SHAPES = ("square", "circle")


def draw(colour: str, shape: str) -> Image.Image:
    image = Image.new("RGB", (56, 56), "white")
    box = (12, 12, 44, 44)
    painter = ImageDraw.Draw(image)
    (painter.rectangle if shape == "square" else painter.ellipse)(box, fill=COLOURS[colour])
    return image


def make_rows(folder, with_negatives: bool = True) -> list[dict]:
    """24 rows: text -> image, image -> text, text -> text; teacher CoTs on queries and some positives."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    names = list(COLOURS)
    for c, colour in enumerate(names):
        for shape in SHAPES:
            path = f"{colour}_{shape}.png"
            draw(colour, shape).save(images / path)
            other = names[(c + 1) % len(names)]
            cot = f"the colour is {colour} and the shape is a {shape}"
            rows.append({"query": f"a {colour} {shape}", "positive_image": path, "query_cot": cot,
                         "negatives": [f"a {other} {shape}"] if with_negatives else None})
            rows.append({"query_image": path, "instruction": "Describe the picture.",
                         "positive": f"a picture of a {colour} {shape}", "query_cot": f"I see a {colour} {shape}",
                         "positive_cot": f"a {shape} coloured {colour}"})
    return rows


def write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def start_model(**config_kwargs):
    """`tiny_twn` with the gate re-initialised as `build_twn` leaves it (tiny_twn exaggerates it for gate tests),
    i.e. what stage sft starts from."""
    import torch

    from twn_hf.testing import tiny_twn

    model = tiny_twn("qwen3_vl", **{"max_think_tokens": 5, **config_kwargs})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for layer in model.gate.net:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
    return model


def batch_of(rows, image_root, model, indices=None):
    """A collated `Batch` of `rows` (dicts), as the training loop would build it."""
    from twn_hf.train.collate import collate_examples
    from twn_hf.train.data import parse_row

    indices = range(len(rows)) if indices is None else indices
    return collate_examples([parse_row(rows[i], i, image_root, model.config.max_image_pixels) for i in indices])
