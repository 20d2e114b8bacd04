"""Cost accounting for TWN: parameter overhead and per-token FLOPs / KV bytes (nanochat-style estimates).

FLOPs are matmul FLOPs (2 per multiply-add) of the language model: projections and MLP
(`2 · N_linear`), attention scores and values (`4 · layers · heads · head_dim · context`) and the
LM head for decoded tokens. Vision-tower FLOPs depend on image size and are not included.
"""

from __future__ import annotations

import re


def _count(parameters) -> int:
    return sum(p.numel() for p in parameters)


def parameter_overhead(model) -> dict:
    """Parameter counts of the four TWN parts and their total as a fraction of the backbone."""
    config = model.config
    backbone = _count(p for n, p in model.backbone.named_parameters() if "lora_" not in n)
    reasoning = _count(model.adapter_parameters(config.reasoning_adapter))
    embedding = _count(model.adapter_parameters(config.embedding_adapter))
    queries = model.queries.numel()
    gate = _count(model.gate.parameters())
    added = reasoning + embedding + queries + gate
    return {
        "backbone_params": backbone,
        "reasoning_adapter": reasoning,
        "embedding_adapter": embedding,
        "queries": queries,
        "gate": gate,
        "added": added,
        "overhead_fraction": added / backbone,
    }


def _text_linear_params(text_config) -> int:
    """Weights of the per-layer projections and MLP of the language model."""
    hidden = text_config.hidden_size
    head_dim = getattr(text_config, "head_dim", None) or hidden // text_config.num_attention_heads
    q = text_config.num_attention_heads * head_dim
    kv = text_config.num_key_value_heads * head_dim
    attention = hidden * q + 2 * hidden * kv + q * hidden
    mlp = 3 * hidden * text_config.intermediate_size
    return text_config.num_hidden_layers * (attention + mlp)


def _lora_params_per_adapter(config) -> int:
    """LoRA weights of one adapter, from the target regex and the language model's shapes."""
    text = config.text_config
    hidden = text.hidden_size
    head_dim = getattr(text, "head_dim", None) or hidden // text.num_attention_heads
    q = text.num_attention_heads * head_dim
    kv = text.num_key_value_heads * head_dim
    shapes = {
        "q_proj": (hidden, q), "k_proj": (hidden, kv), "v_proj": (hidden, kv), "o_proj": (q, hidden),
        "gate_proj": (hidden, text.intermediate_size), "up_proj": (hidden, text.intermediate_size),
        "down_proj": (text.intermediate_size, hidden),
    }
    pattern = re.compile(config.lora_target_modules)
    per_layer = sum(
        config.lora_r * (n_in + n_out)
        for name, (n_in, n_out) in shapes.items()
        if pattern.fullmatch(f"model.language_model.layers.0.x.{name}")
    )
    return text.num_hidden_layers * per_layer


def cost_report(config, context_length: int = 1024, bytes_per_element: int = 2) -> dict:
    """Per-token cost estimates of the language model at a given context length.

    prefill_flops_per_token: average over a causal prefill of `context_length` tokens (mean context
        L/2) with one LoRA adapter active.
    decode_flops_per_token: one decoded token attending to `context_length` cached tokens, LM head included.
    query_flops_per_input: the K query tokens appended after a `context_length`-token input.
    kv_bytes_per_token: K and V across all layers.
    """
    text = config.text_config
    hidden = text.hidden_size
    head_dim = getattr(text, "head_dim", None) or hidden // text.num_attention_heads
    linear = 2 * (_text_linear_params(text) + _lora_params_per_adapter(config))
    attention_per_context = 4 * text.num_hidden_layers * text.num_attention_heads * head_dim
    lm_head = 2 * hidden * text.vocab_size
    kv_bytes = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * bytes_per_element
    prefill = linear + attention_per_context * context_length / 2
    return {
        "context_length": context_length,
        "prefill_flops_per_token": prefill,
        "decode_flops_per_token": linear + attention_per_context * context_length + lm_head,
        "query_flops_per_input": config.num_queries * (linear + attention_per_context * context_length),
        "kv_bytes_per_token": kv_bytes,
        "lora_params_per_adapter": _lora_params_per_adapter(config),
    }
