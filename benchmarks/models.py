"""Build the benchmark's models from a config file: a random Qwen3-VL-shaped backbone, its processor, a TWN.

The processor uses the offline tokenizer of `twn_hf.testing` (byte-level BPE with the Qwen special
tokens) and image/video processors whose patch size matches the config's vision tower, so the real
4B shapes run with no download. Special-token ids in the backbone config are taken from that
tokenizer; the vocabulary size stays the config's (the LM head keeps its real cost).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from transformers import CONFIG_MAPPING, AutoModelForImageTextToText, Qwen2VLImageProcessor, Qwen3VLProcessor
from transformers import Qwen3VLVideoProcessor

from twn_hf.build import build_twn
from twn_hf.testing import real_backbone_config, tiny_processor

CONFIG_DIR = Path(__file__).parent / "configs"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def load_config(name_or_path: str | Path) -> dict:
    """A benchmark config: a path, or the name of a file in `benchmarks/configs` (without `.json`)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.json"))
        raise FileNotFoundError(f"no benchmark config {name_or_path!r}; known: {known}")
    config = json.loads(path.read_text(encoding="utf-8"))
    config["_path"] = str(path)
    return config


def _special_ids(tokenizer) -> dict:
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
           ("<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    return ids


def build_processor(config: dict, backbone_config) -> Qwen3VLProcessor:
    """A Qwen3-VL processor: the offline tokenizer plus image/video processors matching the vision tower."""
    vision = backbone_config.vision_config
    settings = config.get("processor", {})
    size = {"shortest_edge": settings.get("min_pixels", 4096), "longest_edge": settings.get("max_pixels", 65536)}
    common = dict(patch_size=vision.patch_size, temporal_patch_size=vision.temporal_patch_size,
                  merge_size=vision.spatial_merge_size, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    tokenizer_source = tiny_processor("qwen3_vl")
    video_size = {"shortest_edge": size["shortest_edge"], "longest_edge": 16 * size["longest_edge"]}
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, **common),
        tokenizer=tokenizer_source.tokenizer,
        video_processor=Qwen3VLVideoProcessor(size=video_size, do_sample_frames=False, cap_pixels_per_frame=True,
                                              **common),
        chat_template=tokenizer_source.chat_template,
    )


def build_backbone_config(config: dict, tokenizer):
    """The Qwen3-VL config: stored real shapes (`"from"`) or explicit text/vision configs; ids from `tokenizer`."""
    spec = config["backbone"]
    ids = _special_ids(tokenizer)
    if "from" in spec:
        base = real_backbone_config(spec["from"]).to_dict()
        text, vision = base["text_config"], base["vision_config"]
        tie = base.get("tie_word_embeddings", False)
        text.update(spec.get("text_config", {}))
        vision.update(spec.get("vision_config", {}))
    else:
        text, vision = dict(spec["text_config"]), dict(spec["vision_config"])
        tie = spec.get("tie_word_embeddings", False)
    if text["vocab_size"] < len(tokenizer):
        raise ValueError(f"vocab_size {text['vocab_size']} < tokenizer size {len(tokenizer)}")
    text.update(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    backbone_config = CONFIG_MAPPING["qwen3_vl"](
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=tie,
    )
    backbone_config._attn_implementation = config.get("attn_implementation", "sdpa")
    return backbone_config


def build_models(config: dict, device: str = "cpu"):
    """(twn, floor_backbone): a TWN on a random backbone, and an adapter-free copy of that backbone.

    The LoRA `B` matrices and the gate are re-drawn (small, seeded) so both adapters are active and
    differ, as in a trained model; this changes values, not cost.
    """
    dtype = DTYPES[config.get("dtype", "float32")]
    seed = int(config.get("seed", 0))
    processor = build_processor_for(config)
    backbone_config = build_backbone_config(config, processor.tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.device(device):
            backbone = AutoModelForImageTextToText.from_config(backbone_config, dtype=dtype)
        backbone.eval()
        floor = copy.deepcopy(backbone)  # before the adapters are injected into `backbone`
        twn = build_twn(backbone, processor=processor, **config.get("twn", {}))
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, parameter in twn.backbone.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.randn(parameter.shape, generator=generator).to(parameter) * 0.02)
            for parameter in twn.gate.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator).to(parameter) * 0.5)
    twn.to(device)
    return twn.eval(), floor.eval()


def build_processor_for(config: dict) -> Qwen3VLProcessor:
    tokenizer = tiny_processor("qwen3_vl").tokenizer
    return build_processor(config, build_backbone_config(config, tokenizer))
