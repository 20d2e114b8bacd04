"""Model cards: complete Hub metadata that parses back, the cost and MMEB-V2 tables, and usage snippets that run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from huggingface_hub import ModelCard

from twn_hf.cards import load_results, measure_think_costs, render_card, template_path
from twn_hf.modeling import TWNConfig
from twn_hf.modeling.sentence_files_twn import write_sentence_files
from twn_hf.testing import tiny_backbone_config

REPO_ID = "tester/twn-tiny"
COSTS = {"modes": {"never": {"think_rate": 0.0, "cot_tokens": 0.0, "items_per_s": 40.0},
                   "auto": {"think_rate": 0.25, "cot_tokens": 12.5, "items_per_s": 20.0},
                   "always": {"think_rate": 1.0, "cot_tokens": 50.0, "items_per_s": 5.0}},
         "num_inputs": 8, "device": "cuda", "batch_size": 8, "threshold": 0.5}
SCORES = {"ImageNet-1K": 0.654, "MSCOCO_i2t": 0.5, "K700": 0.25}


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


@pytest.fixture(scope="module")
def card(checkpoint_dir, twn, tmp_path_factory):
    rendered = render_card(checkpoint_dir, repo_id=REPO_ID, model=twn, results={"mmeb_v2": SCORES},
                           think_costs=COSTS, base_model="Qwen/Qwen3-VL-4B-Instruct",
                           datasets=["TIGER-Lab/MMEB-train"], language=["en"])
    path = tmp_path_factory.mktemp("card") / "README.md"
    rendered.save(path)
    return ModelCard.load(path)


def test_template_is_found():
    assert template_path().is_file() and template_path().parent.name == "hub_cards"


def test_card_parses_back_with_complete_metadata(card):
    data = card.data.to_dict()
    assert data["base_model"] == "Qwen/Qwen3-VL-4B-Instruct"
    assert data["library_name"] == "transformers"
    assert data["pipeline_tag"] == "feature-extraction"
    assert data["license"] == "apache-2.0"
    assert data["datasets"] == ["TIGER-Lab/MMEB-train"]
    assert data["language"] == ["en"]
    assert {"twn", "sentence-transformers", "mteb", "custom_code", "qwen3-vl"} <= set(data["tags"])
    assert "base_model_relation" not in data  # self-contained: the backbone weights ship with it


def test_card_body_has_usage_cost_table_and_mmeb_results(card, twn):
    text = card.text
    for heading in ("## What TWN is", "### transformers", "### sentence-transformers", "### mteb",
                    "## Think modes: what they cost", "## MMEB-V2 results"):
        assert heading in text
    blocks = python_blocks(text)
    assert len(blocks) == 3 and all(f'"{REPO_ID}"' in block and "trust_remote_code" in block for block in blocks)
    assert all(f'"{REPO_ID}", trust_remote_code=True' in block for block in blocks[:2])
    assert "| `never` | 0 % | 0.0 | 40.00 |" in text
    assert "| `auto` | 25 % | 12.5 | 20.00 |" in text
    assert "| `always` | 100 % | 50.0 | 5.00 |" in text
    assert "Measured by encoding 8 inputs, on `cuda`, batch size 8, `auto` threshold 0.5." in text
    assert "| ImageNet-1K | 65.4 |" in text and "| K700 | 25.0 |" in text
    assert f"| embedding dimension | {twn.config.hidden_size} " in text
    assert "added parameters" in text


def test_adapter_only_card_takes_base_model_from_config(tmp_path):
    config = TWNConfig(backbone_config=tiny_backbone_config("qwen2_vl"),
                       backbone_name_or_path="Qwen/Qwen2-VL-2B-Instruct", backbone_revision="0123abc")
    config.save_pretrained(tmp_path)
    (tmp_path / "sentence_twn.py").touch()
    write_sentence_files(config, tmp_path)
    card = render_card(tmp_path, datasets=["TIGER-Lab/MMEB-train"])
    assert card.data.base_model == "Qwen/Qwen2-VL-2B-Instruct"
    assert card.data.to_dict()["base_model_relation"] == "adapter"
    assert "adapters, queries and gate only" in card.text and "revision `0123abc`" in card.text
    assert "No MMEB-V2 results" in card.text and "twn export --measure-cost" in card.text
    assert f'"{tmp_path.name}", trust_remote_code=True' in card.text  # default repo id: the folder name


def test_measure_think_costs_counts_thinking_and_tokens(twn):
    costs = measure_think_costs(twn, batch_size=4, threshold=0.5)
    modes = costs["modes"]
    assert list(modes) == ["never", "auto", "always"] and costs["num_inputs"] == 8
    assert modes["never"]["think_rate"] == 0.0 and modes["never"]["cot_tokens"] == 0.0
    assert modes["always"]["think_rate"] == 1.0 and 0 < modes["always"]["cot_tokens"] <= twn.config.max_think_tokens
    assert 0.0 <= modes["auto"]["think_rate"] <= 1.0
    assert all(row["items_per_s"] > 0 for row in modes.values())


def test_results_files_and_summary(checkpoint_dir, tmp_path):
    none = {"mmeb_v2": None, "mmeb_v2_summary": None, "think_costs": None}
    assert load_results(SCORES) == {**none, "mmeb_v2": SCORES}
    path = tmp_path / "results.json"
    summary = {"Image": 0.577, "Video": 0.25, "Overall": 0.468}
    path.write_text(json.dumps({"mmeb_v2": SCORES, "mmeb_v2_summary": summary, "think_costs": COSTS}))
    assert load_results(path) == {"mmeb_v2": SCORES, "mmeb_v2_summary": summary, "think_costs": COSTS}
    text = render_card(checkpoint_dir, results=path).text
    assert "| Overall | 46.8 |" in text and "| Image | 57.7 |" in text and "mean over" not in text
    assert "| `always` | 100 % | 50.0 | 5.00 |" in text  # the think costs come from the file too
    assert "| mean over 3 tasks | 46.8 |" in render_card(checkpoint_dir, results=SCORES).text
    with pytest.raises(ValueError, match="mmeb_v2"):
        load_results({"ImageNet-1K": "high"})


def test_usage_snippets_run_against_the_tiny_checkpoint(card, checkpoint_dir, tmp_path):
    """Each snippet runs as written, with the checkpoint path for the repo id; mteb gets an in-memory mock task."""
    blocks = [block.replace(REPO_ID, str(checkpoint_dir)) for block in python_blocks(card.text)]
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    script = textwrap.dedent(
        """
        import json, sys
        import mteb
        from mteb.mocks import MockAny2AnyRetrievalI2TTask
        mteb.get_tasks = lambda *args, **kwargs: [MockAny2AnyRetrievalI2TTask()]  # no task data download
        for index, block in enumerate(json.load(open(sys.argv[1]))):
            namespace = {}
            exec(compile(block, f"snippet-{index}", "exec"), namespace)
            print(f"snippet {index} ok")
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", MTEB_CACHE=str(tmp_path / "mteb"),
               HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "blocks.json")], capture_output=True,
                            text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    assert [line for line in result.stdout.splitlines() if line.endswith(" ok")] == [
        "snippet 0 ok", "snippet 1 ok", "snippet 2 ok"]
    assert "task_name=MockAny2AnyRetrievalI2T, main_score=" in result.stdout  # mteb really evaluated it
