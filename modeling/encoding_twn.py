"""`TWNModel.encode`: batched inference with think modes `never`, `always` and `auto`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .decoding_twn import GenerationSettings
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

        was_training = self.training
        self.eval()
        batches = range(0, len(items), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="Encoding", unit="batch")
        embeddings, details = [], []
        try:
            for start in batches:
                batch_embeddings, batch_details = self._encode_batch(items[start : start + batch_size], think, threshold, settings)
                embeddings.append(batch_embeddings)
                details.extend(batch_details)
        finally:
            self.train(was_training)
        result = torch.cat(embeddings).cpu()
        if single:
            result = result[0]
        if convert_to_numpy:
            result = result.numpy()
        return (result, details) if return_details else result

    def _encode_batch(self, items, think: str, threshold: float, settings: GenerationSettings):
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
        else:
            thinks = probabilities >= threshold

        cots: list[str | None] = [None] * len(items)
        counts = [0] * len(items)
        rows = thinks.nonzero().flatten()
        if len(rows) > 0:
            if len(rows) < len(items):
                cache.batch_select_indices(rows)
            result = self.think(
                cache, attention_mask[rows], next_positions[rows], last_hidden[rows], settings
            )
            think_states = self.query_states(cache, result.attention_mask, result.next_positions)
            embeddings[rows] = self.pool(think_states)
            tokenizer = self.processor.tokenizer
            for local, row in enumerate(rows.tolist()):
                n = int(result.num_tokens[local])
                cots[row] = tokenizer.decode(result.tokens[local, :n], skip_special_tokens=True)
                counts[row] = n
        details = [
            EncodeDetail(bool(thinks[i]), float(probabilities[i]), cots[i], counts[i]) for i in range(len(items))
        ]
        return embeddings, details
