"""The training-row format: parsing, lazy validation, bad rows, the MMEB converter, and the batch order."""

from __future__ import annotations

import json

import pytest
from train_fixture import draw, write_jsonl

from twn_hf.train.collate import ShardedBatchSampler, collate_examples, iterate_batches
from twn_hf.train.data import (
    BadRow,
    BadRowError,
    RowDataset,
    convert_mmeb,
    convert_mmeb_row,
    load_rows,
    parse_row,
    scan_rows,
)

PIXELS = 112 * 112


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "img").mkdir()
    draw("red", "square").save(tmp_path / "img" / "red.png")
    draw("blue", "circle").save(tmp_path / "img" / "blue.png")
    (tmp_path / "img" / "broken.png").write_bytes(b"this is not a png")
    return tmp_path


def test_parse_a_full_row(folder):
    row = {"query": " a red square ", "query_image": "red.png", "instruction": "Find it.", "query_cot": "red, square",
           "positive": "a blue circle", "positive_image": ["blue.png"], "positive_cot": "blue",
           "negatives": ["a green thing", None], "negative_images": [None, "red.png"],
           "query_video": ["red.png", "blue.png"]}
    example = parse_row(row, 7, str(folder / "img"), PIXELS, max_negatives=2)
    assert example.row == 7 and example.query.text == "a red square" and example.query.instruction == "Find it."
    assert len(example.query.images) == 1 and len(example.query.video) == 2
    assert example.positive.text == "a blue circle" and len(example.positive.images) == 1
    assert [n.text for n in example.negatives] == ["a green thing", None] and len(example.negatives[1].images) == 1
    assert (example.query_cot, example.positive_cot) == ("red, square", "blue")
    assert len(parse_row(row, 7, str(folder / "img"), PIXELS, max_negatives=1).negatives) == 1


@pytest.mark.parametrize("row, message", [
    ({"query": "q"}, "row 3: no positive"),
    ({"positive": "p", "query": "  "}, "row 3: no query"),
    ({"query": "q", "positive_image": "broken.png"}, "row 3: cannot read positive image file"),
    ({"query": "q", "positive": "p", "query_image": "missing.png"}, "row 3: query image file not found"),
    ({"query": 5, "positive": "p"}, "row 3: 'query' must be a string"),
    ({"query": "q", "positive": "p", "query_cot": "look <|image_pad|>"}, "row 3: 'query_cot' contains the reserved"),
    ({"query": "q", "positive": "p", "negatives": [3]}, "row 3: 'negative 0 text' must be a string"),
    ({"query": "q", "positive": "p", "query_video": ["red.png", "broken.png"]},
     "row 3: cannot read query video frame 1"),
])
def test_bad_rows_name_the_row_and_the_problem(folder, row, message):
    with pytest.raises(BadRowError, match=message):
        parse_row(row, 3, str(folder / "img"), PIXELS)


def bad_rows_file(folder):
    rows = [{"query": f"query {i}", "positive_image": "red.png"} for i in range(6)]
    rows[1]["query_image"] = "broken.png"  # a corrupt image
    rows[4] = {"query": "a row without its positive"}
    return write_jsonl(folder / "rows.jsonl", rows)


def test_dataset_validates_lazily_and_scan_finds_every_bad_row(folder):
    dataset = RowDataset(load_rows(bad_rows_file(folder)), str(folder / "img"), PIXELS)
    assert len(dataset) == 6
    item = dataset[1]
    assert isinstance(item, BadRow) and item.row == 1 and "broken.png" in item.reason
    batch = collate_examples([dataset[i] for i in range(6)])
    assert batch.rows == [0, 2, 3, 5] and [b.row for b in batch.bad_rows] == [1, 4]
    assert [b.row for b in scan_rows(dataset)] == [1, 4]


def test_load_rows_reads_jsonl_and_parquet(folder):
    rows = [{"query": "a", "positive": "b"}, {"query": "c", "positive": "d"}, {"query": "e", "positive": "f"}]
    path = write_jsonl(folder / "rows.jsonl", rows)
    assert load_rows(path)["query"] == ["a", "c", "e"]
    load_rows(path).to_parquet(str(folder / "rows.parquet"))
    assert load_rows(str(folder / "rows.parquet"), max_rows=2)["positive"] == ["b", "d"]
    assert load_rows(f"{path},{path}").num_rows == 6
    with pytest.raises(FileNotFoundError):
        load_rows(str(folder / "nope.jsonl"))


def test_mmeb_conversion(folder):
    mmeb = [
        {"qry": "<|image_1|>\nRepresent the given image for classification", "qry_image_path": "images/a.jpg",
         "pos_text": "tench", "pos_image_path": "", "neg_text": "goldfish", "neg_image_path": ""},
        {"qry": "Find a picture of a dog", "qry_image_path": "", "pos_text": "<|image_1|>\nRepresent the image",
         "pos_image_path": "images/dog.jpg", "neg_text": "", "neg_image_path": ""},
    ]
    assert convert_mmeb_row(mmeb[0]) == {
        "query": "Represent the given image for classification", "query_image": "images/a.jpg", "positive": "tench",
        "positive_image": None, "negatives": ["goldfish"], "negative_images": [None]}
    assert convert_mmeb_row(mmeb[1]) == {
        "query": "Find a picture of a dog", "query_image": None, "positive": "Represent the image",
        "positive_image": "images/dog.jpg", "negatives": None, "negative_images": None}
    source = write_jsonl(folder / "mmeb.jsonl", mmeb)
    assert convert_mmeb(source, str(folder / "twn.jsonl")) == 2
    converted = [json.loads(line) for line in (folder / "twn.jsonl").read_text().splitlines()]
    assert converted[1]["positive_image"] == "images/dog.jpg" and converted[0]["negatives"] == ["goldfish"]
    with pytest.raises(ValueError, match="no MMEB columns"):
        convert_mmeb(write_jsonl(folder / "other.jsonl", [{"query": "x"}]), str(folder / "out.jsonl"))


def test_sharded_batches_split_each_global_batch_between_processes():
    single = list(ShardedBatchSampler(range(20), 8, 1, 0, seed=3, epoch=0))
    ranks = [list(ShardedBatchSampler(range(20), 4, 2, r, seed=3, epoch=0)) for r in range(2)]
    assert len(single) == 2 and all(len(b) == 8 for b in single)  # 20 // 8: the incomplete batch is dropped
    for step in range(2):
        assert ranks[0][step] + ranks[1][step] == single[step]
    assert list(ShardedBatchSampler(range(20), 8, 1, 0, seed=3, epoch=1)) != single  # a new order each epoch


def test_iterate_batches_resumes_at_any_position():
    indices = list(range(10))
    stream = iterate_batches(indices, indices, list, 3, 1, 0, seed=0)
    full = [next(stream) for _ in range(7)]  # 3 batches per epoch: crosses two epoch boundaries
    resumed = iterate_batches(indices, indices, list, 3, 1, 0, seed=0, start=4)
    assert [next(resumed) for _ in range(3)] == full[4:]
    with pytest.raises(ValueError, match="less than one global batch"):
        next(iterate_batches(indices, indices[:2], list, 3, 1, 0, seed=0))


def test_convert_mmeb_cli(folder):
    from twn_hf.cli import main as twn_main

    source = write_jsonl(folder / "mmeb.jsonl", [{"qry": "a dog", "qry_image_path": "", "pos_text": "",
                                                   "pos_image_path": "red.png", "neg_text": "", "neg_image_path": ""}])
    assert twn_main(["train", "convert-mmeb", source, str(folder / "out.parquet")]) == 0
    assert load_rows(str(folder / "out.parquet"))["positive_image"] == ["red.png"]
    assert twn_main(["train", "check-data", "--data", str(folder / "out.parquet"), "--image-root",
                     str(folder / "img")]) == 0
