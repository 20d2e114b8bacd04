"""TWN-Digits benchmark construction: splits, tasks, candidates and teacher CoTs."""

from __future__ import annotations

import re

import numpy as np
import pytest

from twn_hf.demo.digits import (
    ONES, TASKS, Op, apply_chain, build_digits, chain_cot, number_word, split_indices,
)


@pytest.fixture(scope="module")
def digits():
    return build_digits(seed=0, text_queries={"train": 50, "validation": 20, "test": 30})


WORD_TO_NUMBER = {number_word(n): n for n in range(100)}


def test_number_words():
    assert [number_word(n) for n in (0, 7, 13, 20, 42, 99)] == ["zero", "seven", "thirteen", "twenty", "forty two",
                                                                 "ninety nine"]
    with pytest.raises(ValueError):
        number_word(100)


def test_chain_cot_is_the_computation_in_words():
    chain = [Op("plus", 3), Op("times", 2)]
    assert apply_chain(4, chain) == [4, 7, 14]
    assert chain_cot("This is a four.", 4, chain) == (
        "This is a four. Four plus three is seven. Seven times two is fourteen. The answer is fourteen.")


def test_splits_are_seeded_and_image_disjoint(digits):
    again = split_indices(len(digits.images), seed=0)
    other = split_indices(len(digits.images), seed=1)
    assert all(np.array_equal(again[k], digits.splits[k]) for k in again)
    assert not np.array_equal(other["test"], digits.splits["test"])
    sets = [set(v.tolist()) for v in digits.splits.values()]
    assert sum(len(s) for s in sets) == len(digits.images) and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_queries_use_only_their_own_split(digits):
    for split, queries in digits.queries.items():
        allowed = set(digits.splits[split].tolist())
        for query in queries:
            used = ([query.image] if query.image is not None else []) + [c for c in query.candidates if isinstance(c, int)]
            assert set(used) <= allowed, (split, query.task)


def test_every_task_is_present_with_ten_candidates(digits):
    tasks = {q.task for q in digits.queries["test"]}
    assert tasks == set(TASKS)
    assert all(len(q.candidates) == 10 and len(set(map(str, q.candidates))) == 10 for q in digits.queries["test"])


def test_positives_and_cots_agree_with_the_labels(digits):
    labels = digits.labels
    for query in digits.queries["test"]:
        answer = re.search(r"The answer is ([a-z ]+)\.$", query.cot).group(1)
        positive = query.candidates[query.positive]
        if isinstance(positive, str):
            assert positive == answer
        else:
            assert labels[positive] == WORD_TO_NUMBER[answer], query
        if query.image is not None:
            assert query.cot.startswith(f"This is a {ONES[labels[query.image]]}.")
        if query.task == "img2img":
            assert query.image not in query.candidates


def test_reasoning_queries_need_one_to_three_steps(digits):
    depths = [q.depth for q in digits.queries["test"] if q.group == "reasoning"]
    assert set(depths) == {1, 2, 3}
    assert all(q.depth == 0 for q in digits.queries["test"] if q.group == "direct")
