"""A dataset with a corrupt image (row 3) and a row missing its positive (row 7), under --on-bad-row skip|fail,
validated lazily (as rows load) or up front (--scan); messages name the rows."""

from __future__ import annotations

import json
import logging

import pytest
from train_fixture import draw, write_jsonl

from twn_hf.cli import main as twn_main
from twn_hf.train import BadRowError, DataConfig, EmbedConfig, ModelConfig, TrainConfig, run


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_rows")
    draw("red", "square").save(folder / "red.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG but not really")
    rows = [{"query": f"a red square number {i}", "positive_image": "red.png", "positive": f"square {i}"}
            for i in range(12)]
    rows[3]["query_image"] = "corrupt.png"
    rows[7] = {"query": "a query whose positive is missing"}
    return write_jsonl(folder / "rows.jsonl", rows), str(folder)


def train(data, base_checkpoint, output, **data_kwargs):
    path, root = data
    return run(EmbedConfig(), ModelConfig(model=base_checkpoint), DataConfig(data=path, image_root=root, **data_kwargs),
               TrainConfig(output_dir=str(output), batch_size=4, max_steps=3, progress_bar=False, save_every=0))


def test_skip_names_the_rows_and_trains_on_the_rest(bad_data, base_checkpoint, tmp_path, caplog):
    summary = train(bad_data, base_checkpoint, tmp_path, on_bad_row="skip")  # 3 steps x 4 rows: every row once
    assert summary["bad_rows_skipped"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("skipping bad row 3:" in w and "corrupt.png" in w for w in warnings), warnings
    assert any("skipping bad row 7: no positive" in w for w in warnings), warnings
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert len(records) == 3 and (tmp_path / "config.json").is_file()


def test_fail_stops_at_the_first_bad_row_it_meets(bad_data, base_checkpoint, tmp_path):
    with pytest.raises(BadRowError, match=r"row (3: cannot read query image|7: no positive).*--on-bad-row fail"):
        train(bad_data, base_checkpoint, tmp_path, on_bad_row="fail")
    assert not (tmp_path / "config.json").exists()


def test_scan_fail_names_every_bad_row_before_training(bad_data, base_checkpoint, tmp_path):
    with pytest.raises(BadRowError, match=r"2 bad row\(s\): row 3: .*corrupt\.png.*; row 7: no positive"):
        train(bad_data, base_checkpoint, tmp_path, on_bad_row="fail", scan=True)
    assert not (tmp_path / "train_log.jsonl").exists()


def test_scan_skip_leaves_the_rows_out(bad_data, base_checkpoint, tmp_path, caplog):
    summary = train(bad_data, base_checkpoint, tmp_path, on_bad_row="skip", scan=True)
    assert summary["bad_rows_skipped"] == 0  # left out before training: no batch ever met them
    assert any("scan: leaving out 2 bad row(s): row 3" in r.getMessage() for r in caplog.records)


def test_cli_reports_bad_rows(bad_data, base_checkpoint, tmp_path, caplog):
    path, root = bad_data
    assert twn_main(["train", "check-data", "--data", path, "--image-root", root]) == 1
    assert any("row 3:" in r.getMessage() and "row 7: no positive" in r.getMessage() for r in caplog.records)
    code = twn_main(["train", "embed", "--model", base_checkpoint, "--data", path, "--image-root", root,
                     "--output-dir", str(tmp_path), "--on-bad-row", "fail", "--scan", "--max-steps", "1"])
    assert code == 2
    assert any(r.getMessage().startswith("error: 2 bad row(s): row 3") for r in caplog.records)
