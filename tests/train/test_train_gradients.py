"""Which parameters each stage's loss reaches (the detach interface), and the LM pass the CE/RL losses use."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_fixture import batch_of, make_rows, start_model

from twn_hf.train.config import EmbedConfig, RLConfig, SFTConfig, TrainConfig
from twn_hf.train.embedding_cache import EmbeddingCache
from twn_hf.train.lm import label_logprobs, setup_checkpointing
from twn_hf.train.stages import EmbedStage, RLStage, SFTStage
from twn_hf.train.stages.base import TrainContext


class _Accelerator:
    num_processes, process_index, is_main_process, device = 1, 0, True, torch.device("cpu")

    def autocast(self):
        return torch.autocast("cpu", enabled=False)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rows")
    return make_rows(folder)[:6], str(Path(folder) / "images")


@pytest.fixture
def model():
    model = start_model()
    model.train()
    for name, parameter in model.named_parameters():
        parameter.requires_grad_("lora_" in name or name == "queries" or name.startswith("gate."))
    return model


def context(model, **train):
    return TrainContext(_Accelerator(), model, None, None, TrainConfig(**train), None, None, [])


def grad_sum(parameters) -> float:
    return float(sum(p.grad.abs().sum() for p in parameters if p.grad is not None))


def parts(model):
    return {
        "reasoning": model.adapter_parameters("reasoning"),
        "embedding": model.adapter_parameters("embedding"),
        "queries": [model.queries],
        "gate": list(model.gate.parameters()),
    }


@pytest.mark.parametrize("detach", [True, False])
def test_infonce_reaches_reasoning_only_without_detach(model, rows, detach):
    batch = batch_of(*rows, model)
    loss, _ = EmbedStage(EmbedConfig(detach_interface=detach)).loss(context(model), batch)
    loss.backward()
    p = parts(model)
    assert grad_sum(p["embedding"]) > 0 and grad_sum(p["queries"]) > 0
    assert grad_sum(p["gate"]) == 0
    assert (grad_sum(p["reasoning"]) > 0) is (not detach)


def test_joint_ce_and_infonce_stay_apart_with_detach(model, rows):
    batch = batch_of(*rows, model)
    stage = EmbedStage(EmbedConfig(joint=True))
    embed_loss, metrics = EmbedStage(EmbedConfig()).loss(context(model), batch)
    embed_loss.backward()
    embedding_only = [p.grad.clone() for p in parts(model)["embedding"]]
    model.zero_grad()
    loss, metrics = stage.loss(context(model), batch)
    loss.backward()
    assert "ce" in metrics and grad_sum(parts(model)["reasoning"]) > 0
    # the CE adds nothing to the embedding adapter's gradient
    for grad, alone in zip((p.grad for p in parts(model)["embedding"]), embedding_only):
        torch.testing.assert_close(grad, alone)
    assert stage.trainable_parameters(model)[-1] is parts(model)["reasoning"][-1]


def test_sft_ce_reaches_reasoning_only(model, rows):
    loss, metrics = SFTStage(SFTConfig()).loss(context(model), batch_of(*rows, model))
    loss.backward()
    p = parts(model)
    assert metrics["cot_tokens"] > 0 and grad_sum(p["reasoning"]) > 0
    assert grad_sum(p["embedding"]) == grad_sum(p["queries"]) == grad_sum(p["gate"]) == 0


def test_rl_objective_reaches_reasoning_only(model, rows):
    stage = RLStage(RLConfig(group_size=3, kl_coef=0.1, updates_per_batch=2))
    stage.reference = [p.detach().clone() + 0.01 for p in stage.trainable_parameters(model)]
    stage.cache = EmbeddingCache(size=5, refresh_every=10, num_rows=5, seed=0)
    stage.cache.refresh(0, lambda r: (torch.nn.functional.normalize(torch.randn(len(r), 64), dim=-1), r))
    ctx = context(model)
    rollout = stage.rollout(ctx, batch_of(*rows, model), micro=0)
    assert rollout.advantages.shape == (6 * 3,) and rollout.old_logprobs is not None
    assert rollout.ref_logprobs is not None and rollout.metrics["cot_tokens"] > 0
    loss, metrics = stage.policy_loss(ctx, rollout)
    loss.backward()
    p = parts(model)
    assert grad_sum(p["reasoning"]) > 0 and metrics["kl"] > 0
    assert grad_sum(p["embedding"]) == grad_sum(p["queries"]) == grad_sum(p["gate"]) == 0
    # samples never contain vision placeholder tokens (the teacher-forced pass could not re-read them)
    image_pad = model.backbone.config.image_token_id
    assert not (rollout.labels == image_pad).any()


def test_lm_pass_matches_forward_ce_and_checkpointing(rows):
    model = start_model()
    model.train()
    batch = batch_of(*rows, model)
    features = model.prepare_features(batch.queries, cots=batch.query_cots)
    logprobs, row = label_logprobs(model, features, features["labels"])
    torch.testing.assert_close(-logprobs.mean(), model(**features).loss)
    assert row.tolist() == sorted(row.tolist()) and len(row) == int((features["labels"][:, 1:] != -100).sum())

    def reasoning_grads(checkpointing: bool):
        model.zero_grad()
        for p in model.adapter_parameters("reasoning"):
            p.requires_grad_(True)
        lp, _ = label_logprobs(model, features, features["labels"], gradient_checkpointing=checkpointing)
        (-lp.mean()).backward()
        return [p.grad.clone() for p in model.adapter_parameters("reasoning")]

    plain = reasoning_grads(False)
    setup_checkpointing(model)
    assert len(model._twn_checkpointed_layers) >= 2  # the decoder layers
    for a, b in zip(plain, reasoning_grads(True)):
        torch.testing.assert_close(a, b)
    # checkpointing stays off in the cached passes: encode still works in train mode
    with torch.no_grad():
        assert model(**model.prepare_features(batch.queries)).embeddings.shape == (6, 64)
