"""Options and model loading shared by the sub-commands."""

from __future__ import annotations

import argparse
import logging

logger = logging.getLogger("twn_hf")


def add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="TWN checkpoint folder or Hub id (default: the built-in demo model)")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")


def load_model(args):
    """The model named by --model, else the built-in default."""
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.model:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(args.model, revision=args.revision, trust_remote_code=True)
    else:
        from twn_hf.testing import tiny_twn

        # No trained demo checkpoint ships yet (see the README): a tiny random TWN built in code.
        logger.warning("no --model given: using a tiny RANDOMLY INITIALISED TWN built in code; "
                       "its embeddings, gate decisions and CoTs are meaningless")
        model = tiny_twn("qwen3_vl", max_think_tokens=12)
    return model.to(device)
