"""Stage `rl` maths: retrieval reward, group-normalised advantages, the clipped objective and the KL estimate."""

from __future__ import annotations

import torch


def retrieval_reward(embeddings: torch.Tensor, positives: torch.Tensor, cache: torch.Tensor,
                     exclude: torch.Tensor | None = None, kind: str = "logprob",
                     temperature: float = 0.02) -> torch.Tensor:
    """How well each think embedding e1 retrieves its positive against the cache of target embeddings; (N,).

    Candidates for row i: its positive `positives[i]` plus every cache entry not excluded (`exclude[i, j]` masks
    cache entries that are row i's own positive). kind="logprob": log softmax(cos / temperature) of the positive;
    kind="mrr": 1 / rank of the positive (1 = ranked first; ties count in its favour).
    """
    positive = (embeddings.float() * positives.float()).sum(-1)
    others = embeddings.float() @ cache.float().T
    if exclude is not None:
        others = others.masked_fill(exclude, float("-inf"))
    if kind == "logprob":
        logits = torch.cat([positive[:, None], others], dim=1) / temperature
        return torch.log_softmax(logits, dim=1)[:, 0]
    if kind == "mrr":
        return 1.0 / (1.0 + (others > positive[:, None]).sum(dim=1).float())
    raise ValueError(f"unknown reward {kind!r}")


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """(r - group mean) / (group std + eps) for consecutive groups of `group_size` samples (population std).

    A group whose samples all earn the same reward gets advantage 0 (it carries no signal).
    """
    groups = rewards.float().reshape(-1, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True, unbiased=False)
    return ((groups - mean) / (std + eps)).reshape(-1)


def clipped_objective(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                      clip_eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO loss -min(ratio * A, clip(ratio, 1 - eps, 1 + eps) * A) and whether the clip was active."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -torch.minimum(unclipped, clipped), (clipped < unclipped)


def kl_estimate(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate exp(ref - logp) - (ref - logp) - 1 (the k3 estimator, as GRPO)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1.0


def sequence_mean(values: torch.Tensor, rows: torch.Tensor, num_rows: int) -> torch.Tensor:
    """(num_rows,) mean of the per-token `values` of each row (0 for a row without tokens)."""
    sums = torch.zeros(num_rows, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    counts = torch.zeros(num_rows, dtype=values.dtype, device=values.device).index_add(0, rows, torch.ones_like(values))
    return sums / counts.clamp(min=1)
