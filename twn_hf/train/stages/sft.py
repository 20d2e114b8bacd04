"""Stage `sft`: the reasoning adapter learns to write the teacher's chain of thought.

Loss: mean cross-entropy over the CoT tokens (and the stop token) of x ⊕ c, the prompt masked; only the
`reasoning` LoRA is trained. Rows contribute their query CoT and/or positive CoT (`--sft-sides`); rows with
neither are left out before training.
"""

from __future__ import annotations

import logging

import torch

from twn_hf.train.lm import label_logprobs
from twn_hf.train.stages.base import Stage

logger = logging.getLogger(__name__)


def cot_pairs(batch, sides: str = "both"):
    """(inputs, cots) of a batch: the sides that have a teacher CoT."""
    items, cots = [], []
    if sides in ("query", "both"):
        items += [q for q, c in zip(batch.queries, batch.query_cots) if c]
        cots += [c for c in batch.query_cots if c]
    if sides in ("positive", "both"):
        items += [p for p, c in zip(batch.positives, batch.positive_cots) if c]
        cots += [c for c in batch.positive_cots if c]
    return items, cots


def cot_loss(model, items, cots, gradient_checkpointing: bool = False) -> tuple[torch.Tensor | None, int]:
    """Mean CE over the CoT tokens of `items` ⊕ `cots` (reasoning adapter); (None, 0) without items."""
    if not items:
        return None, 0
    features = model.prepare_features(items, cots=cots)
    logprobs, _ = label_logprobs(model, features, features["labels"], gradient_checkpointing=gradient_checkpointing)
    return -logprobs.mean(), int(logprobs.numel())


class SFTStage(Stage):
    name = "sft"

    def select_rows(self, ctx):
        columns = {"query": ["query_cot"], "positive": ["positive_cot"], "both": ["query_cot", "positive_cot"]}
        present = [c for c in columns[self.config.sft_sides] if c in ctx.rows.column_names]
        if not present:
            wanted = columns[self.config.sft_sides]
            raise ValueError(f"stage sft needs teacher CoTs, but the data has no {wanted} column")
        has_cot = [False] * len(ctx.rows)
        for column in present:
            for i, value in enumerate(ctx.rows[column]):
                has_cot[i] = has_cot[i] or bool(isinstance(value, str) and value.strip())
        indices = [i for i, keep in enumerate(has_cot) if keep]
        logger.info("stage sft: %d of %d rows have a teacher CoT", len(indices), len(ctx.rows))
        return indices

    def trainable_parameters(self, model):
        return model.adapter_parameters(model.config.reasoning_adapter)

    def loss(self, ctx, batch):
        items, cots = cot_pairs(batch, self.config.sft_sides)
        loss, tokens = cot_loss(ctx.model, items, cots, ctx.train_config.gradient_checkpointing)
        if loss is None:
            return None, {"cot_tokens": 0.0}
        return loss, {"loss": loss.item(), "cot_tokens": float(tokens)}
