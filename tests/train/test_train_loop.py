"""The shared loop: learning-rate schedule, gradient accumulation, bf16 autocast, gradient checkpointing, and the
CoT-generating embed variant."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from twn_hf.cli import main as twn_main
from twn_hf.train import DataConfig, EmbedConfig, GateConfig, ModelConfig, SFTConfig, TrainConfig, run
from twn_hf.train.loop import lr_factor
from twn_hf.train.stages import EmbedStage


def test_lr_schedule_by_hand():
    assert [lr_factor(s, 2, 6, "cosine") for s in range(2)] == [0.5, 1.0]  # warm-up 1/2, 2/2
    assert lr_factor(2, 2, 6, "cosine") == 1.0 and lr_factor(4, 2, 6, "cosine") == pytest.approx(0.5)
    assert lr_factor(5, 2, 6, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 4)))
    assert lr_factor(4, 0, 8, "linear") == 0.5 and lr_factor(7, 0, 8, "constant") == 1.0


def data_config(train_data, **kwargs):
    data, image_root = train_data
    return DataConfig(data=data, image_root=image_root, **kwargs)


def test_gradient_accumulation_equals_the_larger_batch(tmp_path, train_data, base_checkpoint):
    """Gate BCE is a per-row mean, so 2 micro-batches of 4 give exactly the gradient of one batch of 8."""
    def train(name, **kwargs):
        run(GateConfig(heldout_fraction=0.25), ModelConfig(model=base_checkpoint), data_config(train_data),
            TrainConfig(output_dir=str(tmp_path / name), max_steps=3, lr=1e-2, progress_bar=False, save_every=0,
                        **kwargs))
        return load_file(tmp_path / name / "gate.safetensors")

    big, accumulated = train("big", batch_size=8), train("accumulated", batch_size=4, grad_accum=2)
    for key in big:
        torch.testing.assert_close(accumulated[key], big[key], rtol=1e-5, atol=1e-6)


def test_bf16_autocast_and_gradient_checkpointing_run(tmp_path, train_data, base_checkpoint):
    for stage in (SFTConfig(), EmbedConfig(joint=True)):
        output = tmp_path / type(stage).__name__
        summary = run(stage, ModelConfig(model=base_checkpoint), data_config(train_data),
                      TrainConfig(output_dir=str(output), batch_size=4, max_steps=2, mixed_precision="bf16",
                                  gradient_checkpointing=True, progress_bar=False, save_every=0))
        records = [json.loads(line) for line in (output / "train_log.jsonl").read_text().splitlines()]
        assert summary["steps"] == 2 and all(math.isfinite(r["loss"]) for r in records)
        assert json.loads((output / "training_config.json").read_text())["train"]["mixed_precision"] == "bf16"


def test_embed_with_generated_cots(tmp_path, train_data, base_checkpoint):
    run(EmbedConfig(cot_source="generate"), ModelConfig(model=base_checkpoint), data_config(train_data),
        TrainConfig(output_dir=str(tmp_path), batch_size=8, max_steps=2, progress_bar=False, save_every=0))
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["views"] for r in records] == [16.0, 16.0]  # both views of every query
    before = load_file(Path(base_checkpoint) / "reasoning" / "adapter_model.safetensors")
    after = load_file(tmp_path / "reasoning" / "adapter_model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)  # detached: the reasoning adapter is untouched
    with pytest.raises(ValueError, match="needs --detach-interface"):
        EmbedStage(EmbedConfig(cot_source="generate", detach_interface=False))


def test_bad_choices_and_missing_model_are_clear_errors(tmp_path, train_data):
    with pytest.raises(ValueError, match="views must be one of"):
        run(EmbedConfig(views="sometimes"), ModelConfig(model="x"), data_config(train_data), TrainConfig())
    assert twn_main(["train", "sft", "--data", train_data[0], "--output-dir", str(tmp_path)]) == 2  # no --model
