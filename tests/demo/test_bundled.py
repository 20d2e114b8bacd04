"""The bundled TWN-Digits checkpoint reproduces its committed numbers on a fixed subset (no training here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twn_hf.commands.common import bundled_checkpoint

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "digits" / "results.json"

pytestmark = pytest.mark.skipif(bundled_checkpoint() is None, reason="this install has no bundled checkpoint")


def test_bundled_checkpoint_reproduces_the_committed_subset_numbers():
    from transformers import AutoModel

    from twn_hf.demo.digits import build_digits
    from twn_hf.demo.show import candidate_embeddings, fixed_subset, mode_table

    committed = {row["mode"]: row for row in json.loads(RESULTS.read_text())["demo_subset"]}
    model = AutoModel.from_pretrained(str(bundled_checkpoint()), trust_remote_code=True)
    data = build_digits(seed=0)
    subset = fixed_subset(data)
    rows = {row["mode"]: row for row in mode_table(model, data, subset, candidate_embeddings(model, data, subset))}
    for mode in ("never", "always", "auto"):
        for key in ("direct", "reasoning", "overall", "think_direct", "think_reasoning"):
            assert rows[mode][key] == pytest.approx(committed[mode][key], abs=2.0), (mode, key)
        differing = sum(a != b for a, b in zip(rows[mode]["hits"], committed[mode]["hits"]))
        assert differing <= 1, f"{mode}: {differing} queries changed their hit"


def test_bundled_remote_code_is_the_current_modeling_code():
    """The checkpoint ships its own copy of modeling/*_twn.py; a change there must be copied in too."""
    modeling = Path(__file__).resolve().parents[2] / "modeling"
    for source in modeling.glob("*_twn.py"):
        bundled = bundled_checkpoint() / source.name
        assert bundled.read_bytes() == source.read_bytes(), f"{bundled} is stale: copy {source} over it"
