"""Hand-computed values for the training maths: InfoNCE, balanced BCE, gate labels and threshold, rewards,
advantages, the clipped objective, the KL estimate, and the embedding cache refresh."""

from __future__ import annotations

import math

import pytest
import torch

from twn_hf.train.embedding_cache import EmbeddingCache
from twn_hf.train.gate_labels import choose_threshold, gate_accuracy, gate_labels, retrieval_margin
from twn_hf.train.losses import balanced_bce, gathered_info_nce, info_nce
from twn_hf.train.rewards import (
    clipped_objective,
    group_advantages,
    kl_estimate,
    retrieval_reward,
    sequence_mean,
)


def close(actual, expected, tol=1e-5):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float32),
                               torch.as_tensor(expected, dtype=torch.float32), atol=tol, rtol=tol)


# ----- InfoNCE ----------------------------------------------------------------------------------------------------
def test_info_nce_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    candidates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    losses = info_nce(queries, candidates, torch.tensor([0, 1]), temperature=1.0)
    # row 0: logits (1, 0, 0.6), positive 0;  row 1: logits (0, 1, 0.8), positive 1
    close(losses, [math.log(math.e + 1 + math.exp(0.6)) - 1, math.log(1 + math.e + math.exp(0.8)) - 1])
    # temperature 0.5 doubles the logits
    close(info_nce(queries[:1], candidates, torch.tensor([0]), 0.5),
          [math.log(math.exp(2) + 1 + math.exp(1.2)) - 2])


def test_gathered_info_nce_single_process_is_the_mean_over_all_views():
    positives = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    negatives = torch.tensor([[0.6, 0.8]])
    e0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e1 = torch.tensor([[0.8, 0.6]])  # the think view exists for row 1 only
    loss, metrics = gathered_info_nce([(e0, torch.tensor([0, 1])), (e1, torch.tensor([1]))], positives, negatives, 1.0)
    row0 = math.log(math.e + 1 + math.exp(0.6)) - 1
    row1 = math.log(1 + math.e + math.exp(0.8)) - 1
    think1 = math.log(math.exp(0.8) + math.exp(0.6) + math.exp(0.96)) - 0.6  # logits (0.8, 0.6, 0.96), positive 1
    close(loss, (row0 + row1 + think1) / 3)
    assert metrics["accuracy"] == pytest.approx(2 / 3)  # the think view ranks the negative first


# ----- gate -------------------------------------------------------------------------------------------------------
def test_balanced_bce_by_hand():
    logits, labels = torch.tensor([2.0, -1.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0, 0.0])
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    # positive rate 1/4: a positive weighs 0.5 / 0.25 = 2, a negative 0.5 / 0.75 = 2/3
    expected = (2 * softplus(-2.0) + (2 / 3) * (softplus(-1.0) + softplus(0.0) + softplus(1.0))) / 4
    close(balanced_bce(logits, labels, 0.25), expected)
    close(balanced_bce(logits, labels, 0.0), (softplus(-2.0) + softplus(-1.0) + softplus(0.0) + softplus(1.0)) / 4)


def test_retrieval_margin_by_hand():
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    targets = torch.tensor([[0.8, 0.6], [1.0, 0.0], [0.0, 1.0]])
    # query 0: cosines (0.8, 1, 0), positive 0 -> 0.8 - 1;  query 1: cosines (0.6, 0, 1), positive 2 -> 1 - 0.6
    close(retrieval_margin(queries, targets, torch.tensor([0, 2])), [-0.2, 0.4])
    close(retrieval_margin(queries[:1], targets[:1], torch.tensor([0])), [0.8])  # a single target: its cosine


def test_gate_labels_by_hand():
    nothink, think = torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.2, 0.5, 0.3])
    assert gate_labels(nothink, think, 0.05).tolist() == [1.0, 1.0, 0.0]  # gains 0.1, 0.7, 0
    assert gate_labels(nothink, think, 0.2).tolist() == [0.0, 1.0, 0.0]
    assert gate_labels(nothink, think).tolist() == [1.0, 1.0, 0.0]


def test_choose_threshold_by_hand():
    p = torch.tensor([0.9, 0.7, 0.4, 0.2])
    right_nothink = torch.tensor([False, True, False, True])
    right_think = torch.tensor([True, True, True, False])
    # t=1.0: nobody thinks, 2/4 right; t=0.9: input 0 thinks, 3/4; t=0.7: inputs 0-1 think, 3/4 (tie: keep 0.9);
    # t=0.4 thinks on 3/4 > the 0.5 budget.
    assert choose_threshold(p, right_nothink, right_think, 0.5) == pytest.approx(
        {"threshold": 0.9, "think_rate": 0.25, "quality": 0.75})
    # with the budget at 0.75, t=0.4 makes every input right
    assert choose_threshold(p, right_nothink, right_think, 0.75) == pytest.approx(
        {"threshold": 0.4, "think_rate": 0.75, "quality": 1.0})
    assert choose_threshold(p, right_nothink, right_think, 0.0)["threshold"] == 1.0


def test_gate_accuracy_by_hand():
    p, labels = torch.tensor([0.9, 0.7, 0.4, 0.2]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    assert gate_accuracy(p, labels, 0.5) == 0.5  # predictions 1, 1, 0, 0
    assert gate_accuracy(p, labels, 0.3) == 0.75  # predictions 1, 1, 1, 0


# ----- RL ---------------------------------------------------------------------------------------------------------
def test_retrieval_reward_by_hand():
    e1, positive = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.6, 0.8]])
    cache = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cosines 1 and 0; the positive's is 0.6
    close(retrieval_reward(e1, positive, cache, kind="logprob", temperature=1.0),
          [0.6 - math.log(math.exp(0.6) + math.e + 1)])
    close(retrieval_reward(e1, positive, cache, kind="logprob", temperature=0.5),
          [1.2 - math.log(math.exp(1.2) + math.exp(2) + 1)])
    close(retrieval_reward(e1, positive, cache, kind="mrr"), [0.5])  # one cache entry ranks above it
    exclude = torch.tensor([[True, False]])  # entry 0 is this row's own positive
    close(retrieval_reward(e1, positive, cache, exclude, kind="mrr"), [1.0])
    close(retrieval_reward(e1, positive, cache, exclude, kind="logprob", temperature=1.0),
          [0.6 - math.log(math.exp(0.6) + 1)])


def test_group_advantages_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])
    std = math.sqrt(1.25)  # population std of 1, 2, 3, 4
    expected = [(r - 2.5) / (std + 1e-4) for r in (1, 2, 3, 4)] + [0.0] * 4
    close(group_advantages(rewards, 4), expected)
    close(group_advantages(torch.tensor([0.0, 2.0]), 2), [-1 / (1 + 1e-4), 1 / (1 + 1e-4)])


def test_clipped_objective_by_hand():
    ratios = torch.tensor([1.5, 0.5, 1.1, 0.5])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss, clipped = clipped_objective(torch.log(ratios), torch.zeros(4), advantages, clip_eps=0.2)
    # min(1.5, 1.2) = 1.2 (clipped); min(0.5, 0.8) = 0.5; min(-1.1, -1.1); min(-0.5, -0.8) = -0.8 (clipped)
    close(loss, [-1.2, -0.5, 1.1, 0.8])
    assert clipped.tolist() == [True, False, False, True]


def test_kl_estimate_and_sequence_mean_by_hand():
    close(kl_estimate(torch.log(torch.tensor([0.5])), torch.log(torch.tensor([0.25]))), [0.5 + math.log(2) - 1])
    close(kl_estimate(torch.tensor([-1.0]), torch.tensor([-1.0])), [0.0])
    close(sequence_mean(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([0, 0, 2, 2]), 3), [1.5, 0.0, 3.5])


# ----- embedding cache --------------------------------------------------------------------------------------------
class CountingEmbedder:
    """embeds row r as (r, version): the version says which refresh produced it."""

    def __init__(self):
        self.version = 0
        self.calls = []

    def __call__(self, rows):
        self.version += 1
        self.calls.append(list(rows))
        return torch.tensor([[float(r), float(self.version)] for r in rows]), rows


def test_embedding_cache_refreshes_every_n_steps():
    embedder = CountingEmbedder()
    cache = EmbeddingCache(size=3, refresh_every=2, num_rows=10, seed=0)
    refreshed = [cache.maybe_refresh(step, embedder) for step in range(5)]
    assert refreshed == [True, False, True, False, True]
    assert len(embedder.calls) == 3 and cache.refreshes == 3 and cache.refreshed_at == 4
    assert all(len(rows) == 3 and len(set(rows)) == 3 and all(0 <= r < 10 for r in rows) for rows in embedder.calls)
    # the cache holds the latest refresh, row ids and embeddings aligned
    assert cache.embeddings[:, 1].tolist() == [3.0, 3.0, 3.0]
    assert cache.rows.tolist() == embedder.calls[-1] == cache.embeddings[:, 0].long().tolist()
    # the draw depends only on (seed, refresh count): a second cache repeats it; another seed differs
    again = CountingEmbedder()
    twin = EmbeddingCache(size=3, refresh_every=2, num_rows=10, seed=0)
    for step in range(5):
        twin.maybe_refresh(step, again)
    assert again.calls == embedder.calls
    assert len({tuple(c) for c in embedder.calls}) > 1  # re-drawn, not the same rows every time


def test_embedding_cache_exclusion_and_state():
    cache = EmbeddingCache(size=3, refresh_every=5, num_rows=3, seed=1)
    cache.refresh(0, lambda rows: (torch.eye(3), [2, 0, 1]))
    assert cache.exclusion_mask([0, 5]).tolist() == [[False, True, False], [False, False, False]]
    restored = EmbeddingCache(size=3, refresh_every=5, num_rows=3, seed=1)
    restored.load_state_dict(cache.state_dict())
    assert not restored.due(4) and restored.due(5)
    assert torch.equal(restored.embeddings, cache.embeddings) and restored.rows.tolist() == [2, 0, 1]
    assert EmbeddingCache(size=50, refresh_every=1, num_rows=7, seed=0).size == 7  # never more than the rows
