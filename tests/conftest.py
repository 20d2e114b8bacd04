"""Shared fixtures: tiny random TWNs built in code (no download) and their saved checkpoints."""

from __future__ import annotations

import os

# Tests never touch the network; huggingface_hub reads this at import time, so set it first.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from twn_hf.testing import FAMILIES, tiny_twn  # noqa: E402


@pytest.fixture(scope="session")
def twn():
    """The default tiny TWN (Qwen3-VL family). Tests must not modify it."""
    return tiny_twn("qwen3_vl")


@pytest.fixture(scope="session", params=FAMILIES)
def family_twn(request):
    return tiny_twn(request.param)


@pytest.fixture(scope="session")
def checkpoint_dir(twn, tmp_path_factory):
    path = tmp_path_factory.mktemp("twn_checkpoint")
    twn.save_pretrained(path)
    return path


def solid_image(width=56, height=56, color=(200, 30, 30), mode="RGB"):
    return Image.new(mode, (width, height), color if mode == "RGB" else None)


@pytest.fixture
def mixed_inputs():
    """Eight inputs of every kind and of differing lengths."""
    red, blue = solid_image(), solid_image(64, 80, (20, 40, 220))
    return [
        "a cat sitting on a mat",
        red,
        {"text": "what colour is this?", "image": blue},
        "a much longer sentence about a dog that runs across a wide green field in the afternoon sun",
        {"images": [red, blue], "text": "compare these"},
        {"text": "the number seven", "instruction": "Represent the number."},
        blue,
        {"video": [red, blue, red, blue], "text": "a flickering clip"},
    ]
