"""`twn train <stage>` (sft, embed, gate, rl), `twn train convert-mmeb` and `twn train check-data`.

Every field of the config dataclasses becomes a flag (`lora_r` → `--lora-r`, booleans get `--x/--no-x`). For
several processes or GPUs run the same arguments through accelerate:

    accelerate launch --config_file examples/accelerate/multi_gpu.yaml -m twn_hf.train embed --model ... --data ...
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields

from twn_hf.train.config import CHOICES, STAGE_CONFIGS, DataConfig, ModelConfig, TrainConfig

logger = logging.getLogger("twn_hf")

STAGE_HELP = {
    "sft": "stage 1: train the reasoning adapter on teacher CoTs (CE)",
    "embed": "stage 2: train the embedding adapter + queries (InfoNCE over both views)",
    "gate": "stage 3: train the gate on self-supervised labels and choose the think threshold",
    "rl": "stage 4: embedding-guided policy optimisation of the reasoning adapter",
}


def _field_type(annotation: str):
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if annotation.startswith(name):
            return kind
    return str


def add_dataclass_args(parser: argparse.ArgumentParser, cls) -> None:
    group = parser.add_argument_group(cls.__name__, (cls.__doc__ or "").strip().splitlines()[0])
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = _field_type(str(f.type))
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        if f.name == "resume":
            group.add_argument(flag, nargs="?", const="latest", default=None, help=help_text)
        elif kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
        else:
            group.add_argument(flag, type=kind, default=f.default, choices=CHOICES.get(f.name), help=help_text)


def from_args(cls, args):
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def run_stage(args) -> int:
    from twn_hf.train.loop import run

    stage_config = from_args(STAGE_CONFIGS[args.stage], args)
    run(stage_config, from_args(ModelConfig, args), from_args(DataConfig, args), from_args(TrainConfig, args))
    return 0


def run_convert(args) -> int:
    from twn_hf.train.data import convert_mmeb

    count = convert_mmeb(args.source, args.output, subset=args.subset, split=args.split, max_rows=args.max_rows)
    logger.info("converted %d MMEB rows into %s", count, args.output)
    return 0


def run_check(args) -> int:
    from twn_hf.train.data import RowDataset, describe_bad_rows, load_rows, scan_rows

    rows = load_rows(args.data, args.data_split, args.data_subset, args.max_rows)
    bad = scan_rows(RowDataset(rows, args.image_root, args.max_image_pixels, args.max_negatives))
    if bad:
        logger.error("%s", describe_bad_rows(bad, limit=100))
        return 1
    logger.info("all %d rows are valid", len(rows))
    return 0


def add_subcommands(subparsers) -> None:
    for stage, config_cls in STAGE_CONFIGS.items():
        parser = subparsers.add_parser(stage, help=STAGE_HELP[stage], description=STAGE_HELP[stage])
        for cls in (ModelConfig, DataConfig, TrainConfig, config_cls):
            add_dataclass_args(parser, cls)
        parser.set_defaults(func=run_stage, stage=stage)

    convert = subparsers.add_parser("convert-mmeb", help="convert MMEB-train rows (qry, pos_text, ...) to TWN rows")
    convert.add_argument("source", help="Hub id (e.g. TIGER-Lab/MMEB-train) or local JSONL/parquet file(s)")
    convert.add_argument("output", help="output .jsonl or .parquet file")
    convert.add_argument("--subset", help="dataset subset, e.g. ImageNet_1K")
    convert.add_argument("--split", default="train", help="split to convert (MMEB-train calls it 'original')")
    convert.add_argument("--max-rows", type=int, default=None)
    convert.set_defaults(func=run_convert)

    check = subparsers.add_parser("check-data", help="validate every row (open every image) and name the bad ones")
    for flag in ("data", "data_split", "data_subset", "image_root", "max_rows", "max_negatives"):
        f = next(f for f in fields(DataConfig) if f.name == flag)
        check.add_argument("--" + flag.replace("_", "-"), type=_field_type(str(f.type)), default=f.default,
                           help=f.metadata["help"])
    check.add_argument("--max-image-pixels", type=int, default=1280 * 28 * 28)
    check.set_defaults(func=run_check)


def register(subparsers) -> None:
    """`twn train ...` in the `twn` CLI."""
    parser = subparsers.add_parser("train", help="train TWN stages (sft, embed, gate, rl) and prepare data")
    add_subcommands(parser.add_subparsers(dest="train_command", required=True))


def main(argv: list[str] | None = None) -> int:
    """`python -m twn_hf.train <stage> ...` (what `accelerate launch -m twn_hf.train` runs on each process)."""
    parser = argparse.ArgumentParser(prog="python -m twn_hf.train", description="TWN training stages")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_subcommands(parser.add_subparsers(dest="train_command", required=True))
    args = parser.parse_args(argv)
    main_process = os.environ.get("RANK", "0") == "0"
    level = logging.DEBUG if args.verbose else logging.INFO if main_process else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    from twn_hf.cli import run_parsed

    return run_parsed(args)


if __name__ == "__main__":
    sys.exit(main())
