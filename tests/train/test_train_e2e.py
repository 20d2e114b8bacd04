"""CI-sized end-to-end run: the four stages on a tiny backbone and 24 generated rows, on CPU.

One module-scoped chain (sft -> embed -> gate -> rl, each starting from the previous stage's checkpoint; gate
runs through the `twn` CLI); the tests then check losses, which parts each stage changed, the files written, and
that the final folder loads with `AutoModel.from_pretrained(..., trust_remote_code=True)` and encodes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_fixture import draw

from twn_hf.cli import main as twn_main
from twn_hf.train import DataConfig, EmbedConfig, ModelConfig, RLConfig, SFTConfig, TrainConfig, run

STAGES = ("sft", "embed", "gate", "rl")


@pytest.fixture(scope="module")
def chain(tmp_path_factory, train_data, base_checkpoint):
    data, image_root = train_data
    root = tmp_path_factory.mktemp("chain")
    data_config = DataConfig(data=data, image_root=image_root)
    common = dict(batch_size=8, schedule="constant", progress_bar=False, save_every=0, log_every=5)
    seconds = {}

    start = time.time()
    run(SFTConfig(), ModelConfig(model=base_checkpoint), data_config,
        TrainConfig(output_dir=str(root / "sft"), lr=1e-2, max_steps=9, **common))
    seconds["sft"] = time.time() - start

    start = time.time()
    run(EmbedConfig(temperature=0.05), ModelConfig(model=str(root / "sft")), data_config,
        TrainConfig(output_dir=str(root / "embed"), lr=1e-2, max_steps=9, **common))
    seconds["embed"] = time.time() - start

    start = time.time()
    code = twn_main(["train", "gate", "--model", str(root / "embed"), "--data", data, "--image-root", image_root,
                     "--output-dir", str(root / "gate"), "--lr", "1e-2", "--max-steps", "15", "--batch-size", "8",
                     "--schedule", "constant", "--no-progress-bar", "--save-every", "0",
                     "--heldout-fraction", "0.25", "--target-think-rate", "0.5"])
    assert code == 0
    seconds["gate"] = time.time() - start

    start = time.time()
    run(RLConfig(group_size=4, cache_size=16, cache_refresh_every=3, updates_per_batch=2, kl_coef=0.04,
                 reward_temperature=0.1),
        ModelConfig(model=str(root / "gate")), data_config,
        TrainConfig(output_dir=str(root / "rl"), lr=2e-3, max_steps=6, **common))
    seconds["rl"] = time.time() - start
    return root, seconds


def log(folder) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "train_log.jsonl").read_text().splitlines()]


def parts(folder) -> dict[str, dict]:
    folder = Path(folder)
    return {"reasoning": load_file(folder / "reasoning" / "adapter_model.safetensors"),
            "embedding": load_file(folder / "embedding" / "adapter_model.safetensors"),
            "head": load_file(folder / "gate.safetensors")}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_chain_is_fast(chain):
    _, seconds = chain
    assert sum(seconds.values()) < 120, seconds


@pytest.mark.parametrize("stage, key", [("sft", "loss"), ("embed", "loss"), ("gate", "loss")])
def test_each_stage_lowers_its_loss(chain, stage, key):
    values = [record[key] for record in log(chain[0] / stage)]
    assert sum(values[-3:]) / 3 < sum(values[:3]) / 3, values


def test_rl_lowers_its_surrogate_and_logs_rewards(chain):
    records = log(chain[0] / "rl")
    assert len(records) == 6
    first = sum(r["loss_first_update"] for r in records) / 6
    last = sum(r["loss_last_update"] for r in records) / 6
    assert last < first, records
    assert all(r["reward"] <= 0 and r["cot_tokens"] > 0 and r["kl"] >= 0 for r in records)
    assert records[-1]["cache_refreshes"] == 2  # refreshed at steps 0 and 3


def test_each_stage_changes_only_its_parts(base_checkpoint, chain):
    root = chain[0]
    before = parts(base_checkpoint)
    changed = {}
    for stage in STAGES:
        after = parts(root / stage)
        changed[stage] = {name for name in after if not same(before[name], after[name])}
        before = after
    assert changed["sft"] == {"reasoning"}
    assert changed["embed"] == {"embedding", "head"}  # embedding adapter + queries
    assert changed["rl"] == {"reasoning"}
    assert changed["gate"] == {"head"}
    gate_before, gate_after = parts(root / "embed")["head"], parts(root / "gate")["head"]
    assert torch.equal(gate_before["queries"], gate_after["queries"])  # the gate stage leaves the queries alone


def test_each_stage_writes_a_checkpoint_and_its_config(chain):
    root = chain[0]
    for stage in STAGES:
        folder = root / stage
        for name in ("config.json", "modeling_twn.py", "gate.safetensors", "model.safetensors", "train_log.jsonl"):
            assert (folder / name).is_file(), (stage, name)
        config = json.loads((folder / "training_config.json").read_text())
        assert config["stage"] == stage and stage in config and config["num_processes"] == 1
        assert config["train"]["output_dir"] == str(folder)
    assert json.loads((root / "embed" / "training_config.json").read_text())["embed"]["temperature"] == 0.05


def test_gate_reports_and_saves_its_threshold(chain):
    root = chain[0]
    report = json.loads((root / "gate" / "training_summary.json").read_text())["gate"]
    keys = ("label_rate_train", "label_rate_heldout", "gate_accuracy_at_0.5", "threshold", "think_rate_at_threshold")
    for key in keys:
        assert 0.0 <= report[key] <= 1.0, key
    assert report["heldout_rows"] == 6
    assert report["think_rate_at_threshold"] <= 0.5 or report["threshold"] == 1.0
    for stage in ("gate", "rl"):  # the threshold travels with the checkpoint
        config = json.loads((root / stage / "config.json").read_text())
        assert config["think_threshold"] == pytest.approx(report["threshold"])


def test_final_folder_loads_with_automodel_and_encodes(chain):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(chain[0] / "rl"), trust_remote_code=True)
    embeddings, details = model.encode(["a red square", draw("blue", "circle"), {"text": "a yellow circle"}],
                                       think="auto", return_details=True)
    assert embeddings.shape == (3, 64) and torch.isfinite(embeddings).all()
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))
    assert len(details) == 3
    always = model.encode(["a red square"], think="always")
    assert always.shape == (1, 64)
