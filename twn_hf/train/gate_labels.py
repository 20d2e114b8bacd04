"""Self-supervised gate labels and the choice of the default think threshold (stage `gate`).

For each input we have e0 (no-think) and e1 (think) and a pool of targets containing its positive. Its
*retrieval margin* in a view is cos(e, positive) - max cos(e, other target): positive means the positive ranks
first. The label says whether thinking helps this input: 1 where margin(e1) - margin(e0) > `margin`.
"""

from __future__ import annotations

import torch


def retrieval_margin(queries: torch.Tensor, targets: torch.Tensor, positive_index: torch.Tensor) -> torch.Tensor:
    """(N,) cos(q_i, t_pos(i)) - max_{j != pos(i)} cos(q_i, t_j); with a single target, just the positive's cosine."""
    similarities = queries.float() @ targets.float().T
    positive = similarities.gather(1, positive_index[:, None]).squeeze(1)
    if targets.shape[0] == 1:
        return positive
    others = similarities.scatter(1, positive_index[:, None], float("-inf"))
    return positive - others.max(dim=1).values


def gate_labels(margin_nothink: torch.Tensor, margin_think: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """1.0 where thinking improves the retrieval margin by more than `margin`, else 0.0."""
    return ((margin_think - margin_nothink) > margin).float()


def choose_threshold(probabilities: torch.Tensor, correct_nothink: torch.Tensor, correct_think: torch.Tensor,
                     target_think_rate: float) -> dict:
    """The gate threshold with the best retrieval quality among those thinking on at most `target_think_rate`.

    Quality at threshold t: the fraction of inputs whose positive ranks first with the embedding `auto` would
    use (e1 where p >= t, else e0). Candidates are 1.0 (think on nothing unless p == 1) and every observed p;
    ties go to the higher threshold (fewer CoTs for the same quality). If even 1.0 thinks too often (probabilities
    saturated at exactly 1), 1.0 is returned with its actual think rate.
    """
    probabilities = probabilities.float()
    correct_nothink, correct_think = correct_nothink.bool(), correct_think.bool()
    best = None
    candidates = sorted({1.0, *[round(float(p), 6) for p in probabilities]}, reverse=True)
    for threshold in candidates:
        think = probabilities >= threshold
        rate = float(think.float().mean())
        if rate > target_think_rate + 1e-9:
            continue
        quality = float(torch.where(think, correct_think, correct_nothink).float().mean())
        if best is None or quality > best["quality"] + 1e-12:
            best = {"threshold": threshold, "think_rate": rate, "quality": quality}
    if best is None:
        think = probabilities >= 1.0
        quality = float(torch.where(think, correct_think, correct_nothink).float().mean())
        best = {"threshold": 1.0, "think_rate": float(think.float().mean()), "quality": quality}
    return best


def gate_accuracy(probabilities: torch.Tensor, labels: torch.Tensor, threshold: float) -> float:
    """Fraction of inputs where (p >= threshold) equals the label."""
    return float(((probabilities >= threshold).float() == labels.float()).float().mean())
