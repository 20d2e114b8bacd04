"""The language-model pass of the reasoning adapter: log-probabilities of CoT tokens given the input.

Used by stage `sft` (CE = mean negative log-probability) and stage `rl` (per-token log-probabilities for the
policy ratio and the KL). It is a plain backbone pass *without* a KV cache (the TWN cache flow is for the
embedding path), which is what lets gradient checkpointing apply here: transformers' checkpointed layers drop
any cache. Logits are computed only at labelled positions, so a 150k vocabulary costs memory per CoT token,
not per input token. Matches `TWNModel.forward(labels=...)`'s CE (tested).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F


@contextmanager
def checkpointing(model, enabled: bool):
    """Turn gradient checkpointing on for the backbone's layers inside the block (if it was set up)."""
    layers = getattr(model, "_twn_checkpointed_layers", [])
    for layer in layers:
        layer.gradient_checkpointing = enabled
    try:
        yield
    finally:
        for layer in layers:
            layer.gradient_checkpointing = False


def setup_checkpointing(model) -> None:
    """Prepare gradient checkpointing (non-reentrant) but leave it off; `checkpointing(model, True)` enables it.

    It must stay off in the cached passes (prefill, queries, decoding): checkpointed layers drop the KV cache.
    """
    backbone, kwargs = model.backbone, {"use_reentrant": False}
    if hasattr(backbone, "activation_checkpointing_enable"):  # transformers >= 5.x name
        backbone.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    layers = [m for m in model.backbone.modules() if getattr(m, "gradient_checkpointing", False) is True]
    for layer in layers:
        layer.gradient_checkpointing = False
    model._twn_checkpointed_layers = layers


def label_logprobs(model, features: dict, labels: torch.Tensor, temperature: float = 1.0,
                   gradient_checkpointing: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(labels[b, t] | tokens[b, < t]) at every labelled position (label != -100), reasoning adapter.

    Returns (logprobs (N,), row (N,)) over the N labelled tokens in row-major order. `temperature` divides the
    logits (RL scores samples under the distribution they were drawn from).
    """
    model.set_active_adapter(model.config.reasoning_adapter)
    inputs = {k: v for k, v in features.items() if k != "labels"}
    with checkpointing(model, gradient_checkpointing):
        hidden = model.backbone.model(**inputs, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    mask = targets != -100
    selected = hidden[:, :-1][mask]
    logits = model.backbone.lm_head(selected).float() / temperature
    logprobs = F.log_softmax(logits, dim=-1).gather(-1, targets[mask][:, None]).squeeze(-1)
    rows = torch.arange(labels.shape[0], device=labels.device)[:, None].expand_as(targets)[mask]
    return logprobs, rows
