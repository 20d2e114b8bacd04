"""Losses: InfoNCE with negatives gathered across processes, class-balanced BCE, and the cross-process helpers."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate `x` (N_r, ...) from every process along dim 0, keeping gradients; returns (gathered, offset).

    `offset` is where this process's rows start in the result. Processes may hold different numbers of rows
    (bad rows skipped): rows are padded to the largest count, gathered with `torch.distributed.nn`'s
    differentiable all-gather, and un-padded. Its backward sums every process's gradient for these rows
    (reduce-scatter), so with gradients then *averaged* across processes, the update equals the single-process
    update on the concatenated batch.
    """
    if not distributed():
        return x, 0
    from torch.distributed.nn.functional import all_gather

    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    largest = max(counts)
    rank = dist.get_rank()
    offset = sum(counts[:rank])
    if largest == 0:
        return x, offset
    padded = torch.cat([x, x.new_zeros(largest - x.shape[0], *x.shape[1:])]) if x.shape[0] < largest else x
    with warnings.catch_warnings():  # deprecated in favour of private _functional_collectives; still the public API
        warnings.simplefilter("ignore", FutureWarning)
        parts = all_gather(padded)
    return torch.cat([part[:n] for part, n in zip(parts, counts)]), offset


def gather_padded(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` from every process along dim 0, without gradients (row counts may differ)."""
    if not distributed():
        return x
    count = torch.tensor([x.shape[0]], device=x.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    largest = max(counts)
    if largest == 0:
        return x
    padded = torch.cat([x, x.new_zeros(largest - x.shape[0], *x.shape[1:])]) if x.shape[0] < largest else x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:n] for part, n in zip(parts, counts)])


def all_reduce_sum(value: float | torch.Tensor, device=None) -> torch.Tensor:
    """Sum of a scalar over processes (no gradient)."""
    tensor = torch.as_tensor(value, dtype=torch.float64, device=device).clone()
    if distributed():
        dist.all_reduce(tensor)
    return tensor


def info_nce(queries: torch.Tensor, candidates: torch.Tensor, positive_index: torch.Tensor,
             temperature: float) -> torch.Tensor:
    """Per-query InfoNCE: -log softmax(q . c / temperature)[positive]; (N,) losses.

    `candidates` are every target the queries compete against (gathered positives, then gathered hard negatives);
    `positive_index[i]` is query i's own positive among them. Embeddings are L2-normalised, so q . c is the cosine.
    """
    logits = queries.float() @ candidates.float().T / temperature
    return F.cross_entropy(logits, positive_index, reduction="none")


def gathered_info_nce(views, positives: torch.Tensor, negatives: torch.Tensor,
                      temperature: float) -> tuple[torch.Tensor, dict]:
    """InfoNCE of this process's query views against every process's positives and hard negatives.

    `views`: list of (queries (n, d), rows (n,)) where rows[i] indexes query i's positive in *this process's*
    `positives` (a view may cover a subset of the rows). Returns (loss, metrics). The loss is the sum of the local
    per-query losses x num_processes / global count of queries, so that gradients averaged over processes (what
    `loop.sync_gradients` does) equal the gradient of the global mean, and its mean over processes is the global
    mean. Every process must call this (the gathers are collectives), even with no rows: pass (0, d) tensors that
    require grad, since the all-gather's backward is a collective too.
    """
    all_positives, offset = gather_with_grad(positives)
    all_negatives, _ = gather_with_grad(negatives)
    candidates = torch.cat([all_positives, all_negatives])
    losses, hits = [], []
    for queries, rows in views:
        if len(queries):
            targets = offset + rows
            losses.append(info_nce(queries, candidates, targets, temperature))
            hits.append((queries.detach().float() @ candidates.detach().float().T).argmax(1) == targets)
    local = torch.cat(losses) if losses else candidates.new_zeros(0)
    count = float(all_reduce_sum(local.numel(), device=candidates.device))
    world = dist.get_world_size() if distributed() else 1
    # `0 * candidates.sum()` keeps this process's gathers in its graph, so it joins their backward collectives.
    loss = local.sum() * world / max(count, 1.0) + 0.0 * candidates.sum()
    metrics = {"loss": loss.item(), "accuracy": torch.cat(hits).float().mean().item() if hits else 0.0}
    return loss, metrics


def balanced_bce(logits: torch.Tensor, labels: torch.Tensor, positive_rate: float) -> torch.Tensor:
    """Class-balanced binary cross-entropy: each class carries half the total weight.

    A positive weighs 0.5 / positive_rate and a negative 0.5 / (1 - positive_rate) (positive_rate over the training
    labels), so a constant prediction cannot win by matching the majority class. With a degenerate rate (0 or 1)
    the weights fall back to 1.
    """
    labels = labels.float()
    if 0.0 < positive_rate < 1.0:
        weights = labels * (0.5 / positive_rate) + (1 - labels) * (0.5 / (1 - positive_rate))
    else:
        weights = torch.ones_like(labels)
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (weights * losses).mean()
