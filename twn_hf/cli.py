"""The `twn` command: `twn demo`, `twn encode`, `twn info`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger("twn_hf")

THINK_CHOICES = ("auto", "always", "never")


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="TWN checkpoint folder or Hub id (default: the built-in demo model)")
    parser.add_argument("--revision", help="Hub revision of --model")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twn", description="Think When Needed multimodal embeddings")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="encode a few texts and images with think=auto and show what each did")
    _add_model_args(demo)

    encode = commands.add_parser("encode", help="embed inputs to .npy or .parquet")
    _add_model_args(encode)
    encode.add_argument("inputs", nargs="*", help="texts or image paths (or use --input-file)")
    encode.add_argument("--input-file", type=Path,
                        help="JSONL: one input per line, a JSON string or an object with text / image / images / "
                             "video / instruction; relative paths resolve against the file's folder")
    encode.add_argument("--output", "-o", type=Path, required=True, help="embeddings file: .npy or .parquet")
    encode.add_argument("--think", choices=THINK_CHOICES, default="auto")
    encode.add_argument("--threshold", type=float, default=None, help="gate threshold for --think auto (0..1)")
    encode.add_argument("--batch-size", type=int, default=8)
    encode.add_argument("--max-think-tokens", type=int, default=None)
    encode.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    info = commands.add_parser("info", help="parameter overhead and cost estimates of TWN on real backbones")
    info.add_argument("--backbone", action="append",
                      help="stored backbone config name (repeatable; default: Qwen3-VL-4B/8B, Qwen2-VL-2B)")
    info.add_argument("--context-length", type=int, default=1024)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    from twn_hf import commands

    try:
        return {"demo": commands.run_demo, "encode": commands.run_encode, "info": commands.run_info}[args.command](args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        logger.error("error: %s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
