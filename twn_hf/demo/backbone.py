"""Stage 0 of TWN-Digits: a small Qwen3-VL-architecture backbone trained from scratch on CPU.

No pretrained VLM can be downloaded here, so the demo trains its own stand-in: a Qwen3-VL model
with a 128-wide, 4-layer language model and a 2-block vision tower, and a byte-level BPE trained
on the demo's vocabulary. Its "pretraining" teaches what a real VLM would bring: reading a
handwritten digit ("This is a four."), arithmetic facts ("Four plus three is seven.") and worked
chains of thought on the training split's queries, in the prompt format TWN uses. (A first
version left the chains to stage `sft` alone; a rank-16 LoRA on this 4-layer model then
recognised digits but did not learn to copy and compose the operations in 300 steps.)
"""

from __future__ import annotations

import logging
import math
import random
import time

import torch

from twn_hf.demo.digits import INSTRUCTIONS, Op, number_word
from twn_hf.modeling.configuration_twn import DEFAULT_EMBED_INSTRUCTION, DEFAULT_THINK_PROMPT
from twn_hf.testing import tiny_backbone_config, tiny_processor

logger = logging.getLogger(__name__)

FAMILY = "qwen3_vl"
THINK_PROMPT = "Think step by step."
RECOGNITION_PROMPT = "What digit is this?"
TEXT_TOWER = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2)
VISION_TOWER = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=2)
VOCAB_SIZE = 512


def arithmetic_facts() -> list[str]:
    """Every single step the benchmark's chains use, as sentences: "Four plus three is seven."."""
    facts = []
    for x in range(100):
        for op in [Op("plus", k) for k in range(1, 6)] + [Op("minus", k) for k in range(1, 6)] + \
                  [Op("times", k) for k in (2, 3)]:
            y = op.apply(x)
            if 0 <= y < 100:
                facts.append(f"{number_word(x).capitalize()} {op.phrase()} is {number_word(y)}.")
    return facts


def tokenizer_corpus() -> str:
    """Text the demo tokenizer is trained on: every word and phrase the benchmark uses."""
    lines = [number_word(n) for n in range(100)]
    lines += list(INSTRUCTIONS.values()) + [THINK_PROMPT, RECOGNITION_PROMPT, DEFAULT_EMBED_INSTRUCTION,
                                             DEFAULT_THINK_PROMPT]
    lines += ["This is a four. The answer is four.", "Start from eight.", "The digit is two.",
              "this digit plus three, times two", "a digit equal to fifteen minus eight",
              "the digit you get from this one minus two", "a handwritten seven", "user assistant"]
    lines += arithmetic_facts()
    return "\n".join(lines)


def demo_processor():
    return tiny_processor(FAMILY, corpus=tokenizer_corpus(), vocab_size=VOCAB_SIZE)


def demo_backbone_config(processor):
    return tiny_backbone_config(FAMILY, text_overrides=TEXT_TOWER, vision_overrides=VISION_TOWER,
                                tokenizer=processor.tokenizer)


def _chat(processor, content: list[dict]) -> str:
    return processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=True)


def pretraining_examples(images, labels, train_indices, processor, queries=()) -> list[tuple[str, list, str]]:
    """(prompt, images, target) triples: digit recognition on the training images, arithmetic facts, and the
    teacher CoTs of `queries` (training-split queries) in TWN's own prompt format."""
    from twn_hf.demo.rows import query_input
    from twn_hf.modeling.inputs_twn import TWNInput, build_messages

    examples = []
    for query in queries:
        item = query_input(query, _ImageTable(images))
        twn_input = TWNInput(text=item.get("text"), images=[item["image"]] if "image" in item else [],
                             instruction=item["instruction"])
        prompt = processor.apply_chat_template(build_messages(twn_input, DEFAULT_EMBED_INSTRUCTION, THINK_PROMPT),
                                               tokenize=False, add_generation_prompt=True)
        examples.append((prompt, twn_input.images, query.cot))
    for index in train_indices:
        prompt = _chat(processor, [{"type": "image"}, {"type": "text", "text": RECOGNITION_PROMPT}])
        examples.append((prompt, [images[index]], f"This is a {number_word(int(labels[index]))}."))
    prompt = _chat(processor, [{"type": "text", "text": "Arithmetic."}])
    examples += [(prompt, [], fact) for fact in arithmetic_facts()]
    return examples


class _ImageTable:
    """Adapts a plain image list to the `data.images` lookups of `query_input`."""

    def __init__(self, images):
        self.images = images


def _batch(processor, examples, eos: str):
    texts = [prompt + target + eos for prompt, _, target in examples]
    images = [image for _, imgs, _ in examples for image in imgs]
    features = processor(text=texts, images=images or None, padding=True, padding_side="left", return_tensors="pt")
    labels = torch.full_like(features["input_ids"], -100)
    for row, (_, _, target) in enumerate(examples):
        n = len(processor.tokenizer(target + eos, add_special_tokens=False)["input_ids"])
        labels[row, -n:] = features["input_ids"][row, -n:]
    features["labels"] = labels
    return features


def pretrain_backbone(images, labels, train_indices, seed: int = 0, steps: int = 600, batch_size: int = 32,
                      lr: float = 3e-3, queries=()):
    """Train the demo backbone from scratch (all weights) with LM loss on the targets; returns (model, processor, log)."""
    from transformers import AutoModelForImageTextToText

    processor = demo_processor()
    config = demo_backbone_config(processor)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config)
    model.train()
    examples = pretraining_examples(images, labels, train_indices, processor, queries)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    eos = processor.tokenizer.eos_token
    log, started = [], time.perf_counter()
    for step in range(steps):
        batch = _batch(processor, rng.sample(examples, batch_size), eos)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        log.append(float(loss.detach()))
        if step % 50 == 0 or step == steps - 1:
            logger.info("stage 0 step %d/%d loss %.4f (%.0f s)", step + 1, steps, loss, time.perf_counter() - started)
    return model.eval(), processor, log
