"""The example scripts build valid configs (every keyword exists, every choice is allowed) and the accelerate
configs load. `run` is stubbed: the examples need a GPU and the real backbone."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import twn_hf.train
from twn_hf.train.config import DataConfig, ModelConfig, TrainConfig, check_choices

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("train_*.py")))
def test_example_configs_are_valid(script, monkeypatch):
    calls = []

    def fake_run(stage, model, data, train):
        assert isinstance(model, ModelConfig) and isinstance(data, DataConfig) and isinstance(train, TrainConfig)
        check_choices(stage, model, data, train)
        calls.append((stage, model, data, train))
        return {}

    monkeypatch.setattr(twn_hf.train, "run", fake_run)
    monkeypatch.setattr(twn_hf.train, "convert_mmeb", lambda *a, **k: calls.append(("convert", a, k)) or 0)
    monkeypatch.setattr("accelerate.PartialState", lambda: SimpleNamespace(is_main_process=False))
    exec(compile((EXAMPLES / script).read_text(), script, "exec"), {"__name__": "__main__"})
    assert calls
    if script != "train_0_data.py":
        stage, model, _, train = calls[0]
        assert model.model or model.backbone == "Qwen/Qwen3-VL-4B-Instruct"
        assert train.mixed_precision == "bf16"


@pytest.mark.parametrize("name, kind, processes", [("cpu", "NO", 1), ("single_gpu", "NO", 1),
                                                   ("multi_gpu", "MULTI_GPU", 8)])
def test_accelerate_configs_load(name, kind, processes):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(EXAMPLES / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.name == kind and config.num_processes == processes
    assert config.use_cpu == (name == "cpu")
