"""Score a TWN on TWN-Digits: hit@1 per task and group for never / always / auto and a threshold sweep.

Queries are embedded in each think mode; candidates (the document side) are embedded once with
`think="never"`, as an index would be. `auto` at any threshold is, by definition, e₁ where
p(think) ≥ threshold and e₀ elsewhere, so one `never` pass (e₀, p) and one `always` pass (e₁, CoT
tokens) give every point of the sweep exactly; `auto` at the default threshold is also run for real
to time it and to check it against that composition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from twn_hf.demo.digits import GROUP_OF, TASKS, DigitsData, Query
from twn_hf.demo.rows import candidate_input, query_input

SWEEP = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class QueryPasses:
    """Per-query results of the `never` and `always` passes, plus candidate embeddings."""

    e0: torch.Tensor
    e1: torch.Tensor
    probability: np.ndarray
    cot_tokens: np.ndarray
    cots: list[str | None]
    candidate_embeddings: dict
    seconds: dict


def encode_passes(model, data: DigitsData, queries: list[Query], batch_size: int = 64) -> QueryPasses:
    inputs = [query_input(q, data) for q in queries]
    seconds = {}
    started = time.perf_counter()
    e0, never = model.encode(inputs, think="never", batch_size=batch_size, return_details=True)
    seconds["never"] = time.perf_counter() - started
    started = time.perf_counter()
    e1, always = model.encode(inputs, think="always", batch_size=batch_size, return_details=True)
    seconds["always"] = time.perf_counter() - started
    keys = sorted({c for q in queries for c in q.candidates}, key=lambda c: (isinstance(c, int), str(c)))
    candidates = model.encode([candidate_input(c, data) for c in keys], think="never", batch_size=batch_size)
    return QueryPasses(
        e0=e0, e1=e1,
        probability=np.array([d.gate_probability for d in never]),
        cot_tokens=np.array([d.tokens_generated for d in always]),
        cots=[d.cot for d in always],
        candidate_embeddings=dict(zip(keys, candidates)),
        seconds=seconds,
    )


def hits(queries: list[Query], embeddings: torch.Tensor, candidate_embeddings: dict) -> np.ndarray:
    """1 where the query's top-scoring candidate is its positive."""
    result = np.zeros(len(queries), dtype=bool)
    for i, query in enumerate(queries):
        matrix = torch.stack([candidate_embeddings[c] for c in query.candidates])
        result[i] = int(torch.argmax(matrix @ embeddings[i])) == query.positive
    return result


def mix(passes: QueryPasses, thinks: np.ndarray) -> torch.Tensor:
    mask = torch.from_numpy(thinks)[:, None]
    return torch.where(mask, passes.e1, passes.e0)


def summarise(queries: list[Query], hit: np.ndarray, thinks: np.ndarray, cot_tokens: np.ndarray) -> dict:
    """hit@1 (percent) per task, per group and overall; think rate per group; mean CoT tokens per query."""
    tasks = np.array([q.task for q in queries])
    groups = np.array([GROUP_OF[q.task] for q in queries])
    out = {"hit@1": {t: 100 * float(hit[tasks == t].mean()) for t in TASKS}}
    for group in ("direct", "reasoning"):
        out["hit@1"][group] = float(np.mean([out["hit@1"][t] for t in TASKS if GROUP_OF[t] == group]))
        out.setdefault("think_rate", {})[group] = 100 * float(thinks[groups == group].mean())
    out["hit@1"]["overall"] = float(np.mean([out["hit@1"][t] for t in TASKS]))
    out["think_rate"]["overall"] = 100 * float(thinks.mean())
    out["cot_tokens_per_query"] = float((cot_tokens * thinks).mean())
    return out


def evaluate(model, data: DigitsData, queries: list[Query], batch_size: int = 64, random_gate_seeds: int = 5) -> dict:
    """The full table: never, always, auto (default threshold, run for real), sweep, random gate."""
    passes = encode_passes(model, data, queries, batch_size)
    n = len(queries)

    def row(thinks):
        return summarise(queries, hits(queries, mix(passes, thinks), passes.candidate_embeddings), thinks,
                         passes.cot_tokens)

    results = {"never": row(np.zeros(n, dtype=bool)), "always": row(np.ones(n, dtype=bool))}
    results["never"]["seconds"] = passes.seconds["never"]
    results["always"]["seconds"] = passes.seconds["always"]

    threshold = float(model.config.think_threshold)
    started = time.perf_counter()
    auto_embeddings, auto_details = model.encode([query_input(q, data) for q in queries], think="auto",
                                                 batch_size=batch_size, return_details=True)
    auto_seconds = time.perf_counter() - started
    thinks = np.array([d.thought for d in auto_details])
    results["auto"] = summarise(queries, hits(queries, auto_embeddings, passes.candidate_embeddings), thinks,
                                np.array([d.tokens_generated for d in auto_details]))
    results["auto"].update(threshold=threshold, seconds=auto_seconds,
                           composition_matches=bool(np.array_equal(thinks, passes.probability >= threshold)))
    results["sweep"] = [{"threshold": t, **row(passes.probability >= t)} for t in SWEEP]

    if random_gate_seeds == 0:
        return results
    rng = np.random.default_rng(0)
    random_rows = []
    for _ in range(random_gate_seeds):
        random_thinks = np.zeros(n, dtype=bool)
        random_thinks[rng.choice(n, size=int(thinks.sum()), replace=False)] = True
        random_rows.append(row(random_thinks))
    results["examples"] = _examples(queries, passes)
    results["random_gate"] = {
        "think_rate": random_rows[0]["think_rate"],
        "hit@1": {k: float(np.mean([r["hit@1"][k] for r in random_rows])) for k in random_rows[0]["hit@1"]},
        "seeds": random_gate_seeds,
    }
    return results


def _examples(queries: list[Query], passes: QueryPasses, per_task: int = 2) -> list[dict]:
    """A few queries of every task with their gate probability and CoT, for the report."""
    shown, counts = [], {}
    for query, probability, cot in zip(queries, passes.probability, passes.cots):
        if counts.get(query.task, 0) < per_task:
            counts[query.task] = counts.get(query.task, 0) + 1
            shown.append({"task": query.task, "text": query.text, "image": query.image,
                          "probability": float(probability), "cot": cot})
    return shown
