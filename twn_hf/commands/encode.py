"""`twn encode`: embed inputs from the command line or a JSONL file into .npy or .parquet.

With `--dataset` / `--output-dir` it encodes a whole dataset into parquet shards, across the processes
of an `accelerate launch`, resuming where a previous run stopped (see `twn_hf.sharded_encode`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from twn_hf.commands.common import add_model_args, load_model

logger = logging.getLogger("twn_hf")

PATH_KEYS = ("image", "images", "video")


def _resolve(value, root: Path):
    """Relative media paths in a JSONL row resolve against the file's folder."""
    if isinstance(value, list):
        return [_resolve(item, root) for item in value]
    if isinstance(value, str) and not Path(value).is_absolute():
        return str(root / value)
    return value


def read_jsonl(path: Path) -> list:
    """One input per line: a JSON string (text or image path) or an object with TWN input keys."""
    if not path.is_file():
        raise FileNotFoundError(f"--input-file {path} does not exist")
    inputs = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_number}: not valid JSON ({error})") from None
            if isinstance(item, dict):
                item = {k: _resolve(v, path.parent) if k in PATH_KEYS else v for k, v in item.items()}
            elif isinstance(item, str) and item.lower().endswith((".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")):
                item = _resolve(item, path.parent)
            inputs.append(item)
    return inputs


def write_embeddings(path: Path, embeddings, details) -> None:
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".npy":
        import numpy as np

        np.save(path, embeddings)
        details_path = path.with_suffix(".details.jsonl")
        with details_path.open("w", encoding="utf-8") as handle:
            for detail in details:
                handle.write(json.dumps(detail.__dict__) + "\n")
        logger.info("wrote %s and %s", path, details_path)
    elif suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({
            "embedding": [row.tolist() for row in embeddings],
            "thought": [d.thought for d in details],
            "gate_probability": [d.gate_probability for d in details],
            "cot": [d.cot for d in details],
            "tokens_generated": [d.tokens_generated for d in details],
        })
        pq.write_table(table, path)
        logger.info("wrote %s", path)
    else:
        raise ValueError(f"--output must end in .npy or .parquet, got {path.name!r}")


def run(args) -> int:
    if args.dataset is not None or args.output_dir is not None:
        return run_dataset(args)
    if args.output is None:
        raise ValueError("give --output (or --output-dir with --dataset / --input-file for sharded parquet output)")
    if args.output.suffix.lower() not in (".npy", ".parquet"):
        raise ValueError(f"--output must end in .npy or .parquet, got {args.output.name!r}")
    inputs = list(args.inputs)
    if args.input_file is not None:
        inputs += read_jsonl(args.input_file)
    if not inputs:
        raise ValueError("nothing to encode: give inputs as arguments or --input-file")
    model = load_model(args)
    model.check_think_args(args.think, args.threshold)  # fail before any work
    embeddings, details = model.encode(
        inputs,
        think=args.think,
        threshold=args.threshold,
        batch_size=args.batch_size,
        max_think_tokens=args.max_think_tokens,
        return_details=True,
        convert_to_numpy=True,
        show_progress_bar=not args.no_progress and len(inputs) > args.batch_size,
        **({"cot_cache": args.cot_cache} if args.cot_cache is not None else {}),
    )
    write_embeddings(args.output, embeddings, details)
    thought = sum(d.thought for d in details)
    logger.info("encoded %d inputs (%d thought, %d CoT tokens)", len(inputs), thought,
                sum(d.tokens_generated for d in details))
    return 0


def run_dataset(args) -> int:
    """Sharded parquet output of a dataset (JSONL / parquet / `datasets`), resumable, multi-process."""
    from twn_hf.sharded_encode import run_sharded

    if args.output_dir is None:
        raise ValueError("--dataset needs --output-dir (parquet shards are written there)")
    if args.output is not None:
        raise ValueError("give either --output or --output-dir, not both")
    if args.inputs:
        raise ValueError("positional inputs cannot be combined with --output-dir; put them in a JSONL file")
    if args.dataset is None and args.input_file is None:
        raise ValueError("--output-dir needs --dataset (or --input-file)")
    if args.dataset is not None and args.input_file is not None:
        raise ValueError("give either --dataset or --input-file, not both")
    if args.input_file is not None and not args.input_file.is_file():
        raise FileNotFoundError(f"--input-file {args.input_file} does not exist")
    return run_sharded(args, load_model)


def register(subparsers) -> None:
    parser = subparsers.add_parser("encode", help="embed inputs to .npy or .parquet")
    add_model_args(parser)
    parser.add_argument("inputs", nargs="*", help="texts or image paths (or use --input-file)")
    parser.add_argument("--input-file", type=Path,
                        help="JSONL, one input per line: a JSON string or an object with text / image / images / "
                             "video / instruction; relative paths resolve against the file's folder")
    parser.add_argument("--output", "-o", type=Path,
                        help="embeddings file: .npy (details go to .details.jsonl beside it) or .parquet")
    parser.add_argument("--think", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--threshold", type=float, default=None, help="gate threshold for --think auto, in [0, 1]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-think-tokens", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--cot-cache", type=Path, default=None,
                        help="SQLite CoT cache: CoTs found there are not decoded again, new ones are added")
    group = parser.add_argument_group(
        "dataset mode", "encode a dataset into parquet shards; run under `accelerate launch` to use several "
        "processes (one per GPU; `--cpu` for CPU processes); a rerun resumes")
    group.add_argument("--dataset", help="a .jsonl or .parquet file, a `datasets` save_to_disk folder, or a name "
                                         "datasets.load_dataset opens (offline: local files/cache)")
    group.add_argument("--split", default="train", help="split of a `datasets` source")
    group.add_argument("--output-dir", type=Path,
                       help="writes shards/part-*.parquet, manifest.json and (when complete) embeddings.parquet")
    group.add_argument("--shard-size", type=int, default=256, help="rows per shard (the unit of resume)")
    group.add_argument("--overwrite", action="store_true", help="discard a previous run in --output-dir")
    group.add_argument("--no-merge", action="store_true", help="keep the shards only")
    parser.set_defaults(func=run)
