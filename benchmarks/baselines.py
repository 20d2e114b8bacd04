"""The three ways others embed, run on the same inputs, prompts and backbone weights as TWN.

(a) `floor_encode`: the bare backbone (no adapters), one forward pass, last-token hidden state.
(b) `naive_encode`: TWN's two adapters without the shared cache: an embedding-adapter prefill of x
    (+ queries → e₀, gate), a reasoning-adapter prefill of x + decode → c, and an embedding-adapter
    prefill of x ⊕ c (+ queries → e₁). Three prefills per input.
(c) `generate_encode`: reasoning-embedder style (mteb's UME-R1 wrapper): one
    `generate(..., output_hidden_states=True, return_dict_in_generate=True)` per batch, the embedding
    read from the last generated step's last-layer hidden state. It runs on TWN's backbone with the
    reasoning adapter active, so its per-token compute equals TWN's decode.

Each function processes `items` (normalised `TWNInput`s) in batches, records per-batch latency and
named phases on `meter`, and returns the L2-normalised float32 embeddings.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from benchmarks.meter import synchronize


def _batches(items, batch_size):
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _vision(features: dict) -> dict:
    return {k: v for k, v in features.items() if k not in ("input_ids", "attention_mask")}


@torch.inference_mode()
def floor_encode(twn, floor, items, batch_size: int, meter) -> torch.Tensor:
    outputs = []
    for batch in _batches(items, batch_size):
        synchronize(meter.device)
        start = time.perf_counter()
        with meter.phase("features"):
            features = twn.prepare_features(batch)
        with meter.phase("prefill"):
            hidden = floor.model(
                input_ids=features["input_ids"], attention_mask=features["attention_mask"], use_cache=False,
                **_vision(features),
            ).last_hidden_state
        outputs.append(F.normalize(hidden[:, -1].float(), dim=-1))
        synchronize(meter.device)
        meter.batch_latency_s.append(time.perf_counter() - start)
    return torch.cat(outputs).cpu()


def adapter_prefill(twn, adapter: str, input_ids, attention_mask, **vision):
    """`TWNModel.prefill` with a chosen adapter (the naive pipeline prefills with both)."""
    twn.set_active_adapter(adapter)
    cache = twn.new_cache()
    rope_kwargs = {k: v for k, v in vision.items() if k not in ("pixel_values", "pixel_values_videos")}
    position_ids, rope_deltas = twn.backbone.model.get_rope_index(input_ids, attention_mask=attention_mask,
                                                                   **rope_kwargs)
    twn.backbone.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                       past_key_values=cache, use_cache=True, **vision)
    twn.set_active_adapter(twn.config.reasoning_adapter)
    return cache, attention_mask.sum(dim=1) + rope_deltas.reshape(-1).to(input_ids.device)


@torch.inference_mode()
def naive_encode(twn, items, batch_size: int, settings, meter) -> torch.Tensor:
    embedding_adapter = twn.config.embedding_adapter
    outputs = []
    for batch in _batches(items, batch_size):
        synchronize(meter.device)
        start = time.perf_counter()
        with meter.phase("features"):
            features = twn.prepare_features(batch)
        input_ids, attention_mask = features["input_ids"], features["attention_mask"]
        vision = _vision(features)
        with meter.phase("embedding_prefill_x"):
            cache, positions = adapter_prefill(twn, embedding_adapter, input_ids, attention_mask, **vision)
        with meter.phase("queries"):
            states = twn.query_states(cache, attention_mask, positions)
        with meter.phase("gate"):
            torch.sigmoid(twn.gate(states).float())
        del cache
        with meter.phase("reasoning_prefill_x"):
            last_hidden, cache, positions = twn.prefill(input_ids, attention_mask, **dict(vision))
        with meter.phase("decode"):
            result = twn.think(cache, attention_mask, positions, last_hidden, settings)
        del cache
        vision_xc = dict(vision)
        vision_xc["mm_token_type_ids"] = torch.cat(
            [vision["mm_token_type_ids"], torch.zeros_like(result.tokens)], dim=1)
        input_ids_xc = torch.cat([input_ids, result.tokens], dim=1)
        with meter.phase("embedding_prefill_x_c"):
            cache, positions = adapter_prefill(twn, embedding_adapter, input_ids_xc, result.attention_mask, **vision_xc)
        with meter.phase("queries"):
            states = twn.query_states(cache, result.attention_mask, positions)
        outputs.append(twn.pool(states))
        synchronize(meter.device)
        meter.batch_latency_s.append(time.perf_counter() - start)
    return torch.cat(outputs).cpu()


@torch.inference_mode()
def generate_encode(twn, items, batch_size: int, cot_tokens: int, meter) -> torch.Tensor:
    twn.set_active_adapter(twn.config.reasoning_adapter)
    tokenizer = twn.processor.tokenizer
    outputs = []
    for batch in _batches(items, batch_size):
        synchronize(meter.device)
        start = time.perf_counter()
        with meter.phase("features"):
            features = twn.prepare_features(batch)
        with meter.phase("generate"):
            output = twn.backbone.generate(
                **features,
                max_new_tokens=cot_tokens,
                min_new_tokens=cot_tokens,
                do_sample=False,
                output_hidden_states=True,
                return_dict_in_generate=True,
                use_cache=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=twn.stop_token_ids(),
            )
        # As mteb's UME-R1 wrapper: the last step's last-layer state (no <gen_emb> token in this vocabulary).
        outputs.append(F.normalize(output.hidden_states[-1][-1][:, -1].float(), dim=-1))
        del output
        synchronize(meter.device)
        meter.batch_latency_s.append(time.perf_counter() - start)
    return torch.cat(outputs).cpu()
