"""KV-cache plumbing for the shared-cache flow of TWN (prefill once, embed, optionally think).

The backbone's own `generate()` cannot continue from a prefilled cache with M-RoPE positions
reliably, so TWN owns a small decode loop: explicit text positions (`L + i + rope_delta`, the
same on all three M-RoPE axes) and a growing attention mask, so left-padded rows and rows that
finished early stay exact. Part of the remote code: imports only torch and transformers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper


def text_positions(start: torch.Tensor, length: int) -> torch.Tensor:
    """(3, B, length) M-RoPE position ids for `length` text tokens starting at per-row `start`."""
    steps = torch.arange(length, device=start.device)
    return (start[:, None] + steps[None, :]).unsqueeze(0).expand(3, -1, -1)


def fork_cache(cache, detach: bool):
    """A cache sharing the tensors of `cache` that can be appended to without changing `cache`.

    `DynamicLayer.update` rebinds its tensors (torch.cat), so a shallow copy of each layer is
    enough. With `detach`, the copy is a stop-gradient view: whatever attends to it sends no
    gradient into the computation that produced the cache (the TWN interface).
    """
    forked = copy.copy(cache)
    forked.layers = []
    for layer in cache.layers:
        layer_copy = copy.copy(layer)
        if detach and getattr(layer, "is_initialized", False):
            layer_copy.keys = layer.keys.detach()
            layer_copy.values = layer.values.detach()
        forked.layers.append(layer_copy)
    return forked


@dataclass
class GenerationSettings:
    """How a chain of thought is decoded. Greedy by default, which makes `encode` deterministic."""

    max_new_tokens: int
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0

    def logits_processors(self) -> LogitsProcessorList:
        processors = LogitsProcessorList()
        if self.do_sample and self.temperature != 1.0:
            processors.append(TemperatureLogitsWarper(self.temperature))
        if self.do_sample and self.top_p < 1.0:
            processors.append(TopPLogitsWarper(self.top_p))
        return processors


@dataclass
class DecodeResult:
    tokens: torch.Tensor  # (B, T) generated ids, pad after a row's stop token
    num_tokens: torch.Tensor  # (B,) tokens fed per row, the stop token included
    next_positions: torch.Tensor  # (B,) text position for the next token after the CoT
    attention_mask: torch.Tensor  # (B, L + T) mask over the grown cache


def decode(
    step_fn,
    first_logits: torch.Tensor,
    next_positions: torch.Tensor,
    attention_mask: torch.Tensor,
    stop_token_ids: list[int],
    pad_token_id: int,
    settings: GenerationSettings,
    generator: torch.Generator | None = None,
) -> DecodeResult:
    """Batched decoding from a prefilled cache.

    `step_fn(token_ids (B,1), position_ids (3,B,1), attention_mask (B,S)) -> logits (B, V)` runs one
    step of the backbone with the reasoning adapter and appends to the cache. Every generated
    token, the stop token included, is fed back, so afterwards the cache holds `x ⊕ c` for each
    row. Rows that stopped keep receiving a masked pad token until all rows stop.
    """
    batch = first_logits.shape[0]
    device = first_logits.device
    stop_ids = torch.tensor(sorted(set(stop_token_ids)), device=device)
    processors = settings.logits_processors()
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    num_tokens = torch.zeros(batch, dtype=torch.long, device=device)
    positions = next_positions.clone()
    generated: list[torch.Tensor] = []
    logits = first_logits
    for step in range(settings.max_new_tokens):
        scores = logits.float()
        if step < settings.min_new_tokens:
            scores[:, stop_ids] = float("-inf")
        past = torch.stack(generated, dim=1) if generated else torch.empty(batch, 0, dtype=torch.long, device=device)
        scores = processors(past, scores)
        if settings.do_sample:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator).squeeze(1)
        else:
            tokens = scores.argmax(dim=-1)
        active = ~finished
        tokens = torch.where(active, tokens, torch.full_like(tokens, pad_token_id))
        generated.append(tokens)
        num_tokens += active.long()
        finished = finished | torch.isin(tokens, stop_ids)
        attention_mask = torch.cat([attention_mask, active.long()[:, None]], dim=1)
        logits = step_fn(tokens[:, None], text_positions(positions, 1), attention_mask)
        positions = positions + active.long()
        if bool(finished.all()):
            break
    tokens = torch.stack(generated, dim=1) if generated else torch.empty(batch, 0, dtype=torch.long, device=device)
    return DecodeResult(tokens, num_tokens, positions, attention_mask)
