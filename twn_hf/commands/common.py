"""Options and model loading shared by the sub-commands."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger("twn_hf")

BUNDLED_CHECKPOINT = Path(__file__).resolve().parents[1] / "demo" / "checkpoint"


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="TWN checkpoint folder or Hub id (default: the bundled TWN-Digits model)")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def bundled_checkpoint() -> Path | None:
    """The TWN-Digits checkpoint shipped in the package, when this install has it."""
    return BUNDLED_CHECKPOINT if (BUNDLED_CHECKPOINT / "config.json").is_file() else None


def load_model(args):
    """The model named by --model, else the bundled TWN-Digits model, else a tiny random TWN (with a warning)."""
    import torch
    from transformers import AutoModel

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    source = args.model or bundled_checkpoint()
    if source is not None:
        model = AutoModel.from_pretrained(str(source), revision=args.revision, trust_remote_code=True)
    else:
        from twn_hf.testing import tiny_twn

        logger.warning("no --model given and no bundled checkpoint: using a tiny RANDOMLY INITIALISED TWN built in "
                       "code; its embeddings, gate decisions and CoTs are meaningless")
        model = tiny_twn("qwen3_vl", max_think_tokens=12)
    return model.to(device)
