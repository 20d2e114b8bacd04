"""A seconds-long run of the whole cost benchmark (`--config smoke`): structure and counts, no timing assertions."""

from __future__ import annotations

import json

import pytest

from benchmarks.cost import forced_mask, main
from benchmarks.models import load_config


def test_forced_mask_is_exact_and_seeded():
    mask = forced_mask(48, 0.25, seed=0)
    assert sum(mask) == 12 and mask == forced_mask(48, 0.25, seed=0)


def test_configs_load():
    for name in ("qwen3-vl-mid-cpu", "qwen3-vl-4b-gpu", "smoke"):
        config = load_config(name)
        assert config["workload"]["cot_tokens"] >= 1 and config["backbone"]
    with pytest.raises(FileNotFoundError, match="known"):
        load_config("nope")


def test_smoke_run_writes_json_and_markdown(tmp_path):
    markdown = tmp_path / "BENCHMARKS.md"
    assert main(["--config", "smoke", "--device", "cpu", "--results-dir", str(tmp_path), "--markdown",
                 str(markdown)]) == 0
    results = json.loads((tmp_path / "smoke-cpu.json").read_text())
    meta = results["meta"]
    for key in ("device", "torch", "transformers", "peft", "accelerate", "commit", "code_sha256", "wall_s", "command"):
        assert key in meta
    assert results["config"]["name"] == "smoke"

    modes = {run["label"]: run for run in results["modes"]}
    assert set(modes) == {"never", "auto p=0.25", "auto p=0.5", "auto p=0.75", "always", "always, cold CoT cache",
                          "always, warm CoT cache"}
    n = modes["never"]["items"]
    for run in results["modes"]:
        assert run["prefills_per_input"] == 1  # the shared cache: one prefill per input in every mode
    assert modes["never"]["decode_tokens"] == 0
    assert modes["always"]["decode_tokens"] == n * results["config"]["workload"]["cot_tokens"]
    assert modes["always"]["thought"] == n and modes["auto p=0.5"]["thought"] == round(0.5 * n)
    warm = modes["always, warm CoT cache"]
    assert warm["decode_tokens"] == 0 and warm["cot_from_cache"] == n

    baselines = {run["pipeline"]: run for run in results["baselines"]}
    assert baselines["floor"]["prefills_per_input"] == 1
    assert baselines["naive"]["prefills_per_input"] == 3
    assert baselines["generate"]["prefills_per_input"] == 1
    assert set(results["sweeps"]) == {"batch_size", "context_tokens", "cot_tokens", "decode_rows"}

    goals = results["goals"]
    assert len(goals) >= 9 and all(goal["met"] in (True, False, None) for goal in goals)
    one_prefill = next(g for g in goals if g["goal"].startswith("exactly one prefill"))
    assert one_prefill["met"] is True
    for check in results["checks"].values():
        assert check["min_cosine"] >= 0.9999, check

    text = markdown.read_text()
    assert "## smoke on" in text and "### Goals" in text and "not run yet" in text  # no GPU section yet
