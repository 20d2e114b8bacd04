"""Interrupt a stage (an exception injected mid-run), resume from its last intermediate checkpoint, and get the
same weights and the same per-step losses as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from twn_hf.train import DataConfig, EmbedConfig, GateConfig, ModelConfig, RLConfig, SFTConfig, TrainConfig, run
from twn_hf.train.checkpointing import latest_checkpoint
from twn_hf.train.stages import STAGES

CONFIGS = {
    "sft": SFTConfig(),
    "embed": EmbedConfig(joint=True),  # both the InfoNCE and the CE path
    "gate": GateConfig(heldout_fraction=0.25),
    "rl": RLConfig(group_size=2, cache_size=12, cache_refresh_every=3, kl_coef=0.04, updates_per_batch=2),
}


def weights(folder) -> dict[str, torch.Tensor]:
    folder = Path(folder)
    state = {f"head.{k}": v for k, v in load_file(folder / "gate.safetensors").items()}
    for adapter in ("reasoning", "embedding"):
        adapter_state = load_file(folder / adapter / "adapter_model.safetensors")
        state.update({f"{adapter}.{k}": v for k, v in adapter_state.items()})
    return state


def losses(folder) -> list[tuple[int, float]]:
    lines = (Path(folder) / "train_log.jsonl").read_text().splitlines()
    return [(r["step"], r.get("loss")) for r in map(json.loads, lines)]


@pytest.mark.parametrize("stage", list(CONFIGS))
def test_resume_after_a_crash_matches_an_uninterrupted_run(stage, tmp_path, train_data, base_checkpoint, monkeypatch):
    data, image_root = train_data

    def train(output, resume=None):
        return run(CONFIGS[stage], ModelConfig(model=base_checkpoint), DataConfig(data=data, image_root=image_root),
                   TrainConfig(output_dir=str(output), batch_size=4, lr=5e-3, max_steps=7, save_every=2,
                               keep_checkpoints=2, seed=11, progress_bar=False, resume=resume, warmup_steps=2))

    train(tmp_path / "straight")

    stage_class = STAGES[stage]
    original = stage_class.train_step

    def crash_at_step_5(self, ctx, batches):
        if ctx.step == 5:
            raise RuntimeError("injected crash")
        return original(self, ctx, batches)

    monkeypatch.setattr(stage_class, "train_step", crash_at_step_5)
    with pytest.raises(RuntimeError, match="injected crash"):
        train(tmp_path / "resumed")
    assert latest_checkpoint(tmp_path / "resumed").name == "step-0000004"
    assert not (tmp_path / "resumed" / "config.json").exists()  # no final checkpoint yet
    monkeypatch.setattr(stage_class, "train_step", original)
    summary = train(tmp_path / "resumed", resume="latest")

    assert summary["steps"] == 7
    straight, resumed = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=1e-5, atol=1e-6, msg=key)
    assert [s for s, _ in losses(tmp_path / "resumed")] == list(range(1, 8))  # the log has no repeated steps
    for (_, a), (_, b) in zip(losses(tmp_path / "straight"), losses(tmp_path / "resumed")):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    kept = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert kept == ["step-0000004", "step-0000006"]  # keep_checkpoints=2, no half-written .tmp left


def test_resume_latest_without_checkpoints_starts_fresh(tmp_path, train_data, base_checkpoint):
    data, image_root = train_data
    summary = run(SFTConfig(), ModelConfig(model=base_checkpoint), DataConfig(data=data, image_root=image_root),
                  TrainConfig(output_dir=str(tmp_path), batch_size=8, max_steps=1, progress_bar=False, resume="latest"))
    assert summary["steps"] == 1
