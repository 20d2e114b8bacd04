"""The `twn` command. Each sub-command lives in its own module with `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

logger = logging.getLogger("twn_hf")

# One module per sub-command; each defines `register(subparsers)` which sets `func(args) -> int`.
COMMAND_MODULES = (
    "twn_hf.commands.demo",
    "twn_hf.commands.encode",
    "twn_hf.commands.info",
    "twn_hf.commands.export",
    "twn_hf.commands.push",
    "twn_hf.train.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twn", description="Think When Needed multimodal embeddings")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def run_parsed(args) -> int:
    """Run a parsed sub-command; bad input becomes one logged error line and exit code 2."""
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        logger.error("error: %s", error)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    return run_parsed(args)


if __name__ == "__main__":
    sys.exit(main())
