"""The training loop every stage shares: `run(stage_config, model_config, data_config, train_config)`.

Flat on purpose: load the TWN, load the rows, freeze everything but the stage's parameters, then
`for step: batches -> stage.train_step -> scheduler -> log -> maybe checkpoint`, then save the TWN checkpoint and
`training_config.json` into `output_dir`.

Distributed runs use `accelerate` for the process group, device placement and bf16 autocast. The model is *not*
wrapped in DDP: TWN's steps call several model methods (prefill, query_states, think), not one `forward`, so the
loop averages gradients itself — one flattened all-reduce of the trainable parameters' gradients per optimizer
step (`sync_gradients`). Each process reads its own slice of every global batch (`collate.ShardedBatchSampler`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist

from twn_hf.train.checkpointing import latest_checkpoint, load_checkpoint, save_checkpoint, twn_parts
from twn_hf.train.collate import ShardedBatchSampler, iterate_batches
from twn_hf.train.config import (
    DataConfig,
    ModelConfig,
    STAGE_CONFIGS,
    TrainConfig,
    check_choices,
    config_dict,
)
from twn_hf.train.data import BadRowError, RowDataset, describe_bad_rows, load_rows, scan_rows
from twn_hf.train.lm import setup_checkpointing
from twn_hf.train.losses import all_reduce_sum, distributed
from twn_hf.train.stages import STAGES
from twn_hf.train.stages.base import TrainContext, mean_metrics

logger = logging.getLogger(__name__)

LOG_FILE = "train_log.jsonl"
CONFIG_FILE = "training_config.json"
SUMMARY_FILE = "training_summary.json"


def stage_name(stage_config) -> str:
    for name, cls in STAGE_CONFIGS.items():
        if isinstance(stage_config, cls):
            return name
    raise TypeError(f"not a stage config: {type(stage_config).__name__}")


def load_model(config: ModelConfig, seed: int):
    """The starting TWN: a checkpoint (`config.model`) or a fresh TWN on a base VLM (`config.backbone`)."""
    from twn_hf.build import build_twn
    from twn_hf.modeling import TWNModel

    dtype = None if config.dtype == "auto" else getattr(torch, config.dtype)
    if config.model:
        return TWNModel.from_pretrained(config.model, revision=config.revision, dtype=dtype or "auto")
    if config.backbone:
        return build_twn(config.backbone, revision=config.revision, dtype=dtype, seed=seed, lora_r=config.lora_r,
                         lora_alpha=config.lora_alpha, num_queries=config.num_queries)
    raise ValueError("give --model (a TWN checkpoint) or --backbone (a base Qwen-VL model to build a TWN on)")


def _accelerator(mixed_precision: str | None):
    """An `Accelerator`; a single process may call `run` again with another precision (notebooks, tests), which
    accelerate's process-wide state would refuse, so that state is reset first (never in a distributed run)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    if mixed_precision is None:  # what `accelerate launch` (its config or --mixed_precision) asked for
        mixed_precision = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    try:
        return Accelerator(mixed_precision=mixed_precision)
    except ValueError:
        if distributed():
            raise
        AcceleratorState._reset_state()
        return Accelerator(mixed_precision=mixed_precision)


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1.0 - progress
    return 1.0


def sync_gradients(parameters: list[torch.nn.Parameter], num_processes: int) -> None:
    """Give every trainable parameter a gradient (zeros if it got none) and average them over processes."""
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    if num_processes > 1 and distributed():
        grads = [p.grad for p in parameters]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= num_processes
        for grad, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(synced)


def _reduce_metrics(metrics: dict) -> dict:
    """Mean of each metric over the processes that report it."""
    if not distributed():
        return metrics
    everyone = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, metrics)
    return mean_metrics([m for m in everyone if m])


class _BadRows:
    """Bad rows met while training: warn once per row (skip) or stop the run on every process (fail)."""

    def __init__(self, policy: str, seen: dict | None = None):
        self.policy = policy
        self.seen = dict(seen or {})

    def check(self, bad, device) -> None:
        if self.policy == "fail":
            count = int(all_reduce_sum(len(bad), device=device)) if distributed() else len(bad)
            if count:
                raise BadRowError(describe_bad_rows(bad) + " (--on-bad-row fail)" if bad
                                  else f"{count} bad row(s) on another process (--on-bad-row fail)")
        for row in bad:
            if str(row.row) not in self.seen:
                logger.warning("skipping bad %s", row)
                self.seen[str(row.row)] = row.reason


def run(stage_config, model_config: ModelConfig | None = None, data_config: DataConfig | None = None,
        train_config: TrainConfig | None = None, model=None) -> dict:
    """Train one stage; returns the summary also written to `training_summary.json`.

    `model` (an in-memory `TWNModel`) replaces `model_config` as the starting point (tests, notebooks).
    """
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    name = stage_name(stage_config)
    model_config = model_config or ModelConfig()
    data_config = data_config or DataConfig()
    train_config = train_config or TrainConfig()
    check_choices(model_config, data_config, train_config, stage_config)
    accelerator = _accelerator(train_config.mixed_precision)
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and accelerator.num_processes == 1:
        raise ValueError(f"{launched} processes were launched but accelerate set up no process group (each would train "
                         "alone). On CPUs launch with ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu "
                         "--num_processes N ... (accelerate's --cpu flag uses its single-process launcher)")
    set_seed(train_config.seed)
    output = Path(train_config.output_dir)
    main = accelerator.is_main_process

    # 1. model and stage
    stage = STAGES[name](stage_config)
    if model is None:
        model = load_model(model_config, train_config.seed)
    model.to(accelerator.device)
    model.train()

    # 2. data
    rows = load_rows(data_config.data, data_config.data_split, data_config.data_subset, data_config.max_rows)
    dataset = RowDataset(rows, data_config.image_root, model.config.max_image_pixels, data_config.max_negatives)
    ctx = TrainContext(accelerator, model, model_config, data_config, train_config, rows, dataset, [])
    ctx.indices = stage.select_rows(ctx)
    if data_config.scan:
        bad = scan_rows(dataset, ctx.indices)
        if bad and data_config.on_bad_row == "fail":
            raise BadRowError(describe_bad_rows(bad) + " (--on-bad-row fail)")
        if bad:
            logger.warning("scan: leaving out %s", describe_bad_rows(bad))
            bad_set = {b.row for b in bad}
            ctx.indices = [i for i in ctx.indices if i not in bad_set]
    bad_rows = _BadRows(data_config.on_bad_row)

    # 3. trainable parameters (float32 master copies), optimizer, schedule
    stage.setup(ctx)
    for p in twn_parts(model).values():
        p.requires_grad_(False)
    trainable = stage.trainable_parameters(model)
    for p in trainable:
        p.requires_grad_(True)
        if p.dtype != torch.float32:
            p.data = p.data.float()
    if train_config.gradient_checkpointing:
        setup_checkpointing(model)
    optimizer = torch.optim.AdamW(trainable, lr=train_config.lr, weight_decay=train_config.weight_decay)
    train_dataset, train_indices, collate_fn = stage.training_data(ctx)
    per_epoch = ShardedBatchSampler.batches_per_epoch(len(train_indices), train_config.batch_size,
                                                      accelerator.num_processes)
    total_steps = train_config.max_steps or max(1, int(train_config.epochs * per_epoch) // train_config.grad_accum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, train_config.warmup_steps, total_steps, train_config.schedule))

    def optimizer_step():
        sync_gradients(trainable, accelerator.num_processes)
        if train_config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, train_config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    ctx.optimizer_step = optimizer_step
    full_config = config_dict(name, model_config, data_config, train_config, stage_config)
    full_config.update(num_processes=accelerator.num_processes, mixed_precision_used=accelerator.mixed_precision,
                       total_steps=total_steps,
                       trainable_parameters=sum(p.numel() for p in trainable))

    # 4. resume
    state = {"step": 0, "position": 0, "bad_rows": {}}
    resume_from = None
    if train_config.resume:
        resume_from = latest_checkpoint(output) if train_config.resume == "latest" else Path(train_config.resume)
        if resume_from is None:
            logger.info("no checkpoint in %s: starting from step 0", output)
    if resume_from is not None:
        state, stage_state = load_checkpoint(accelerator, resume_from, model, optimizer, scheduler)
        stage.load_state_dict(stage_state)
        bad_rows.seen = dict(state.get("bad_rows", {}))
    log_path = output / LOG_FILE
    if main:
        output.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_from is not None and log_path.is_file():
            kept = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= state["step"]]
        log_path.write_text("".join(line + "\n" for line in kept))
        logger.info("stage %s: %d steps, %d rows/process/micro-batch x %d processes x %d accumulation; "
                    "%d usable rows; %d trainable parameters", name, total_steps, train_config.batch_size,
                    accelerator.num_processes, train_config.grad_accum, len(train_indices),
                    full_config["trainable_parameters"])

    # 5. the loop
    batches = iterate_batches(train_dataset, train_indices, collate_fn, train_config.batch_size,
                              accelerator.num_processes, accelerator.process_index, train_config.seed,
                              start=state["position"], num_workers=data_config.num_workers)
    step, position = state["step"], state["position"]
    progress = tqdm(total=total_steps, initial=step, desc=f"twn train {name}", unit="step",
                    disable=not (main and train_config.progress_bar))
    started = step_start = time.time()
    while step < total_steps:
        micro = [next(batches) for _ in range(train_config.grad_accum)]
        position += len(micro)
        for batch in micro:
            bad_rows.check(getattr(batch, "bad_rows", []), accelerator.device)
        ctx.step = step
        metrics = stage.train_step(ctx, micro)
        scheduler.step()
        step += 1
        rows_done = sum(len(b[1]) if isinstance(b, tuple) else len(b) for b in micro)  # gate batches are tuples
        metrics = _reduce_metrics(metrics)
        if main:
            seconds = time.time() - step_start
            record = {"step": step, **{k: round(v, 6) for k, v in metrics.items()},
                      "lr": scheduler.get_last_lr()[0], "step_seconds": round(seconds, 4),
                      "rows_per_s": round(rows_done * accelerator.num_processes / max(seconds, 1e-9), 3)}
            with log_path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            progress.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k in ("loss", "reward", "accuracy")})
            progress.update(1)
            if step % max(1, train_config.log_every) == 0 or step == total_steps:
                logger.info("step %d/%d %s lr %.3g %.1f rows/s", step, total_steps,
                            " ".join(f"{k} {v:.4g}" for k, v in metrics.items()), record["lr"], record["rows_per_s"])
        step_start = time.time()
        if train_config.save_every and step % train_config.save_every == 0 and step < total_steps:
            state = {"step": step, "position": position, "bad_rows": bad_rows.seen, "config": full_config}
            save_checkpoint(accelerator, output, model, optimizer, scheduler, state, stage.state_dict(),
                            train_config.keep_checkpoints)
    progress.close()

    # 6. finish and save
    summary = stage.finish(ctx)
    summary.update(stage=name, steps=step, seconds=round(time.time() - started, 2),
                   bad_rows_skipped=len(bad_rows.seen))
    if bad_rows.seen:
        logger.warning("skipped %d bad row(s) on this process: %s", len(bad_rows.seen),
                       ", ".join(sorted(bad_rows.seen, key=int)[:50]))
    accelerator.wait_for_everyone()
    if main:
        model.save_pretrained(output)
        (output / CONFIG_FILE).write_text(json.dumps(full_config, indent=2))
        (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        logger.info("stage %s done: TWN checkpoint and %s in %s", name, CONFIG_FILE, output)
    accelerator.wait_for_everyone()
    return summary
