"""`forward` for training: the detach interface and the LM loss."""

from __future__ import annotations

import pytest
import torch

from twn_hf.modeling.inputs_twn import normalize_inputs
from twn_hf.testing import tiny_twn


def batch(model, texts):
    features = model.prepare_features(normalize_inputs(texts, model.config.max_image_pixels))
    return features


def contrastive_loss(embeddings):
    similarities = embeddings @ embeddings.T / 0.05
    return torch.nn.functional.cross_entropy(similarities, torch.arange(len(embeddings)))


@pytest.fixture
def trainable():
    model = tiny_twn("qwen3_vl")
    model.train()
    for name in (model.config.reasoning_adapter, model.config.embedding_adapter):
        for parameter in model.adapter_parameters(name):
            parameter.requires_grad_(True)
    return model


def grads(parameters):
    return [p.grad for p in parameters]


@pytest.mark.parametrize("detach", [True, False])
def test_contrastive_loss_reaches_reasoning_only_without_detach(trainable, detach):
    features = batch(trainable, ["a cat", "a dog on a mat", "seven"])
    output = trainable(**features, detach_interface=detach)
    contrastive_loss(output.embeddings).backward()
    reasoning = trainable.adapter_parameters("reasoning")
    embedding = trainable.adapter_parameters("embedding")
    assert all(g is not None and g.abs().sum() > 0 for g in grads(embedding[:1]))
    assert trainable.queries.grad is not None and trainable.queries.grad.abs().sum() > 0
    reasoning_grads = [g for g in grads(reasoning) if g is not None]
    if detach:
        assert all(g.abs().sum() == 0 for g in reasoning_grads)
    else:
        assert sum(g.abs().sum() for g in reasoning_grads) > 0


def test_lm_loss_reaches_reasoning_but_not_embedding_or_gate(trainable):
    features = batch(trainable, ["a cat", "a dog"])
    labels = features["input_ids"].clone()
    labels[features["attention_mask"] == 0] = -100
    output = trainable(**features, labels=labels)
    assert output.loss is not None and output.logits.shape[:2] == labels.shape
    output.loss.backward()
    assert sum(p.grad.abs().sum() for p in trainable.adapter_parameters("reasoning") if p.grad is not None) > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in trainable.adapter_parameters("embedding"))
    assert trainable.queries.grad is None
    assert all(p.grad is None for p in trainable.gate.parameters())


def test_gate_reads_detached_states(trainable):
    output = trainable(**batch(trainable, ["a cat", "a dog"]))
    output.gate_logits.sum().backward()
    assert trainable.queries.grad is None
    assert all(p.grad is not None for p in trainable.gate.parameters())


def test_forward_matches_encode_never(trainable):
    trainable.eval()
    texts = ["a cat", "a much longer description of a dog"]
    with torch.no_grad():
        output = trainable(**batch(trainable, texts))
    torch.testing.assert_close(output.embeddings, trainable.encode(texts, think="never"))


def test_backbone_stays_frozen(trainable):
    trainable_names = [n for n, p in trainable.backbone.named_parameters() if p.requires_grad]
    assert trainable_names and all("lora_" in n for n in trainable_names)
