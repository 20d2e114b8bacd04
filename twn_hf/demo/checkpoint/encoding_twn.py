"""`TWNModel.encode`: batched inference with think modes `never`, `always` and `auto`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .cot_cache_twn import CachedCoT, open_cot_cache
from .decoding_twn import GenerationSettings, fork_cache, text_positions
from .inputs_twn import TWNInput, build_messages, normalize_inputs

logger = logging.getLogger(__name__)

THINK_MODES = ("auto", "always", "never")


@dataclass
class EncodeDetail:
    """What happened to one input in `encode(..., return_details=True)`."""

    thought: bool
    gate_probability: float
    cot: str | None
    tokens_generated: int
    cot_cached: bool = False  # the CoT came from `cot_cache` (fed as one chunk, not decoded)


class TWNEncodeMixin:
    def check_think_args(self, think: str, threshold: float | None) -> float:
        if think not in THINK_MODES:
            raise ValueError(f"think must be one of {THINK_MODES}, got {think!r}")
        threshold = self.config.think_threshold if threshold is None else threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
            raise TypeError(f"threshold must be a number in [0, 1], got {type(threshold).__name__}")
        if not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        return float(threshold)

    def prepare_features(self, items: list[TWNInput], cots: list[str | None] | None = None) -> dict:
        """Chat-template and process a batch of normalised inputs (left padded) into model features.

        With `cots`, row i becomes `x ⊕ c_i ⊕ <stop>` (the think view used in training) and the features
        gain `labels`: the CoT and stop tokens, -100 elsewhere. A `None` CoT leaves the row as `x`
        with all labels -100.
        """
        processor = self.processor
        tokenizer = processor.tokenizer
        texts = [
            processor.apply_chat_template(
                build_messages(item, self.config.embed_instruction, self.config.think_prompt),
                tokenize=False,
                add_generation_prompt=True,
            )
            for item in items
        ]
        targets: list[list[int]] = [[] for _ in items]
        if cots is not None:
            if len(cots) != len(items):
                raise ValueError(f"got {len(cots)} CoTs for {len(items)} inputs")
            stop = tokenizer.eos_token or "<|im_end|>"  # what the chat template closes a turn with
            for i, cot in enumerate(cots):
                if cot is not None:
                    texts[i] += cot + stop
                    targets[i] = tokenizer(cot + stop, add_special_tokens=False)["input_ids"]
        images = [image for item in items for image in item.images]
        videos = [item.video for item in items if item.video is not None]
        # Left padding keeps every row's last input token at the same index, where decoding starts.
        kwargs = {"text": texts, "padding": True, "padding_side": "left", "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        if videos:
            kwargs["videos"] = videos
            # Frames are chosen by the caller, not re-sampled; the frame rate only sets Qwen3-VL's timestamps.
            kwargs["do_sample_frames"] = False
            kwargs["video_metadata"] = [
                {"total_num_frames": len(v), "fps": self.config.video_fps, "frames_indices": list(range(len(v)))}
                for v in videos
            ]
        features = processor(**kwargs)
        features.pop("token_type_ids", None)
        if "mm_token_type_ids" not in features:
            raise ValueError("the processor did not return mm_token_type_ids, which Qwen-VL positions need")
        if cots is not None:
            features["labels"] = self._cot_labels(features["input_ids"], targets)
        return {key: value.to(self.device) if hasattr(value, "to") else value for key, value in features.items()}

    @staticmethod
    def _cot_labels(input_ids: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
        """-100 everywhere but the CoT tail of each (left-padded) row, which must match its tokenisation."""
        labels = torch.full_like(input_ids, -100)
        for row, target in enumerate(targets):
            if not target:
                continue
            tail = input_ids[row, -len(target):].tolist()
            if tail != target:
                raise ValueError(f"input {row}: the CoT does not tokenise the same after the prompt")
            labels[row, -len(target):] = input_ids[row, -len(target):]
        return labels

    @torch.inference_mode()
    def encode(
        self,
        inputs,
        think: str = "auto",
        threshold: float | None = None,
        batch_size: int = 8,
        return_details: bool = False,
        convert_to_numpy: bool = False,
        show_progress_bar: bool = False,
        max_think_tokens: int | None = None,
        generation: GenerationSettings | None = None,
        cot_cache=None,
        think_mask=None,
    ):
        """Embed texts, images, text+image pairs and videos, thinking where the mode says so.

        Args:
            inputs: a string, a path to an image, a PIL image, a dict with `text` and/or `image` /
                `images` / `video` (a list of frames) and an optional `instruction`, or a list of these.
            think: "never" (no CoT, e₀), "always" (CoT for every input, e₁) or "auto" (CoT where the
                gate's p(think) >= threshold).
            threshold: gate threshold for "auto"; the config's `think_threshold` when None.
            batch_size: inputs per prefill batch.
            return_details: also return one `EncodeDetail` per input.
            convert_to_numpy: a numpy array instead of a torch tensor.
            max_think_tokens / generation: override the CoT length cap / decoding settings (greedy by default).
            cot_cache: a path to an SQLite file or a `CoTCache` (see `cot_cache_twn`). CoTs found there are
                not decoded again: their tokens are fed through the KV cache after the prefill as one
                teacher-forced chunk (the input is still prefilled once); new CoTs are stored.
            think_mask: forced routing for "auto" (benchmarks, ablations): one bool per input that replaces
                the gate's decision; the gate still runs and its probabilities are still reported.

        Returns:
            (N, d) float32 L2-normalised embeddings ((d,) for a single non-list input), and the details
            list when `return_details`.
        """
        threshold = self.check_think_args(think, threshold)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self.processor is None:
            raise ValueError("this TWNModel has no processor attached; set `model.processor` first")
        single = not isinstance(inputs, (list, tuple))
        items = normalize_inputs(inputs, self.config.max_image_pixels)  # raises before any model work
        settings = generation or GenerationSettings(max_new_tokens=max_think_tokens or self.config.max_think_tokens)
        think_mask = self._check_think_mask(think_mask, think, len(items))
        cache, owned_cache = open_cot_cache(cot_cache)

        was_training = self.training
        self.eval()
        batches = range(0, len(items), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Encoding", unit="batch")
        embeddings, details = [], []
        try:
            session = cache.session(self, settings) if cache is not None else None
            for start in batches:
                extra = {}
                if session is not None:
                    extra["cot_session"] = session
                if think_mask is not None:
                    extra["think_mask"] = think_mask[start : start + batch_size]
                batch_embeddings, batch_details = self._encode_batch(
                    items[start : start + batch_size], think, threshold, settings, **extra
                )
                embeddings.append(batch_embeddings)
                details.extend(batch_details)
        finally:
            self.train(was_training)
            if owned_cache:
                cache.close()
        result = torch.cat(embeddings).cpu()
        if single:
            result = result[0]
        if convert_to_numpy:
            result = result.numpy()
        return (result, details) if return_details else result

    @staticmethod
    def _check_think_mask(think_mask, think: str, n: int) -> list[bool] | None:
        if think_mask is None:
            return None
        if think != "auto":
            raise ValueError(f"think_mask forces the routing of think='auto'; got think={think!r}")
        mask = think_mask.tolist() if hasattr(think_mask, "tolist") else list(think_mask)
        if len(mask) != n:
            raise ValueError(f"think_mask has {len(mask)} entries for {n} inputs")
        return [bool(value) for value in mask]

    def _encode_batch(
        self, items, think: str, threshold: float, settings: GenerationSettings, cot_session=None, think_mask=None
    ):
        features = self.prepare_features(items)
        input_ids = features.pop("input_ids")
        attention_mask = features.pop("attention_mask")
        last_hidden, cache, next_positions = self.prefill(input_ids, attention_mask, **features)
        states = self.query_states(cache, attention_mask, next_positions)
        embeddings = self.pool(states)
        probabilities = torch.sigmoid(self.gate(states).float())

        if think == "always":
            thinks = torch.ones_like(probabilities, dtype=torch.bool)
        elif think == "never":
            thinks = torch.zeros_like(probabilities, dtype=torch.bool)
        elif think_mask is not None:
            thinks = torch.tensor(think_mask, dtype=torch.bool, device=probabilities.device)
        else:
            thinks = probabilities >= threshold

        cots: list[str | None] = [None] * len(items)
        counts = [0] * len(items)
        from_cache = [False] * len(items)
        rows = thinks.nonzero().flatten()
        hits: dict[int, CachedCoT] = {}
        keys: dict[int, str] = {}
        if len(rows) > 0 and cot_session is not None:
            keys = self._cot_keys(items, rows.tolist(), cot_session)
            found = cot_session.lookup(list(keys.values()))
            hits = {row: found[key] for row, key in keys.items() if key in found}
        if hits:
            miss_rows = [row for row in rows.tolist() if row not in hits]
            groups = ([miss_rows] if miss_rows else []) + [sorted(hits)]
            for number, group in enumerate(groups):
                # The last group takes the prefill cache itself; any other continues from a fork of it.
                group_cache = cache if number == len(groups) - 1 else fork_cache(cache, detach=False)
                index = torch.tensor(group, dtype=torch.long, device=attention_mask.device)
                if len(group) < len(items):
                    group_cache.batch_select_indices(index)
                if group[0] in hits:
                    mask, positions = self._feed_cot(
                        group_cache, attention_mask[index], next_positions[index], [hits[row].tokens for row in group]
                    )
                    for row in group:
                        cots[row], counts[row], from_cache[row] = hits[row].text, len(hits[row].tokens), True
                else:
                    mask, positions = self._think_rows(
                        group_cache, group, index, attention_mask, next_positions, last_hidden, settings,
                        cots, counts, keys, cot_session,
                    )
                embeddings[index] = self.pool(self.query_states(group_cache, mask, positions))
        elif len(rows) > 0:
            if len(rows) < len(items):
                cache.batch_select_indices(rows)
            mask, positions = self._think_rows(
                cache, rows.tolist(), rows, attention_mask, next_positions, last_hidden, settings,
                cots, counts, keys, cot_session,
            )
            think_states = self.query_states(cache, mask, positions)
            embeddings[rows] = self.pool(think_states)
        details = [
            EncodeDetail(bool(thinks[i]), float(probabilities[i]), cots[i], counts[i], from_cache[i])
            for i in range(len(items))
        ]
        return embeddings, details

    def _think_rows(self, cache, rows, index, attention_mask, next_positions, last_hidden, settings,
                    cots, counts, keys, cot_session):
        """Decode the CoT of `rows` (the rows `cache` holds), fill `cots` / `counts`, store new CoTs."""
        result = self.think(cache, attention_mask[index], next_positions[index], last_hidden[index], settings)
        tokenizer = self.processor.tokenizer
        new_entries = {}
        for local, row in enumerate(rows):
            n = int(result.num_tokens[local])
            tokens = result.tokens[local, :n]
            cots[row] = tokenizer.decode(tokens, skip_special_tokens=True)
            counts[row] = n
            if cot_session is not None:
                new_entries[keys[row]] = CachedCoT(tuple(tokens.tolist()), cots[row])
        if cot_session is not None:
            cot_session.store(new_entries)
        return result.attention_mask, result.next_positions

    def _cot_keys(self, items, rows: list[int], cot_session) -> dict[int, str]:
        """Cache keys of `rows`: the chat-templated prompt plus the input's pixels, in the session's context."""
        keys = {}
        for row in rows:
            prompt = self.processor.apply_chat_template(
                build_messages(items[row], self.config.embed_instruction, self.config.think_prompt),
                tokenize=False,
                add_generation_prompt=True,
            )
            keys[row] = cot_session.key(prompt, items[row])
        return keys

    def _feed_cot(self, cache, attention_mask, next_positions, token_lists):
        """Teacher-force known CoT tokens after the prefill in one chunk (reasoning adapter).

        Rows are right-padded to the longest CoT with masked pad tokens, exactly as `decode` leaves
        rows that stopped early, so the cache, mask and positions afterwards match a decode that
        produced these tokens. Returns (attention_mask over x ⊕ c, next text positions).
        """
        lengths = torch.tensor([len(t) for t in token_lists], dtype=torch.long, device=attention_mask.device)
        width = int(lengths.max()) if len(token_lists) else 0
        if width == 0:
            return attention_mask, next_positions
        tokenizer = self.processor.tokenizer
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        tokens = torch.full((len(token_lists), width), pad, dtype=torch.long, device=attention_mask.device)
        for row, ids in enumerate(token_lists):
            tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        chunk_mask = (torch.arange(width, device=attention_mask.device)[None, :] < lengths[:, None]).to(attention_mask.dtype)
        mask = torch.cat([attention_mask, chunk_mask], dim=1)
        self.set_active_adapter(self.config.reasoning_adapter)
        self._language_model()(
            input_ids=tokens,
            attention_mask=mask,
            position_ids=text_positions(next_positions, width),
            past_key_values=cache,
            use_cache=True,
        )
        return mask, next_positions + lengths
