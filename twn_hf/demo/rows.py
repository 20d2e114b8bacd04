"""TWN-Digits queries as inputs: training rows (the `twn_hf.train` format) and `encode` inputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

from twn_hf.demo.digits import DigitsData, Query


def image_name(index: int) -> str:
    return f"digit_{index:04d}.png"


def write_images(data: DigitsData, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(data.images):
        path = folder / image_name(index)
        if not path.exists():
            image.save(path)


def query_input(query: Query, data: DigitsData) -> dict:
    """The `encode` input of a query: instruction, optional image, optional text."""
    item = {"instruction": query.instruction}
    if query.text:
        item["text"] = query.text
    if query.image is not None:
        item["image"] = data.images[query.image]
    return item


def candidate_input(candidate, data: DigitsData):
    """Text candidates are plain strings; image candidates are the digit images."""
    return candidate if isinstance(candidate, str) else data.images[candidate]


def training_row(query: Query, rng: random.Random, negatives: int = 1) -> dict:
    """One row of the training format; hard negatives are other candidates of the same query."""
    row = {"query": query.text, "query_image": image_name(query.image) if query.image is not None else None,
           "instruction": query.instruction, "query_cot": query.cot}
    others = [c for i, c in enumerate(query.candidates) if i != query.positive]
    chosen = rng.sample(others, negatives)
    positive = query.candidates[query.positive]
    if isinstance(positive, str):
        row.update(positive=positive, negatives=chosen)
    else:
        row.update(positive_image=image_name(positive), negative_images=[image_name(c) for c in chosen])
    return row


def write_rows(queries: list[Query], path: Path, seed: int) -> int:
    """JSONL rows in a seeded shuffled order; returns the row count."""
    rng = random.Random(seed)
    rows = [training_row(q, rng) for q in queries]
    rng.shuffle(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in row.items() if v is not None}) + "\n")
    return len(rows)
