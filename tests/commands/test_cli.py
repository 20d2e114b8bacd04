"""The `twn` CLI: demo, encode (arguments / JSONL, .npy / .parquet), info, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from twn_hf.cli import main


def test_demo_without_a_bundled_model_says_it_is_random(capsys, caplog, monkeypatch):
    monkeypatch.setattr("twn_hf.commands.common.bundled_checkpoint", lambda: None)
    monkeypatch.setattr("twn_hf.commands.demo.bundled_checkpoint", lambda: None)
    assert main(["demo", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "encoded 4 inputs with think='auto'" in out
    assert out.count("p(think)=") == 4
    assert "RANDOMLY INITIALISED" in caplog.text


def test_demo_with_a_model_says_what_each_input_did(capsys, checkpoint_dir):
    assert main(["demo", "--model", str(checkpoint_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "encoded 4 inputs with think='auto'" in out and out.count("p(think)=") == 4


@pytest.fixture(autouse=True)
def no_bundled_model(monkeypatch, request):
    """Encode tests run on the tiny random model, whether or not this install bundles the demo model."""
    if "checkpoint_dir" not in request.fixturenames and "demo" not in request.node.name:
        monkeypatch.setattr("twn_hf.commands.common.bundled_checkpoint", lambda: None)


def test_encode_arguments_to_npy(tmp_path):
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 40), "red").save(image)
    output = tmp_path / "out.npy"
    assert main(["encode", "a cat", str(image), "--think", "never", "-o", str(output), "--device", "cpu"]) == 0
    embeddings = np.load(output)
    assert embeddings.shape[0] == 2 and np.allclose(np.linalg.norm(embeddings, axis=1), 1, atol=1e-5)
    details = [json.loads(line) for line in output.with_suffix(".details.jsonl").read_text().splitlines()]
    assert [d["thought"] for d in details] == [False, False]


def test_encode_jsonl_to_parquet_with_relative_paths(tmp_path):
    Image.new("RGB", (40, 40), "blue").save(tmp_path / "blue.png")
    rows = ['"plain text"', json.dumps({"text": "what is it?", "image": "blue.png"}), '"blue.png"']
    (tmp_path / "inputs.jsonl").write_text("\n".join(rows) + "\n")
    output = tmp_path / "out.parquet"
    code = main(["encode", "--input-file", str(tmp_path / "inputs.jsonl"), "--think", "always",
                 "--batch-size", "2", "-o", str(output), "--device", "cpu"])
    assert code == 0
    table = pq.read_table(output).to_pydict()
    assert len(table["embedding"]) == 3 and all(table["thought"])
    assert all(n > 0 for n in table["tokens_generated"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["encode", "x", "-o", "out.txt"], "--output must end in .npy or .parquet"),
        (["encode", "-o", "out.npy"], "nothing to encode"),
        (["encode", "x", "--threshold", "2", "-o", "out.npy", "--device", "cpu"], "threshold must lie in [0, 1]"),
        (["encode", "--input-file", "missing.jsonl", "-o", "out.npy"], "missing.jsonl does not exist"),
    ],
)
def test_encode_errors_are_clear(tmp_path, monkeypatch, caplog, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in caplog.text
    assert not (tmp_path / "out.npy").exists()


def test_bad_jsonl_line_is_named(tmp_path, caplog):
    (tmp_path / "in.jsonl").write_text('"ok"\n{broken\n')
    assert main(["encode", "--input-file", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "o.npy")]) == 2
    assert "in.jsonl:2: not valid JSON" in caplog.text


def test_info_prints_overhead_table(capsys):
    assert main(["info", "--backbone", "Qwen/Qwen3-VL-4B-Instruct"]) == 0
    out = capsys.readouterr().out
    assert "| Qwen/Qwen3-VL-4B-Instruct | 4.438 B |" in out and "4.53 %" in out
