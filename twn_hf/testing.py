"""Tiny, offline Qwen-VL backbones for tests.

Every test of the project needs a Qwen-VL backbone and its processor, but real checkpoints are gigabytes and the test
environment has no network. This module builds, entirely in code and in well under a second, a *tiny random* model of
each supported family together with a working processor:

* ``tiny_processor(family)``: the family's processor class (``Qwen3VLProcessor`` / ``Qwen2_5_VLProcessor`` /
  ``Qwen2VLProcessor``) around a byte-level BPE tokenizer trained on a fixed in-module corpus (deterministic; byte-level
  so any text tokenizes with no unknowns), the real Qwen special tokens, a Qwen-style chat template, and image/video
  processors with tiny pixel budgets (a 56x56 image gives 4 visual tokens).
* ``tiny_backbone_config(family)`` / ``tiny_backbone(family, seed)``: a 2-layer, 64-wide text model with a 2-block
  vision tower whose special-token ids and vocabulary match ``tiny_processor(family)``.
* ``real_backbone_config(name)`` / ``meta_backbone(name)``: the published configs of real checkpoints (JSON files in
  ``twn_hf/backbone_configs``) and full-size models on the ``meta`` device, for shape / parameter-count reasoning
  with no memory and no download.

Processor usage (transformers 5.23)::

    prompts = [processor.apply_chat_template(conversation, add_generation_prompt=False) for conversation in batch]
    inputs = processor(text=prompts, images=images or None, videos=videos or None, padding=True, return_tensors="pt")
    outputs = model(**inputs)

``images`` is a flat list with one entry per image placeholder in the batch, in order (text-only prompts contribute
none); ``videos`` likewise, each video being a list of PIL frames. The processor always
returns ``mm_token_type_ids`` (these processor classes set ``return_mm_token_type_ids = True``), which the Qwen-VL
forward needs to place the visual features.

Videos given as frame lists have no frame rate. Their frames cannot be re-sampled (transformers refuses to sample a
list of images), so the video processors are built with ``do_sample_frames=False``: every given frame is used. The
frame rate only matters for Qwen3-VL's timestamp text (``<0.2 seconds>`` before each frame pair) and Qwen2.5-VL's
``second_per_grid_ts``; without metadata both assume 24 fps (Qwen3-VL logs a one-time warning). To state it, pass
``video_metadata=[{"total_num_frames": n, "fps": fps, "frames_indices": list(range(n))}]`` (one dict per video) to the
processor call; ``frames_indices`` is required by Qwen3-VL when metadata is given.
"""

from __future__ import annotations

import functools
import importlib.resources
import json

import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import (
    CONFIG_MAPPING,
    AutoModelForImageTextToText,
    PreTrainedConfig,
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

__all__ = [
    "FAMILIES",
    "tiny_processor",
    "tiny_backbone_config",
    "tiny_backbone",
    "real_backbone_config",
    "meta_backbone",
    "tiny_twn",
]

FAMILIES: tuple[str, ...] = ("qwen3_vl", "qwen2_5_vl", "qwen2_vl")
"""Supported families, spelled as transformers ``model_type`` values."""

# Batch invariance with left padding holds for both "sdpa" and "eager" here (a prompt's last hidden states alone vs.
# left-padded in a batch differ by ~1e-6 in float32 for every family; fully masked padding rows stay finite). Eager is
# chosen because it is the reference implementation (tiny-model numbers do not depend on which SDPA kernel torch
# picks) and the only one that can return attention weights (``output_attentions=True``).
_ATTN_IMPLEMENTATION = "eager"

_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
_BPE_VOCAB_SIZE = 640  # learned vocabulary (256 byte symbols + merges); the special tokens come after it, as in Qwen

# A fixed English corpus: the merges only decide how *efficiently* text is split; byte-level BPE encodes any text.
_CORPUS = """\
A photo of a dog running on the beach at sunset. Two cats are sleeping on a red sofa near the window.
The quick brown fox jumps over the lazy dog. A man is riding a bicycle down a busy city street.
Represent the given image for retrieval. Retrieve images that match the following description.
Find a video that shows a person cooking pasta in a small kitchen. What is shown in this picture?
Question: how many people are standing in front of the building? Answer: there are 3 people.
The train leaves at 10:45 and arrives at 14:30, a journey of 3 hours and 45 minutes (about 230 km).
In 2024, the company reported revenue of $12.5 million, up 18% from the previous year.
Query: a diagram explaining the water cycle; Document: evaporation, condensation, precipitation, collection.
She said, "This is the best book I've read this year!" He replied: "I'm not so sure, but it's good."
The children were playing football in the park while their parents watched from the benches.
Instruction: given a search query, retrieve relevant passages that answer the query.
Mountains, rivers, forests and lakes: the landscape changes with every season of the year.
The model encodes text, images and videos into a shared embedding space for similarity search.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 3.14 2.718 -42 +7 50% #1 @home a/b c-d e_f [x] {y} <z> ~w | & * = ^
"""

_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' or 'image' in item or 'image_url' in item %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' or 'video' in item %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in item %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""Qwen-style ChatML template (like Qwen3-VL's: no default system prompt). Content is a string or a list of
``{"type": "text"|"image"|"video", ...}`` items; each image/video becomes one ``<|vision_start|><|image_pad|>
<|vision_end|>`` (resp. ``<|video_pad|>``) block that the processor expands to the right number of pad tokens."""

# Pixel budgets: factor = patch 14 * merge 2 = 28, so a 56x56 image is a 4x4 patch grid -> 4 visual tokens, and the
# largest image is 224x224 -> 64 tokens. Videos: the same budget per frame (Qwen3-VL: 16 frames' worth in total).
_PATCH, _MERGE, _TEMPORAL = 14, 2, 2
_MIN_PIXELS, _MAX_PIXELS = 56 * 56, 224 * 224

_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
)


@functools.lru_cache(maxsize=4)
def _bpe_vocab_and_merges(
    corpus: str = _CORPUS, vocab_size: int = _BPE_VOCAB_SIZE
) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    """Train the tiny byte-level BPE once per process (a few ms); deterministic for the fixed corpus.

    The pre-tokenization (Qwen's split regex, then byte-level mapping) is exactly the one ``Qwen2Tokenizer`` rebuilds
    from ``vocab``/``merges``, so the learned merges apply as trained.
    """
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus.splitlines(), trainer)
    model = json.loads(bpe.to_str())["model"]
    vocab = tuple(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
    merges = tuple(tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"])
    return vocab, merges


def _tiny_tokenizer(corpus: str = _CORPUS, vocab_size: int = _BPE_VOCAB_SIZE) -> Qwen2Tokenizer:
    """``Qwen2Tokenizer`` (the tokenizer class of all three families) over the tiny BPE, with the Qwen special tokens
    appended after the learned vocabulary (as in the real Qwen vocab), eos ``<|im_end|>``, pad ``<|endoftext|>``, no
    bos/unk, left padding."""
    vocab, merges = _bpe_vocab_and_merges(corpus, vocab_size)
    vocab = dict(vocab)
    for token in _SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=[t for t in _SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=_CHAT_TEMPLATE,
        model_max_length=32768,
    )


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")


def tiny_processor(family: str = "qwen3_vl", corpus: str | None = None, vocab_size: int | None = None) -> ProcessorMixin:
    """A fresh offline processor of ``family`` (see the module docstring for the call convention).

    Image processor: ``Qwen2VLImageProcessor`` (used by all three families) with ``min_pixels=56*56``,
    ``max_pixels=224*224``, patch 14, merge 2, temporal patch 2 (Qwen3-VL's real processor uses patch 16 and 0.5
    mean/std; the tiny one keeps patch 14 for all families so that sizes are comparable, but keeps Qwen3-VL's
    normalization). Video processor: the family's (``Qwen3VLVideoProcessor`` or ``Qwen2VLVideoProcessor``) with the
    same per-frame budget, ``do_sample_frames=False`` and ``cap_pixels_per_frame=True`` (see the module docstring).
    """
    _check_family(family)
    processor_classes = {"qwen3_vl": Qwen3VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor, "qwen2_vl": Qwen2VLProcessor}
    size = {"shortest_edge": _MIN_PIXELS, "longest_edge": _MAX_PIXELS}
    common = dict(patch_size=_PATCH, temporal_patch_size=_TEMPORAL, merge_size=_MERGE)
    norm = dict(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]) if family == "qwen3_vl" else {}
    image_processor = Qwen2VLImageProcessor(size=size, **common, **norm)
    # Frames come as PIL lists, which transformers refuses to sample from; the qwen-vl-utils per-frame pixel cap is
    # opted into explicitly (leaving it unset makes every video call warn about the changing default).
    video_kwargs = dict(do_sample_frames=False, cap_pixels_per_frame=True)
    if family == "qwen3_vl":
        # Qwen3-VL's video budget counts all frames together (t * h * w); allow 16 frames at the image budget.
        video_size = {"shortest_edge": _MIN_PIXELS, "longest_edge": 16 * _MAX_PIXELS}
        video_processor = Qwen3VLVideoProcessor(size=video_size, **video_kwargs, **common, **norm)
    else:
        video_processor = Qwen2VLVideoProcessor(size=size, **video_kwargs, **common)
    return processor_classes[family](
        image_processor=image_processor,
        tokenizer=_tiny_tokenizer(corpus or _CORPUS, vocab_size or _BPE_VOCAB_SIZE),
        video_processor=video_processor,
        chat_template=_CHAT_TEMPLATE,
    )


def tiny_backbone_config(
    family: str = "qwen3_vl",
    vocab_size: int | None = None,
    text_overrides: dict | None = None,
    vision_overrides: dict | None = None,
    tokenizer=None,
) -> PreTrainedConfig:
    """The composite config of a tiny ``family`` model matching ``tiny_processor(family)``.

    Text: hidden 64, 2 layers, 4 heads / 2 kv heads, head_dim 16, intermediate 128, M-RoPE sections summing to 8
    (= head_dim / 2; interleaved for Qwen3-VL like the real model). Vision: 2 blocks, patch 14, merge 2, temporal
    patch 2, output width 64 (= text hidden). Token ids come from the tiny tokenizer; ``vocab_size`` defaults to
    ``len(tokenizer)`` and may be larger (e.g. room for added tokens). Untied embeddings, eager attention (see
    ``_ATTN_IMPLEMENTATION``). `text_overrides` / `vision_overrides` resize the towers (the M-RoPE sections follow
    the head size) and `tokenizer` supplies the special-token ids and vocabulary (default: the tiny tokenizer):
    the TWN-Digits demo builds its from-scratch backbone this way.
    """
    _check_family(family)
    tokenizer = tokenizer or _tiny_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in _SPECIAL_TOKENS}
    n_tokens = len(tokenizer)
    if vocab_size is None:
        vocab_size = n_tokens
    elif vocab_size < n_tokens:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the tokenizer ({n_tokens} tokens)")
    text_settings = {**_TEXT, **(text_overrides or {})}
    hidden = text_settings["hidden_size"]
    text = dict(
        text_settings,
        vocab_size=vocab_size,
        bos_token_id=ids["<|endoftext|>"],  # as in the real configs: bos = <|endoftext|> (the tokenizer adds none)
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    vision = dict(patch_size=_PATCH, spatial_merge_size=_MERGE, temporal_patch_size=_TEMPORAL, in_channels=3, depth=2)
    head_dim = hidden // text_settings["num_attention_heads"]
    if family == "qwen3_vl":
        text.update(
            head_dim=head_dim,
            rope_parameters={"rope_type": "default", "rope_theta": 5_000_000.0,
                             "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8], "mrope_interleaved": True},
        )
        vision.update(hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                      num_position_embeddings=256, deepstack_visual_indexes=[0, 1])
    else:
        sections = [head_dim // 8, 3 * head_dim // 16, 3 * head_dim // 16]  # [2, 3, 3] for head_dim 16
        text.update(rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": sections})
        if family == "qwen2_5_vl":
            vision.update(hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=hidden,
                          window_size=56, fullatt_block_indexes=[1], tokens_per_second=2)
        else:  # Qwen2-VL: embed_dim is the tower width, hidden_size the merger output (= text hidden)
            vision.update(embed_dim=32, mlp_ratio=2, num_heads=2, hidden_size=hidden)
    vision.update(vision_overrides or {})
    config = CONFIG_MAPPING[family](
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config._attn_implementation = _ATTN_IMPLEMENTATION
    return config


def tiny_backbone(
    family: str = "qwen3_vl", seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """``(model, processor)``: a tiny random ``family`` model in eval mode and its matching ``tiny_processor``.

    Weights are a pure function of ``seed``: they are drawn under ``torch.manual_seed(seed)`` inside
    ``torch.random.fork_rng`` so the caller's global RNG state is left untouched.
    """
    config = tiny_backbone_config(family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model.eval(), tiny_processor(family)


def _real_config_file(name: str) -> str:
    """``"Qwen/Qwen3-VL-4B-Instruct"`` -> ``"qwen3-vl-4b-instruct.json"``."""
    return name.rsplit("/", 1)[-1].lower() + ".json"


def real_backbone_config(name: str) -> PreTrainedConfig:
    """The published config of checkpoint ``name`` (e.g. ``"Qwen/Qwen3-VL-4B-Instruct"``), read from the JSON copy in
    ``twn_hf/backbone_configs`` (no network). Each file records where its values come from under ``"_source"``."""
    folder = importlib.resources.files(__package__ or "twn_hf").joinpath("backbone_configs")
    path = folder.joinpath(_real_config_file(name))
    if not path.is_file():
        known = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
        raise ValueError(f"no stored config for {name!r}; stored: {known}")
    data = json.loads(path.read_text(encoding="utf-8"))
    config = CONFIG_MAPPING[data["model_type"]].from_dict(data)
    config._name_or_path = name
    return config


def meta_backbone(name: str) -> PreTrainedModel:
    """The full-size ``name`` backbone built on the ``meta`` device: real shapes and parameter counts, no memory."""
    config = real_backbone_config(name)
    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config)


def tiny_twn(family: str = "qwen3_vl", seed: int = 0, **config_kwargs):
    """A tiny TWN on ``tiny_backbone(family, seed)`` whose parts all matter, for tests.

    Fresh LoRA adapters start as the identity (``lora_B = 0``) and a fresh gate sits near p = 0.5, which
    would make the two adapters indistinguishable and every gate test vacuous. So the LoRA ``B`` matrices
    and the gate are re-drawn with a seeded generator: the reasoning and embedding paths differ, CoTs
    differ between inputs, and gate probabilities spread on both sides of 0.5.
    """
    from twn_hf.build import build_twn

    backbone, processor = tiny_backbone(family, seed=seed)
    settings = dict(lora_r=4, lora_alpha=8, num_queries=2, gate_hidden_size=16, max_think_tokens=6,
                    max_image_pixels=112 * 112)
    settings.update(config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_twn(backbone, processor=processor, **settings)
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, parameter in model.backbone.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
            for parameter in model.gate.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 2.0)
    return model.eval()
