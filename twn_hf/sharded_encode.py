"""Scale-out encoding of a dataset: shards across processes, parquet parts, resume, merge.

    twn encode --dataset corpus.jsonl --output-dir out/                         # one process
    accelerate launch --num_processes 8 -m twn_hf.cli encode --dataset corpus.parquet --output-dir out/
    accelerate launch --num_processes 2 --cpu -m twn_hf.cli encode --dataset corpus.jsonl --output-dir out/

The dataset is cut into fixed **shards** of `shard_size` consecutive rows; shard `s` belongs to process
`s % num_processes`. Each finished shard is written to `out/shards/part-000123.parquet` atomically
(temporary file, then rename), so a process killed at any point leaves only whole shards behind. A
rerun with the same settings skips the shards already on disk (resume); `manifest.json` records the
settings and a rerun with different ones is refused. When every shard is present the main process
merges them in row order into `out/embeddings.parquet`.

Because shard boundaries (and so batch composition) do not depend on the number of processes, the
merged output of an N-process run equals a one-process run (up to float rounding of the
matmuls when the processes use different thread counts).

Sources: JSONL (one TWN input per line, as `twn encode --input-file`), parquet (columns `text`,
`image` / `images` (bytes, `{"bytes", "path"}` structs as `datasets` writes them, or paths),
`video`, `instruction`; an `id` column is carried through), a `datasets` folder written by
`save_to_disk`, or anything `datasets.load_dataset(source, split=...)` opens offline.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("twn_hf")

INPUT_KEYS = ("text", "image", "images", "video", "instruction")
MANIFEST = "manifest.json"
MERGED = "embeddings.parquet"
SHARD_DIR = "shards"


# ----- reading sources ---------------------------------------------------------------------------
def _to_image(value, root: Path | None):
    """An image cell → something `encode` accepts (PIL image or path)."""
    from PIL import Image

    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):  # datasets' Image feature stored in parquet: {"bytes": ..., "path": ...}
        if value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    if isinstance(value, str) and root is not None and not Path(value).is_absolute():
        return str(root / value)
    return value


def to_input(row: dict, root: Path | None = None):
    """A dataset row → a TWN input dict (only the input keys; empty values dropped)."""
    item = {}
    for key in INPUT_KEYS:
        value = row.get(key)
        if value is None:
            continue
        if key == "image":
            value = _to_image(value, root)
        elif key in ("images", "video"):
            value = [_to_image(v, root) for v in value]
            if not value:
                continue
        item[key] = value
    return item


class Source:
    """Random access to a dataset's rows by range; `rows(start, stop)` → (inputs, ids or None)."""

    def __init__(self, source: str, split: str = "train"):
        self.name = str(source)
        self.split = split
        path = Path(source)
        self._root = path.parent if path.is_file() else None
        if path.is_file() and path.suffix.lower() in (".jsonl", ".json"):
            from twn_hf.commands.encode import read_jsonl

            self.kind = "jsonl"
            self._jsonl = read_jsonl(path)
            self._length = len(self._jsonl)
            self._ids = None
        elif path.is_file() and path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            self.kind = "parquet"
            self._table = pq.read_table(path, memory_map=True)
            self._length = self._table.num_rows
        elif path.is_dir() and any((path / f).exists() for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            import datasets

            self.kind = "datasets"
            loaded = datasets.load_from_disk(str(path))
            self._dataset = loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
            self._length = len(self._dataset)
        else:
            import datasets

            self.kind = "datasets"
            self._dataset = datasets.load_dataset(str(source), split=split)
            self._length = len(self._dataset)
        if self._length == 0:
            raise ValueError(f"dataset {self.name!r} has no rows")

    def __len__(self) -> int:
        return self._length

    def rows(self, start: int, stop: int):
        if self.kind == "jsonl":
            return self._jsonl[start:stop], None
        if self.kind == "parquet":
            columns = self._table.slice(start, stop - start).to_pylist()
        else:
            batch = self._dataset[start:stop]
            columns = [dict(zip(batch, values)) for values in zip(*batch.values())]
        ids = [row.get("id") for row in columns] if columns and "id" in columns[0] else None
        inputs = []
        for offset, row in enumerate(columns):
            item = to_input(row, self._root)
            if not item:
                raise ValueError(f"{self.name}: row {start + offset} has none of the columns {INPUT_KEYS}")
            inputs.append(item)
        return inputs, ids


# ----- sharded encoding -----------------------------------------------------------------------------
@dataclass
class ShardPlan:
    num_rows: int
    shard_size: int

    @property
    def num_shards(self) -> int:
        return (self.num_rows + self.shard_size - 1) // self.shard_size

    def bounds(self, shard: int) -> tuple[int, int]:
        return shard * self.shard_size, min((shard + 1) * self.shard_size, self.num_rows)

    def owned(self, rank: int, world: int) -> list[int]:
        return list(range(rank, self.num_shards, world))


def shard_path(output_dir: Path, shard: int) -> Path:
    return Path(output_dir) / SHARD_DIR / f"part-{shard:06d}.parquet"


def shard_done(output_dir: Path, shard: int, expected_rows: int) -> bool:
    """A shard counts as done when its file is a readable parquet file with the expected row count."""
    import pyarrow.parquet as pq

    path = shard_path(output_dir, shard)
    if not path.is_file():
        return False
    try:
        return pq.read_metadata(path).num_rows == expected_rows
    except Exception:  # a truncated file cannot exist (atomic rename), but be safe with foreign files
        return False


def _atomic_write_table(table, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def shard_table(start: int, embeddings, details, ids=None):
    """The parquet table of one shard: row index, optional id, float32 embedding, and what each input did."""
    import numpy as np
    import pyarrow as pa

    embeddings = np.asarray(embeddings, dtype=np.float32)
    columns = {"index": pa.array(range(start, start + len(embeddings)), type=pa.int64())}
    if ids is not None:
        columns["id"] = pa.array(ids)
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1])
    columns["thought"] = pa.array([d.thought for d in details], type=pa.bool_())
    columns["gate_probability"] = pa.array([d.gate_probability for d in details], type=pa.float32())
    columns["cot"] = pa.array([d.cot for d in details], type=pa.string())
    columns["tokens_generated"] = pa.array([d.tokens_generated for d in details], type=pa.int32())
    columns["cot_cached"] = pa.array([getattr(d, "cot_cached", False) for d in details], type=pa.bool_())
    return pa.table(columns)


def check_manifest(output_dir: Path, manifest: dict) -> None:
    """Write the run's manifest, or make sure the one on disk (a run being resumed) has the same settings."""
    path = Path(output_dir) / MANIFEST
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        different = sorted(k for k in set(existing) | set(manifest) if existing.get(k) != manifest.get(k))
        if different:
            raise ValueError(f"{output_dir} holds a run with different settings ({', '.join(different)}); "
                             "use another --output-dir or --overwrite")
        return
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{MANIFEST}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def merge_shards(output_dir: Path, plan: ShardPlan) -> Path:
    """Concatenate every shard in row order into `embeddings.parquet` (atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    missing = [s for s in range(plan.num_shards) if not shard_done(output_dir, s, len(range(*plan.bounds(s))))]
    if missing:
        raise RuntimeError(f"cannot merge: {len(missing)} shard(s) missing, e.g. {missing[:5]}; rerun to resume")
    table = pa.concat_tables(pq.read_table(shard_path(output_dir, s)) for s in range(plan.num_shards))
    path = Path(output_dir) / MERGED
    _atomic_write_table(table, path)
    return path


def plan_and_manifest(source: Source, shard_size: int, think: str, threshold, max_think_tokens,
                      extra: dict | None = None) -> tuple[ShardPlan, dict]:
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    plan = ShardPlan(len(source), shard_size)
    manifest = {"source": source.name, "split": source.split if source.kind == "datasets" else None,
                "num_rows": plan.num_rows, "shard_size": shard_size, "think": think, "threshold": threshold,
                "max_think_tokens": max_think_tokens, **(extra or {})}
    return plan, manifest


def clear_output(output_dir: Path) -> None:
    """Remove a previous run's shards, merged file and manifest (for --overwrite)."""
    output_dir = Path(output_dir)
    for path in (output_dir / SHARD_DIR).glob("part-*.parquet*"):
        path.unlink()
    for name in (MERGED, MANIFEST):
        if (output_dir / name).exists():
            (output_dir / name).unlink()


def encode_dataset(
    model,
    source: Source,
    output_dir,
    *,
    plan: ShardPlan,
    batch_size: int = 8,
    think: str = "auto",
    threshold: float | None = None,
    max_think_tokens: int | None = None,
    cot_cache=None,
    rank: int = 0,
    world_size: int = 1,
    show_progress: bool = True,
) -> dict:
    """Encode the shards of `plan` that belong to `rank` and are not on disk yet; returns counts.

    Call on every process (rank, world_size from `accelerate`) after the manifest is checked; merge
    (`merge_shards`) once all processes are done.
    """
    output_dir = Path(output_dir)
    owned = plan.owned(rank, world_size)
    todo = [s for s in owned if not shard_done(output_dir, s, len(range(*plan.bounds(s))))]
    logger.info("process %d/%d: %d of its %d shards to encode (%d already done)", rank, world_size, len(todo),
                len(owned), len(owned) - len(todo))
    iterator = todo
    if show_progress and todo:
        from tqdm.auto import tqdm

        iterator = tqdm(todo, desc=f"shards (process {rank})", unit="shard", position=rank)
    counts = {"shards_done_before": len(owned) - len(todo), "shards_encoded": 0, "rows_encoded": 0}
    for shard in iterator:
        start, stop = plan.bounds(shard)
        for stale in shard_path(output_dir, shard).parent.glob(f"{shard_path(output_dir, shard).name}.tmp-*"):
            stale.unlink(missing_ok=True)  # left by a killed run
        inputs, ids = source.rows(start, stop)
        embeddings, details = model.encode(
            inputs, think=think, threshold=threshold, batch_size=batch_size, max_think_tokens=max_think_tokens,
            return_details=True, convert_to_numpy=True, **({"cot_cache": cot_cache} if cot_cache is not None else {}),
        )
        _atomic_write_table(shard_table(start, embeddings, details, ids), shard_path(output_dir, shard))
        counts["shards_encoded"] += 1
        counts["rows_encoded"] += stop - start
    return counts


def _warn_if_single_cpu_launch(use_cpu: bool) -> None:
    """`accelerate launch --cpu --num_processes N` without MPI starts ONE process (accelerate's CPU multi-process
    launcher is mpirun); say so instead of silently running N times slower."""
    launched_for_many = "MASTER_ADDR" in os.environ and os.environ.get("ACCELERATE_USE_CPU", "").lower() == "true"
    has_ranks = any(k in os.environ for k in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"))
    if use_cpu and launched_for_many and not has_ranks:
        logger.warning(
            "accelerate started a single CPU process: `accelerate launch --cpu --num_processes N` spawns N processes "
            "only through MPI (--mpirun_hostfile). Without MPI, use `ACCELERATE_USE_CPU=1 accelerate launch "
            "--multi_gpu --num_processes N -m twn_hf.cli encode ...` or `torchrun --nproc_per_node N -m twn_hf.cli "
            "encode ...`; this process encodes every shard (the output is the same).")


def run_sharded(args, model_loader) -> int:
    """`twn encode --dataset … --output-dir …` on every process of an `accelerate launch` (or alone)."""
    import torch
    from accelerate import PartialState

    use_cpu = (args.device == "cpu" or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
               or not torch.cuda.is_available())
    _warn_if_single_cpu_launch(use_cpu)
    state = PartialState(cpu=use_cpu)
    if args.device in (None, "cuda"):  # one GPU per process
        args.device = str(state.device)
    source = Source(args.dataset if args.dataset is not None else str(args.input_file), split=args.split)
    plan, manifest = plan_and_manifest(source, args.shard_size, args.think, args.threshold, args.max_think_tokens,
                                       {"model": args.model or "builtin-demo", "revision": args.revision})
    if state.is_main_process:
        if args.overwrite:
            clear_output(args.output_dir)
        check_manifest(args.output_dir, manifest)
    state.wait_for_everyone()
    if not state.is_main_process:
        check_manifest(args.output_dir, manifest)
    model = model_loader(args)
    model.check_think_args(args.think, args.threshold)
    counts = encode_dataset(
        model, source, args.output_dir, plan=plan, batch_size=args.batch_size, think=args.think,
        threshold=args.threshold, max_think_tokens=args.max_think_tokens, cot_cache=args.cot_cache,
        rank=state.process_index, world_size=state.num_processes, show_progress=not args.no_progress)
    logger.info("process %d: encoded %d shards (%d rows); %d were already done", state.process_index,
                counts["shards_encoded"], counts["rows_encoded"], counts["shards_done_before"])
    state.wait_for_everyone()
    if state.is_main_process and not args.no_merge:
        path = merge_shards(args.output_dir, plan)
        logger.info("merged %d rows from %d shards into %s", plan.num_rows, plan.num_shards, path)
    return 0
