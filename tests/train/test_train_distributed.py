"""Negatives gathered across processes: 2 gloo processes give the single-process loss and gradients on the same
global batch. In-process (torch.multiprocessing) for the loss maths, and through `accelerate launch` for stage
embed end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from twn_hf.train.losses import gathered_info_nce

# (query rows, negative rows) held by process 0 and process 1; the global batch is their concatenation.
SPLITS = {"even": ((4, 2), (4, 1)), "uneven": ((5, 3), (3, 0)), "one_empty": ((8, 3), (0, 0))}
TEMPERATURE = 0.1


def global_batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(8, 6, generator=generator), torch.randn(8, 6, generator=generator),
            torch.randn(3, 6, generator=generator), torch.randn(6, 6, generator=generator))


def loss_and_grad(queries, positives, negatives, weight, start: int = 0):
    """The embed stage's loss on toy embeddings normalize(x @ W): a first view of every row, and a second view of
    the rows with an odd global index (as if only they had a CoT). `start`: global index of the first row."""
    weight = weight.clone().requires_grad_(True)
    embed = lambda x: F.normalize(x @ weight, dim=-1) if len(x) else x @ weight  # noqa: E731
    q = embed(queries)
    rows = torch.arange(len(q))
    odd = rows[(rows + start) % 2 == 1]
    views = [(q, rows), (embed(queries[odd] * 0.5 + 0.1), odd)]
    loss, _ = gathered_info_nce(views, embed(positives), embed(negatives), TEMPERATURE)
    loss.backward()
    if dist.is_initialized():
        dist.all_reduce(weight.grad)
        weight.grad /= dist.get_world_size()
        reported = torch.tensor([loss.item()])
        dist.all_reduce(reported)
        return reported.item() / dist.get_world_size(), weight.grad
    return loss.item(), weight.grad


def _worker(rank: int, init_file: str, results: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    queries, positives, negatives, weight = global_batch()
    out = {}
    for name, ((q0, n0), _) in SPLITS.items():
        q_start, q_end = (0, q0) if rank == 0 else (q0, 8)
        n_start, n_end = (0, n0) if rank == 0 else (n0, 3)
        rows = slice(q_start, q_end)
        out[name] = loss_and_grad(queries[rows], positives[rows], negatives[n_start:n_end], weight, q_start)
    torch.save(out, f"{results}.{rank}")
    dist.destroy_process_group()


def test_gathered_negatives_match_the_single_process_loss_and_gradient(tmp_path):
    queries, positives, negatives, weight = global_batch()
    single_loss, single_grad = loss_and_grad(queries, positives, negatives, weight)
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path / "out")), nprocs=2, join=True)
    for rank in range(2):
        results = torch.load(tmp_path / f"out.{rank}")
        for name, (loss, grad) in results.items():
            assert loss == pytest.approx(single_loss, rel=1e-5), (name, rank)
            torch.testing.assert_close(grad, single_grad, rtol=1e-4, atol=1e-6, msg=f"{name} rank {rank}")


def test_accelerate_launch_two_processes_matches_one(tmp_path, train_data, base_checkpoint):
    """`accelerate launch` of stage embed on 2 CPU processes (gloo): batch 4 per process reproduces the per-step
    losses and the final weights of one process with batch 8 (the same global batches)."""
    from safetensors.torch import load_file

    from twn_hf.train import DataConfig, EmbedConfig, ModelConfig, TrainConfig, run

    data, image_root = train_data
    common = ["--model", base_checkpoint, "--data", data, "--image-root", image_root, "--max-steps", "3",
              "--lr", "1e-2", "--no-progress-bar", "--save-every", "0", "--seed", "5", "--temperature", "0.05"]
    # accelerate's `--cpu` picks its single-process launcher (several CPU processes need mpirun); torchrun through
    # `--multi_gpu` with ACCELERATE_USE_CPU=1 gives accelerate's MULTI_CPU mode (gloo).
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", ACCELERATE_USE_CPU="1")
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "twn_hf.train", "embed",
              *common, "--output-dir", str(tmp_path / "two"), "--batch-size", "4"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]

    run(EmbedConfig(temperature=0.05), ModelConfig(model=base_checkpoint), DataConfig(data=data, image_root=image_root),
        TrainConfig(output_dir=str(tmp_path / "one"), batch_size=8, max_steps=3, lr=1e-2, progress_bar=False,
                    save_every=0, seed=5))

    def log(name):
        return [json.loads(line) for line in (tmp_path / name / "train_log.jsonl").read_text().splitlines()]

    two, one = log("two"), log("one")
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-4)
    assert [r["views"] for r in two] == pytest.approx([r["views"] / 2 for r in one])  # per-process mean
    assert json.loads((tmp_path / "two" / "training_config.json").read_text())["num_processes"] == 2
    for part in ("embedding/adapter_model.safetensors", "gate.safetensors"):
        a, b = load_file(Path(tmp_path / "two" / part)), load_file(Path(tmp_path / "one" / part))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
