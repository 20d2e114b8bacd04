"""`twn demo` on the bundled TWN-Digits model: what each query did, what it retrieved, and the mode table."""

from __future__ import annotations

import time

import numpy as np

from twn_hf.demo.digits import GROUP_OF, TASKS, DigitsData, Query, build_digits
from twn_hf.demo.evaluate import hits
from twn_hf.demo.rows import candidate_input, query_input

PER_TASK = 20  # test queries per task in the live table (the full table is in benchmarks/digits/)


def describe_query(query: Query, data: DigitsData) -> str:
    parts = []
    if query.image is not None:
        parts.append(f"[image of a handwritten {int(data.labels[query.image])}]")
    if query.text:
        parts.append(repr(query.text))
    return " + ".join(parts)


def describe_candidate(candidate, data: DigitsData) -> str:
    return repr(candidate) if isinstance(candidate, str) else f"[image of a {int(data.labels[candidate])}]"


def fixed_subset(data: DigitsData) -> list[Query]:
    """The first PER_TASK test queries of every task: the same subset on every run."""
    chosen, counts = [], {}
    for query in data.queries["test"]:
        if counts.get(query.task, 0) < PER_TASK:
            counts[query.task] = counts.get(query.task, 0) + 1
            chosen.append(query)
    return chosen


def candidate_embeddings(model, data: DigitsData, queries: list[Query]) -> dict:
    keys = sorted({c for q in queries for c in q.candidates}, key=lambda c: (isinstance(c, int), str(c)))
    vectors = model.encode([candidate_input(c, data) for c in keys], think="never", batch_size=64)
    return dict(zip(keys, vectors))


def mode_table(model, data: DigitsData, queries: list[Query], candidates: dict) -> list[dict]:
    """hit@1 per group and overall, think rate and CoT tokens per query, wall time, and the per-query hits and
    think decisions (what the bundled-model test compares), per mode."""
    inputs = [query_input(q, data) for q in queries]
    groups = np.array([GROUP_OF[q.task] for q in queries])
    rows = []
    for mode in ("never", "always", "auto"):
        started = time.perf_counter()
        embeddings, details = model.encode(inputs, think=mode, batch_size=64, return_details=True)
        seconds = time.perf_counter() - started
        hit = hits(queries, embeddings, candidates)
        thought = np.array([d.thought for d in details])
        rows.append({
            "mode": mode,
            "direct": 100 * hit[groups == "direct"].mean(),
            "reasoning": 100 * hit[groups == "reasoning"].mean(),
            "overall": 100 * hit.mean(),
            "think_direct": 100 * thought[groups == "direct"].mean(),
            "think_reasoning": 100 * thought[groups == "reasoning"].mean(),
            "cot_tokens": float(np.mean([d.tokens_generated for d in details])),
            "seconds": seconds,
            "hits": hit.astype(int).tolist(),
            "thought": thought.astype(int).tolist(),
        })
    return rows


def run_digits_demo(model, seed: int = 0) -> None:
    data = build_digits(seed)
    subset = fixed_subset(data)
    candidates = candidate_embeddings(model, data, subset)
    examples = [next(q for q in subset if q.task == task) for task in TASKS]
    embeddings, details = model.encode([query_input(q, data) for q in examples], think="auto", return_details=True)
    print(f"TWN-Digits demo: think='auto' at threshold {model.config.think_threshold:.2f}\n")
    for query, embedding, detail in zip(examples, embeddings, details):
        print(f"{query.task} ({GROUP_OF[query.task]}): {describe_query(query, data)}")
        action = f"THOUGHT, {detail.tokens_generated} tokens" if detail.thought else "no thinking"
        print(f"  p(think) = {detail.gate_probability:.2f} -> {action}")
        if detail.thought:
            print(f"  CoT: {detail.cot}")
        scores = np.array([float(candidates[c] @ embedding) for c in query.candidates])
        top = np.argsort(-scores)[:3]
        shown = ", ".join(f"{describe_candidate(query.candidates[i], data)} {scores[i]:.2f}"
                          + (" ✓" if i == query.positive else "") for i in top)
        print(f"  top candidates: {shown}\n")
    print(f"hit@1 on a fixed subset of the test split ({PER_TASK} queries per task, {len(subset)} in all):\n")
    print("| mode | direct | reasoning | overall | think % direct | think % reasoning | CoT tokens/query | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for row in mode_table(model, data, subset, candidates):
        print(f"| {row['mode']} | {row['direct']:.1f} | {row['reasoning']:.1f} | {row['overall']:.1f} | "
              f"{row['think_direct']:.0f} | {row['think_reasoning']:.0f} | {row['cot_tokens']:.1f} | "
              f"{row['seconds']:.1f} |")
    print("\nThe full test-split table, the threshold sweep and the ablations: benchmarks/digits/results.md")
