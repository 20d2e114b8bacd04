"""`TWNModel.encode`: think modes, batch invariance, one prefill per input, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twn_hf.testing import FAMILIES, tiny_twn


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


def test_embeddings_are_normalised_float32(twn, mixed_inputs):
    embeddings = twn.encode(mixed_inputs, think="never")
    assert embeddings.dtype == torch.float32
    assert embeddings.shape == (len(mixed_inputs), twn.config.hidden_size)
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(len(mixed_inputs)))


def test_numpy_and_single_input(twn):
    array = twn.encode(["hello world"], think="never", convert_to_numpy=True)
    assert isinstance(array, np.ndarray) and array.shape == (1, twn.config.hidden_size)
    single = twn.encode("hello world", think="never")
    assert single.shape == (twn.config.hidden_size,)
    np.testing.assert_allclose(single.numpy(), array[0], atol=1e-6)


def test_always_thinks_for_every_input_and_never_for_none(twn, mixed_inputs):
    _, always = twn.encode(mixed_inputs, think="always", return_details=True)
    _, never = twn.encode(mixed_inputs, think="never", return_details=True)
    assert all(d.thought and d.tokens_generated > 0 and d.cot is not None for d in always)
    assert all(not d.thought and d.tokens_generated == 0 and d.cot is None for d in never)


def test_auto_thinks_exactly_where_gate_reaches_threshold(twn, mixed_inputs):
    _, never = twn.encode(mixed_inputs, think="never", return_details=True)
    probabilities = [d.gate_probability for d in never]
    threshold = float(np.median(probabilities))
    assert min(probabilities) < threshold <= max(probabilities), "fixture gate must split the batch"
    embeddings, auto = twn.encode(mixed_inputs, think="auto", threshold=threshold, return_details=True)
    always_embeddings = twn.encode(mixed_inputs, think="always")
    never_embeddings = twn.encode(mixed_inputs, think="never")
    for i, detail in enumerate(auto):
        assert detail.thought == (probabilities[i] >= threshold)
        assert detail.gate_probability == pytest.approx(probabilities[i], abs=1e-6)
        expected = always_embeddings[i] if detail.thought else never_embeddings[i]
        assert cosine(embeddings[i], expected) > 0.9999


def test_threshold_zero_reproduces_always(twn, mixed_inputs):
    auto, auto_details = twn.encode(mixed_inputs, think="auto", threshold=0.0, return_details=True)
    always, always_details = twn.encode(mixed_inputs, think="always", return_details=True)
    torch.testing.assert_close(auto, always)
    assert [d.cot for d in auto_details] == [d.cot for d in always_details]


def test_thinking_changes_the_embedding(twn):
    never = twn.encode(["a cat"], think="never")
    always = twn.encode(["a cat"], think="always")
    assert cosine(never[0], always[0]) < 0.999


@pytest.mark.parametrize("think", ["never", "always", "auto"])
def test_each_input_is_prefilled_once(twn, mixed_inputs, think):
    """Count rows through `prefill`, and full-length passes through the language model."""
    rows, full_passes = [], []
    original = twn.prefill

    def counting_prefill(input_ids, attention_mask, **kwargs):
        rows.append(input_ids.shape[0])
        return original(input_ids, attention_mask, **kwargs)

    def hook(module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        ids = kwargs.get("input_ids")
        length = (embeds if embeds is not None else ids).shape[1]
        if length > twn.config.num_queries:  # decode steps feed 1 token, queries K tokens
            full_passes.append(length)

    handle = twn.backbone.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
    twn.prefill = counting_prefill
    try:
        twn.encode(mixed_inputs, think=think, threshold=0.5, batch_size=3)
    finally:
        twn.prefill = original
        handle.remove()
    assert sum(rows) == len(mixed_inputs)
    assert len(full_passes) == 3  # one per batch of 3, 3, 2 inputs


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_invariance(family, mixed_inputs):
    model = tiny_twn(family)
    never = model.encode(mixed_inputs, think="never")
    always, details = model.encode(mixed_inputs, think="always", return_details=True)
    for i, item in enumerate(mixed_inputs):
        alone_never = model.encode([item], think="never")
        alone_always, alone_details = model.encode([item], think="always", return_details=True)
        assert cosine(never[i], alone_never[0]) >= 0.9999, f"input {i} (never)"
        assert alone_details[0].cot == details[i].cot, f"input {i}: CoT differs in a batch"
        assert cosine(always[i], alone_always[0]) >= 0.999, f"input {i} (always)"


def test_deterministic(twn, mixed_inputs):
    first, first_details = twn.encode(mixed_inputs, think="auto", return_details=True)
    second, second_details = twn.encode(mixed_inputs, think="auto", return_details=True)
    assert torch.equal(first, second)
    assert first_details == second_details


def test_max_think_tokens_caps_the_cot(twn):
    _, details = twn.encode(["a cat", "a dog"], think="always", max_think_tokens=2, return_details=True)
    assert all(1 <= d.tokens_generated <= 2 for d in details)


def test_left_padding_is_used_whatever_the_tokenizer_says(twn, mixed_inputs):
    expected = twn.encode(mixed_inputs, think="never")
    tokenizer = twn.processor.tokenizer
    tokenizer.padding_side = "right"
    try:
        torch.testing.assert_close(twn.encode(mixed_inputs, think="never"), expected)
    finally:
        tokenizer.padding_side = "left"
