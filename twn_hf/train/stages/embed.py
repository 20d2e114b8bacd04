"""Stage `embed`: InfoNCE for the embedding adapter and the query vectors, over both views.

For a batch of rows (query q_i, positive p_i, hard negatives), gathered over all processes:

    candidates = [p_1 .. p_B (every process's positives), n_1 .. n_M (every process's hard negatives)]
    L = mean over (i, view) of  -log softmax(e_view(q_i) . candidates / temperature)[p_i]

with views x (e0: the input alone) and x ⊕ c (e1: the input followed by its CoT c). c is the row's teacher CoT
(`--cot-source teacher`; rows without one contribute only their x view) or a greedy CoT written by the current
reasoning adapter (`--cot-source generate`; both views then come from one prefill, as at inference). Targets
(positives, negatives) are embedded in the x view, as documents are indexed by default.

Negatives are gathered *with gradients* (`torch.distributed.nn` all-gather), the mean runs over the global count,
and gradients are averaged over processes, so N processes with batch b compute exactly the loss and update of
one process with batch N x b. Negatives are not shared across gradient-accumulation micro-batches.

With `detach_interface` (default) the prefill runs under no_grad and the queries read a stop-gradient view of the
KV cache: InfoNCE reaches only the embedding adapter and queries, and memory grows with K, not with the input
length. `--no-detach-interface` (ablation) lets InfoNCE train the reasoning adapter too. `--joint` adds stage
sft's CE (weight `sft_weight`) on the same batch; it is computed in its own cache-free LM pass, so with the
detach the two losses never share a gradient path.

Where this is our reading rather than the paper's (whose full text we do not have): the targets are embedded
without thinking, in-batch duplicates of a positive are not masked as false negatives, there is no GradCache
(negatives across accumulation steps), and the two views' losses are averaged with equal weight per (query, view).
"""

from __future__ import annotations

import torch

from twn_hf.modeling.decoding_twn import GenerationSettings
from twn_hf.train.losses import gathered_info_nce
from twn_hf.train.stages.base import Stage
from twn_hf.train.stages.sft import cot_loss, cot_pairs


def embed_inputs(model, items, cots=None, detach: bool = True) -> torch.Tensor:
    """(N, d) embeddings of `items` (x view), or of `items` ⊕ `cots` (think view) with the teacher's CoT."""
    features = model.prepare_features(items, cots=cots)
    features.pop("labels", None)
    return model(**features, detach_interface=detach).embeddings


def embed_with_generated_cot(model, items) -> tuple[torch.Tensor, torch.Tensor]:
    """(e0, e1) from one prefill: the queries after x, then a greedy CoT (no gradient), then the queries again."""
    features = model.prepare_features(items)
    input_ids, attention_mask = features.pop("input_ids"), features.pop("attention_mask")
    with torch.no_grad():
        last_hidden, cache, next_positions = model.prefill(input_ids, attention_mask, **features)
    e0 = model.pool(model.query_states(cache, attention_mask, next_positions, detach=True))
    with torch.no_grad():
        settings = GenerationSettings(max_new_tokens=model.config.max_think_tokens)
        result = model.think(cache, attention_mask, next_positions, last_hidden, settings)
    e1 = model.pool(model.query_states(cache, result.attention_mask, result.next_positions, detach=True))
    return e0, e1


class EmbedStage(Stage):
    name = "embed"

    def __init__(self, config):
        super().__init__(config)
        if config.cot_source == "generate" and not config.detach_interface:
            raise ValueError("--cot-source generate decodes without gradients, so it needs --detach-interface")

    def trainable_parameters(self, model):
        params = model.adapter_parameters(model.config.embedding_adapter) + [model.queries]
        if self.config.joint or not self.config.detach_interface:
            params += model.adapter_parameters(model.config.reasoning_adapter)
        return params

    def loss(self, ctx, batch):
        model, config = ctx.model, self.config
        detach = config.detach_interface
        # requires_grad: the all-gather's backward is itself a collective, so every process must have it in its
        # graph (and run backward), even one whose rows all failed to load.
        empty = torch.zeros(0, model.config.hidden_size, device=ctx.device, requires_grad=True)
        positives = negatives = e0 = e1 = empty
        think_rows = torch.zeros(0, dtype=torch.long, device=ctx.device)
        if len(batch):
            positives = embed_inputs(model, batch.positives, detach=detach)
            if batch.negatives:
                negatives = embed_inputs(model, batch.negatives, detach=detach)
            if config.cot_source == "generate":
                e0, e1 = embed_with_generated_cot(model, batch.queries)
                think_rows = torch.arange(len(batch), device=ctx.device)
            else:
                if config.views != "think":
                    e0 = embed_inputs(model, batch.queries, detach=detach)
                rows = [i for i, cot in enumerate(batch.query_cots) if cot]
                if rows and config.views != "nothink":
                    e1 = embed_inputs(model, [batch.queries[i] for i in rows], [batch.query_cots[i] for i in rows],
                                      detach=detach)
                    think_rows = torch.tensor(rows, device=ctx.device)
            if config.views == "think":
                e0 = empty
            if config.views == "nothink":
                e1, think_rows = empty, think_rows[:0]

        views = [(e0, torch.arange(len(e0), device=ctx.device)), (e1, think_rows)]
        loss, metrics = gathered_info_nce(views, positives, negatives, config.temperature)
        metrics["views"] = float(len(e0) + len(e1))
        if config.joint:
            ce, _ = cot_loss(model, *cot_pairs(batch, "both"), ctx.train_config.gradient_checkpointing)
            if ce is not None:
                loss = loss + config.sft_weight * ce
                metrics["ce"] = ce.item()
        return loss, metrics
