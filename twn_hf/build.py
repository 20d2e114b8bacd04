"""Assemble a fresh TWN (new adapters, queries and gate) around a base Qwen-VL model."""

from __future__ import annotations

import logging
import os

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, PretrainedConfig, PreTrainedModel

from twn_hf.modeling import TWNConfig, TWNModel

logger = logging.getLogger(__name__)


def _pinned_revision(name: str, revision: str | None) -> str | None:
    """The commit sha a Hub id resolves to, so adapter-only checkpoints reference an exact backbone."""
    if os.path.isdir(name):
        return revision
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(name, revision=revision).sha
    except Exception as error:  # offline or private: keep what the caller gave
        logger.warning("could not resolve a commit for %s (%s); recording revision %r", name, error, revision)
        return revision


def build_twn(
    backbone: str | os.PathLike | PretrainedConfig | PreTrainedModel,
    *,
    processor=None,
    revision: str | None = None,
    dtype: torch.dtype | str | None = None,
    seed: int | None = None,
    **config_kwargs,
) -> TWNModel:
    """A new TWN on `backbone` with freshly initialised adapters, queries and gate.

    Args:
        backbone: a Hub id or local folder of a Qwen3-VL / Qwen2.5-VL / Qwen2-VL checkpoint (weights are
            loaded and the id + pinned revision recorded, so the TWN can be saved adapter-only), a
            backbone config (random weights: tests and the demo's from-scratch backbone), or a loaded
            backbone model.
        processor: the processor to attach; loaded from `backbone` when it is an id or folder.
        revision: backbone revision; resolved to a commit sha when the Hub is reachable.
        dtype: backbone dtype (e.g. torch.bfloat16 on GPU).
        seed: seeds the new parameters' initialisation.
        **config_kwargs: any `TWNConfig` field (lora_r, num_queries, think_prompt, ...).
    """
    if seed is not None:
        torch.manual_seed(seed)
    name = None
    if isinstance(backbone, PretrainedConfig):
        model = AutoModelForImageTextToText.from_config(backbone, **({"dtype": dtype} if dtype else {}))
    elif isinstance(backbone, PreTrainedModel):
        model = backbone
        name = getattr(backbone.config, "_name_or_path", None) or None
    elif isinstance(backbone, (str, os.PathLike)):
        name = os.fspath(backbone)
        model = AutoModelForImageTextToText.from_pretrained(name, revision=revision, dtype=dtype or "auto")
        processor = processor or AutoProcessor.from_pretrained(name, revision=revision)
        revision = _pinned_revision(name, revision)
    else:
        raise TypeError(f"backbone must be a Hub id, a path, a config or a model, got {type(backbone).__name__}")
    config = TWNConfig(
        backbone_config=model.config,
        backbone_name_or_path=config_kwargs.pop("backbone_name_or_path", name),
        backbone_revision=config_kwargs.pop("backbone_revision", revision),
        **config_kwargs,
    )
    twn = TWNModel(config, backbone=model.eval())
    twn.processor = processor
    return twn
