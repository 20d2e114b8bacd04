"""Tests of ``twn_hf.testing``: the tiny offline Qwen-VL backbones every other test builds on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from twn_hf.testing import (
    FAMILIES,
    meta_backbone,
    real_backbone_config,
    tiny_backbone,
    tiny_backbone_config,
    tiny_processor,
)

TEXT_ONLY = [{"role": "user", "content": "What is 2 + 2? Answer in one word."}]
ONE_IMAGE = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this picture."}]}]
IMAGE_LAST = [{"role": "user", "content": [{"type": "text", "text": "A much longer query, with words & numbers 1234."},
                                           {"type": "image"}]}]
ONE_VIDEO = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens here?"}]}]


def _image(width: int, height: int, seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _frames(n: int = 4, size: int = 56) -> list[Image.Image]:
    return [_image(size, size, seed=100 + i) for i in range(n)]


def _video_metadata(n: int = 4, fps: float = 2.0) -> list[dict]:
    return [{"total_num_frames": n, "fps": fps, "frames_indices": list(range(n))}]


@pytest.fixture(scope="module", params=FAMILIES)
def backbone(request):
    model, processor = tiny_backbone(request.param)
    return request.param, model, processor


def _prompts(processor, *conversations) -> list[str]:
    return [processor.apply_chat_template(c, add_generation_prompt=True) for c in conversations]


def test_processor_and_model_classes(backbone):
    family, model, processor = backbone
    assert model.config.model_type == family
    assert not model.training
    expected = {"qwen3_vl": "Qwen3VL", "qwen2_5_vl": "Qwen2_5_VL", "qwen2_vl": "Qwen2VL"}[family]
    assert type(model).__name__ == f"{expected}ForConditionalGeneration"
    assert type(processor).__name__ == f"{expected}Processor"
    assert processor.tokenizer.padding_side == "left"


def test_mixed_text_and_image_batch(backbone):
    _, model, processor = backbone
    images = [_image(56, 56, seed=0), _image(80, 64, seed=1)]  # PIL size is (width, height): 64x80 (h x w)
    inputs = processor(text=_prompts(processor, TEXT_ONLY, ONE_IMAGE, IMAGE_LAST), images=images, padding=True,
                       return_tensors="pt")
    assert "mm_token_type_ids" in inputs  # returned by default: the forward needs it to place visual features
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 6]]
    n_image_tokens = (inputs["input_ids"] == model.config.image_token_id).sum(dim=1).tolist()
    assert n_image_tokens == [0, 4, 6]  # 56x56 -> 4 tokens, 64x80 -> 56x84 -> 6 tokens
    pad = processor.tokenizer.pad_token_id
    assert inputs["input_ids"][0, 0] == pad and inputs["attention_mask"][0, 0] == 0  # left padding
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape == (*inputs["input_ids"].shape, model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all()


def test_left_padding_is_batch_invariant(backbone):
    _, model, processor = backbone
    short, long = _prompts(processor, ONE_IMAGE, IMAGE_LAST)
    small, large = _image(56, 56, seed=0), _image(80, 64, seed=1)
    alone = processor(text=[short], images=[small], return_tensors="pt")
    batch = processor(text=[long, short], images=[large, small], padding=True, return_tensors="pt")
    with torch.no_grad():
        h_alone = model(**alone, output_hidden_states=True).hidden_states[-1][0]
        h_batch = model(**batch, output_hidden_states=True).hidden_states[-1][1]
    n = h_alone.shape[0]
    assert (batch["attention_mask"][1, :-n] == 0).all()
    torch.testing.assert_close(h_batch[-n:], h_alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("with_metadata", [True, False])
def test_video_batch(backbone, with_metadata):
    family, model, processor = backbone
    kwargs = {"video_metadata": _video_metadata()} if with_metadata else {}
    inputs = processor(text=_prompts(processor, ONE_VIDEO, TEXT_ONLY), videos=[_frames()], padding=True,
                       return_tensors="pt", **kwargs)
    assert "mm_token_type_ids" in inputs
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]  # 4 frames / temporal patch 2, 56x56 -> 4x4 patches
    n_video_tokens = (inputs["input_ids"] == model.config.video_token_id).sum(dim=1).tolist()
    assert n_video_tokens == [8, 0]
    if family == "qwen3_vl" and with_metadata:  # frame-pair timestamps from fps=2: (0 + 0.5) / 2, (1 + 1.5) / 2
        text = processor.tokenizer.decode(inputs["input_ids"][0])
        assert "<0.2 seconds>" in text and "<1.2 seconds>" in text
    with torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits).all()


def test_image_video_and_text_in_one_batch(backbone):
    _, model, processor = backbone
    inputs = processor(text=_prompts(processor, ONE_VIDEO, TEXT_ONLY, ONE_IMAGE), images=[_image(56, 56, seed=0)],
                       videos=[_frames()], video_metadata=_video_metadata(), padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[:2] == inputs["input_ids"].shape


def test_tokenizer_round_trip_and_special_tokens():
    tokenizer = tiny_processor().tokenizer
    for text in ["The train leaves at 10:45, costs $12.50 (about 11 EUR) -- 100% sure? Yes!",
                 "a , b . c  ;  spaces\n\nnewlines\ttabs", "Ünïcödé, 日本語 and emoji 🙂 are bytes too"]:
        ids = tokenizer.encode(text)
        assert tokenizer.decode(ids) == text
    assert tokenizer.unk_token_id is None and tokenizer.bos_token is None
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
                "<|video_pad|>"]
    for token in specials:
        assert tokenizer.encode(token) == [tokenizer.convert_tokens_to_ids(token)]
    assert 400 <= len(tokenizer) <= 1000


def test_tokenizer_is_deterministic():
    a, b = tiny_processor("qwen3_vl").tokenizer, tiny_processor("qwen2_vl").tokenizer
    assert a.get_vocab() == b.get_vocab()


def test_chat_template():
    processor = tiny_processor()
    assert processor.apply_chat_template(TEXT_ONLY) == (
        "<|im_start|>user\nWhat is 2 + 2? Answer in one word.<|im_end|>\n")
    conversation = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image"},
                                                 {"type": "video"}]}]
    assert processor.apply_chat_template(conversation, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCompare<|vision_start|><|image_pad|>"
        "<|vision_end|><|vision_start|><|video_pad|><|vision_end|><|im_end|>\n<|im_start|>assistant\n")
    assert processor.tokenizer.chat_template == processor.chat_template


@pytest.mark.parametrize("family", FAMILIES)
def test_processor_save_load_round_trip(family, tmp_path):
    processor = tiny_processor(family)
    processor.save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert type(reloaded) is type(processor)
    assert type(reloaded.tokenizer) is type(processor.tokenizer)
    assert reloaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert reloaded.chat_template == processor.chat_template
    assert reloaded.tokenizer.padding_side == "left"
    prompts = _prompts(processor, ONE_VIDEO, TEXT_ONLY, ONE_IMAGE)
    kwargs = dict(images=[_image(80, 64, seed=3)], videos=[_frames()], video_metadata=_video_metadata(),
                  padding=True, return_tensors="pt")
    expected, actual = processor(text=prompts, **kwargs), reloaded(text=prompts, **kwargs)
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(value, actual[key]), key


@pytest.mark.parametrize("family", FAMILIES)
def test_config_matches_processor(family):
    config, tokenizer = tiny_backbone_config(family), tiny_processor(family).tokenizer
    assert config.model_type == family
    assert config.text_config.vocab_size == len(tokenizer)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.vision_end_token_id == tokenizer.convert_tokens_to_ids("<|vision_end|>")
    assert config.text_config.eos_token_id == tokenizer.eos_token_id
    assert config.text_config.pad_token_id == tokenizer.pad_token_id
    assert config.tie_word_embeddings is False
    assert config._attn_implementation == "eager"
    assert tiny_backbone_config(family, vocab_size=1024).text_config.vocab_size == 1024
    with pytest.raises(ValueError):
        tiny_backbone_config(family, vocab_size=len(tokenizer) - 1)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_weights(family):
    state = torch.random.get_rng_state()
    first = tiny_backbone(family, seed=7)[0].state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is left alone
    second = tiny_backbone(family, seed=7)[0].state_dict()
    other = tiny_backbone(family, seed=8)[0].state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)
    model, _ = tiny_backbone(family, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert model.get_input_embeddings().weight is not model.get_output_embeddings().weight


def test_unknown_family():
    with pytest.raises(ValueError):
        tiny_processor("llava")


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("Qwen/Qwen3-VL-4B-Instruct", 4.0e9, 4.9e9),
        ("Qwen/Qwen3-VL-8B-Instruct", 8.0e9, 9.2e9),
        ("Qwen/Qwen2-VL-2B-Instruct", 2.0e9, 2.4e9),
        ("Qwen/Qwen2.5-VL-3B-Instruct", 3.5e9, 4.0e9),
    ],
)
def test_meta_backbone_parameter_counts(name, low, high):
    model = meta_backbone(name)
    assert all(p.device.type == "meta" for p in model.parameters())
    assert low <= sum(p.numel() for p in model.parameters()) <= high


def test_real_backbone_configs():
    c4 = real_backbone_config("Qwen/Qwen3-VL-4B-Instruct")
    assert c4.model_type == "qwen3_vl" and c4.tie_word_embeddings is True
    t, v = c4.text_config, c4.vision_config
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.head_dim) == (
        2560, 36, 32, 8, 128)
    assert (t.intermediate_size, t.vocab_size, t.rope_parameters["mrope_section"]) == (9728, 151936, [24, 20, 20])
    assert (v.depth, v.hidden_size, v.out_hidden_size) == (24, 1024, 2560)
    assert list(v.deepstack_visual_indexes) == [5, 11, 17]
    c8 = real_backbone_config("Qwen/Qwen3-VL-8B-Instruct")
    assert c8.tie_word_embeddings is False and c8.text_config.hidden_size == 4096
    assert list(c8.vision_config.deepstack_visual_indexes) == [8, 16, 24]
    c2 = real_backbone_config("Qwen/Qwen2-VL-2B-Instruct")
    assert (c2.text_config.hidden_size, c2.vision_config.embed_dim, c2.vision_config.hidden_size) == (1536, 1280, 1536)
    assert c2.text_config.rope_parameters["mrope_section"] == [16, 24, 24] and c2.tie_word_embeddings is True
    assert c4.image_token_id == c2.image_token_id == 151655
    with pytest.raises(ValueError):
        real_backbone_config("Qwen/Not-A-Model")
