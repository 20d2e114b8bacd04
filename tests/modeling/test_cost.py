"""Cost accounting: parameter overhead (measured on the model) and per-token estimates."""

from __future__ import annotations

import pytest
import torch

from twn_hf.commands.info import overhead_rows
from twn_hf.modeling.cost_twn import _lora_params_per_adapter


def test_overhead_counts_every_part(twn):
    overhead = twn.parameter_overhead()
    lora = [p for n, p in twn.backbone.named_parameters() if "lora_" in n]
    assert overhead["reasoning_adapter"] + overhead["embedding_adapter"] == sum(p.numel() for p in lora)
    assert overhead["queries"] == twn.config.num_queries * twn.config.hidden_size
    assert overhead["gate"] == sum(p.numel() for p in twn.gate.parameters())
    frozen = sum(p.numel() for n, p in twn.backbone.named_parameters() if "lora_" not in n)
    assert overhead["overhead_fraction"] == pytest.approx(overhead["added"] / frozen)


def test_analytic_lora_count_matches_the_injected_adapter(twn):
    assert _lora_params_per_adapter(twn.config) == twn.parameter_overhead()["reasoning_adapter"]


def test_real_backbones_on_meta_device():
    rows = {row["backbone"]: row for row in overhead_rows(
        ["Qwen/Qwen3-VL-4B-Instruct", "Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen2-VL-2B-Instruct"])}
    four_b = rows["Qwen/Qwen3-VL-4B-Instruct"]
    assert 4.0e9 < four_b["backbone_params"] < 4.9e9
    assert 0.03 <= four_b["overhead_fraction"] <= 0.05  # the design target for the default LoRA settings
    assert four_b["lora_params_per_adapter"] == four_b["reasoning_adapter"]
    assert 0.02 < rows["Qwen/Qwen3-VL-8B-Instruct"]["overhead_fraction"] < 0.05
    # Qwen3-VL-4B: 36 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes
    assert four_b["kv_bytes_per_token"] == 36 * 8 * 128 * 2 * 2


def test_cost_report_scales_with_context(twn):
    short, long = twn.cost_report(context_length=128), twn.cost_report(context_length=1024)
    assert long["decode_flops_per_token"] > short["decode_flops_per_token"]
    assert long["prefill_flops_per_token"] > short["prefill_flops_per_token"]
    assert short["kv_bytes_per_token"] == long["kv_bytes_per_token"] == 2 * 2 * 2 * 16 * 4  # fp32 tiny model
    assert twn.cost_report(bytes_per_element=2)["kv_bytes_per_token"] * 2 == short["kv_bytes_per_token"]
