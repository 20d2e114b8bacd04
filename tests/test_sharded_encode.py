"""Scale-out `twn encode --dataset`: sources, shards, resume, and multi-process runs equal to one process."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from twn_hf.cli import main
from twn_hf.sharded_encode import MERGED, ShardPlan, Source, shard_path, to_input

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(folder: Path, n: int = 10) -> Path:
    Image.new("RGB", (40, 40), "red").save(folder / "red.png")
    rows = [{"text": f"picture {i}", "image": "red.png"} if i % 3 == 0 else f"text number {i} about cats"
            for i in range(n)]
    path = folder / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def merged(output_dir: Path) -> dict:
    return pq.read_table(output_dir / MERGED).to_pydict()


def assert_same_embeddings(a: dict, b: dict) -> None:
    assert a["index"] == b["index"]
    x, y = np.asarray(a["embedding"]), np.asarray(b["embedding"])
    cosines = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
    assert cosines.min() >= 0.9999
    assert a["cot"] == b["cot"] and a["thought"] == b["thought"]


MODEL: list[str] = []  # ["--model", <a saved tiny TWN>], set by the `one_process` fixture


def encode_args(source, output_dir, *extra):
    return ["encode", "--dataset", str(source), "--output-dir", str(output_dir), "--shard-size", "3",
            "--think", "auto", "--no-progress", *MODEL, *extra]


@pytest.fixture(autouse=True)
def info_logs(caplog):
    caplog.set_level(logging.INFO, logger="twn_hf")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: a one-process, in-process run over a 10-row JSONL file (4 shards) with a saved tiny TWN.

    Loading the checkpoint here also fills the remote-code module cache, so the subprocesses below only read it.
    """
    from twn_hf.testing import tiny_twn

    folder = tmp_path_factory.mktemp("data")
    checkpoint = folder / "tiny-twn"
    tiny_twn("qwen3_vl", max_think_tokens=12).save_pretrained(checkpoint)
    MODEL[:] = ["--model", str(checkpoint)]
    source = write_jsonl(folder)
    output = folder / "one"
    assert main(encode_args(source, output, "--device", "cpu")) == 0
    return source, output, merged(output)


# ----- units -----------------------------------------------------------------------------------------
def test_shard_plan():
    plan = ShardPlan(num_rows=10, shard_size=3)
    assert plan.num_shards == 4 and plan.bounds(3) == (9, 10)
    assert plan.owned(0, 2) == [0, 2] and plan.owned(1, 2) == [1, 3]
    assert sorted(plan.owned(0, 3) + plan.owned(1, 3) + plan.owned(2, 3)) == [0, 1, 2, 3]


def test_sources_jsonl_parquet_and_datasets(tmp_path):
    import datasets

    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), "blue").save(buffer, format="PNG")
    rows = [{"id": "a", "text": "hello", "image": None}, {"id": "b", "text": None,
                                                          "image": {"bytes": buffer.getvalue(), "path": None}}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "rows.parquet")
    inputs, ids = Source(str(tmp_path / "rows.parquet")).rows(0, 2)
    assert ids == ["a", "b"] and inputs[0] == {"text": "hello"}
    assert isinstance(inputs[1]["image"], Image.Image) and inputs[1]["image"].size == (40, 40)

    dataset = datasets.Dataset.from_dict({"text": ["x", "y", "z"], "label": [0, 1, 2]})
    dataset.save_to_disk(str(tmp_path / "saved"))
    source = Source(str(tmp_path / "saved"))
    assert len(source) == 3 and source.rows(1, 3) == ([{"text": "y"}, {"text": "z"}], None)

    source = Source(str(write_jsonl(tmp_path, n=4)))
    assert len(source) == 4 and source.rows(0, 1)[0][0]["image"] == str(tmp_path / "red.png")
    assert to_input({"images": [], "text": "t", "other": 1}) == {"text": "t"}


def test_dataset_mode_argument_errors(tmp_path, caplog):
    assert main(["encode", "--dataset", "x.jsonl", "-o", str(tmp_path / "o.npy")]) == 2
    assert "--dataset needs --output-dir" in caplog.text
    assert main(["encode", "a cat", "--output-dir", str(tmp_path / "o")]) == 2
    assert "positional inputs cannot be combined" in caplog.text
    assert main(["encode", "a cat"]) == 2
    assert "give --output" in caplog.text


def test_one_process_output(one_process):
    source, output, table = one_process
    assert table["index"] == list(range(10))
    assert np.allclose(np.linalg.norm(np.asarray(table["embedding"]), axis=1), 1, atol=1e-5)
    assert sorted(p.name for p in (output / "shards").iterdir()) == [f"part-{i:06d}.parquet" for i in range(4)]
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["num_rows"] == 10 and manifest["shard_size"] == 3


def test_resume_skips_done_shards_and_equals_one_process(one_process, tmp_path, monkeypatch, caplog):
    import twn_hf.sharded_encode as sharded

    source, _, reference = one_process
    output = tmp_path / "resumed"
    original, calls = sharded._atomic_write_table, []

    def failing_write(table, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # "killed" while writing the third shard
        return original(table, path)

    monkeypatch.setattr(sharded, "_atomic_write_table", failing_write)
    with pytest.raises(KeyboardInterrupt):
        main(encode_args(source, output, "--device", "cpu"))
    assert [shard_path(output, s).exists() for s in range(4)] == [True, True, False, False]
    assert not (output / MERGED).exists()
    monkeypatch.setattr(sharded, "_atomic_write_table", original)
    assert main(encode_args(source, output, "--device", "cpu")) == 0
    assert "2 of its 4 shards to encode (2 already done)" in caplog.text
    assert_same_embeddings(merged(output), reference)


def test_a_rerun_with_other_settings_is_refused(one_process, caplog):
    source, output, _ = one_process
    assert main(encode_args(source, output, "--device", "cpu", "--max-think-tokens", "3")) == 2
    assert "holds a run with different settings (max_think_tokens)" in caplog.text


# ----- real processes --------------------------------------------------------------------------------
def _env(**extra):
    env = dict(os.environ)
    env.pop("WORLD_SIZE", None)
    env.update(HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), **extra)
    return env


ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--mixed_precision", "no",
              "--dynamo_backend", "no"]


def test_two_cpu_processes_equal_one(one_process, tmp_path):
    """Two CPU processes through `accelerate launch`. accelerate spawns several CPU processes only through MPI
    for `--cpu`; without MPI its torchrun launcher (`--multi_gpu`) with ACCELERATE_USE_CPU=1 gives them."""
    source, _, reference = one_process
    output = tmp_path / "two"
    command = [*ACCELERATE, "--multi_gpu", "--num_processes", "2", "--main_process_port", "29517", "-m",
               "twn_hf.cli", *encode_args(source, output)]
    result = subprocess.run(command, env=_env(ACCELERATE_USE_CPU="1", CUDA_VISIBLE_DEVICES=""), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 0/2: 2 of its 2 shards" in result.stderr and "process 1/2: 2 of its 2 shards" in result.stderr
    assert_same_embeddings(merged(output), reference)


def test_accelerate_launch_cpu_flag_runs_and_says_how_many_processes(one_process, tmp_path):
    """The literal `accelerate launch --num_processes 2 --cpu`: without MPI accelerate starts one process; the
    command still completes with the same output and says so."""
    source, _, reference = one_process
    output = tmp_path / "cpu_flag"
    command = [*ACCELERATE, "--cpu", "--num_processes", "2", "-m", "twn_hf.cli", *encode_args(source, output)]
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 0/2" in result.stderr or "accelerate started a single CPU process" in result.stderr
    assert_same_embeddings(merged(output), reference)


def test_killed_run_resumes_to_the_one_process_result(one_process, tmp_path):
    source, _, reference = one_process
    output = tmp_path / "killed"
    command = [sys.executable, "-m", "twn_hf.cli", *encode_args(source, output, "--device", "cpu")]
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not shard_path(output, 0).exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    done = [shard_path(output, s).exists() for s in range(4)]
    assert done[0] and not (output / MERGED).exists(), f"killed too late: {done}"
    result = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"{4 - sum(done)} of its 4 shards to encode ({sum(done)} already done)" in result.stderr
    assert not list((output / "shards").glob("*.tmp-*"))
    assert_same_embeddings(merged(output), reference)
