"""Retrain the bundled TWN-Digits model from scratch and write its results table: one command.

    python -m twn_hf.demo.reproduce --output-dir runs/digits --threads 1 [--seed 0] [--install]

Steps: build the benchmark (seeded, image-disjoint splits) → stage 0 (train the small Qwen3-VL
backbone from scratch) → wrap it in a fresh TWN → stages sft → embed → gate with `twn_hf.train`
(unchanged) → evaluate on the test split (never / always / auto / sweep / random gate) → the
ablation with `detach_interface` off (embed retrained from the same sft checkpoint, then gate) →
results JSON + markdown + plot. `--install` copies the final checkpoint into the package, where
`twn demo` and `twn encode` find it.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from twn_hf.demo.backbone import THINK_PROMPT, pretrain_backbone
from twn_hf.demo.digits import build_digits
from twn_hf.demo.evaluate import evaluate
from twn_hf.demo.report import write_report
from twn_hf.demo.rows import write_images, write_rows
from twn_hf.demo.show import candidate_embeddings, fixed_subset, mode_table

logger = logging.getLogger(__name__)

BUNDLED = Path(__file__).parent / "checkpoint"
COMMITTED_REPORT = Path(__file__).resolve().parents[2] / "benchmarks" / "digits"  # in a source checkout
TWN_SETTINGS = dict(lora_r=16, lora_alpha=32, num_queries=4, gate_hidden_size=64, max_think_tokens=48,
                    think_prompt=THINK_PROMPT, max_image_pixels=56 * 56)
STEPS = {"stage0": 1000, "sft": 200, "embed": 500, "gate": 150}


def _train(stage_config, model_path: Path, rows: Path, images: Path, output: Path, seed: int, steps: int,
           lr: float, batch_size: int = 32) -> dict:
    from twn_hf.train.config import DataConfig, ModelConfig, TrainConfig
    from twn_hf.train.loop import run

    return run(
        stage_config,
        ModelConfig(model=str(model_path)),
        DataConfig(data=str(rows), image_root=str(images), max_negatives=1),
        TrainConfig(output_dir=str(output), seed=seed, batch_size=batch_size, lr=lr, max_steps=steps,
                    warmup_steps=max(1, steps // 20), save_every=0, log_every=50, progress_bar=False),
    )


def reproduce(output_dir: Path, seed: int = 0, steps: dict | None = None, install: bool = False,
              ablations: bool = True) -> dict:
    from twn_hf.build import build_twn
    from twn_hf.modeling import TWNModel
    from twn_hf.train.config import EmbedConfig, GateConfig, SFTConfig

    steps = {**STEPS, **(steps or {})}
    output_dir.mkdir(parents=True, exist_ok=True)
    timings, started = {}, time.perf_counter()

    # 1. The benchmark: images on disk, training rows, test queries.
    data = build_digits(seed)
    images = output_dir / "images"
    write_images(data, images)
    rows = output_dir / "train.jsonl"
    write_rows(data.queries["train"], rows, seed)
    timings["data"] = time.perf_counter() - started

    # 2. Stage 0: the backbone from scratch, wrapped in a fresh TWN (self-contained checkpoint).
    mark = time.perf_counter()
    backbone, processor, stage0_log = pretrain_backbone(data.images, data.labels, data.splits["train"], seed=seed,
                                                        steps=steps["stage0"], queries=data.queries["train"])
    model = build_twn(backbone, processor=processor, seed=seed, **TWN_SETTINGS)
    model.save_pretrained(output_dir / "stage0")
    timings["stage0"] = time.perf_counter() - mark

    # 3. Stages sft -> embed -> gate with the training code, unchanged.
    summaries = {}
    plan = [("sft", SFTConfig(sft_sides="query"), "stage0", 2e-3),
            ("embed", EmbedConfig(temperature=0.05), "sft", 1e-3),
            ("gate", GateConfig(target_think_rate=0.6, heldout_fraction=0.2, label_pool_size=512), "embed", 1e-3)]
    for name, config, source, lr in plan:
        mark = time.perf_counter()
        summaries[name] = _train(config, output_dir / source, rows, images, output_dir / name, seed, steps[name], lr)
        timings[name] = time.perf_counter() - mark

    # 4. Evaluate on the test split.
    mark = time.perf_counter()
    final = TWNModel.from_pretrained(output_dir / "gate")
    results = {"seed": seed, "steps": steps, "twn_settings": {k: v for k, v in TWN_SETTINGS.items()},
               "stage0_loss": {"first": stage0_log[0], "last": sum(stage0_log[-20:]) / 20},
               "summaries": summaries, "test": evaluate(final, data, data.queries["test"])}
    subset = fixed_subset(data)
    results["demo_subset"] = mode_table(final, data, subset, candidate_embeddings(final, data, subset))
    timings["evaluate"] = time.perf_counter() - mark

    # 5. Ablation: detach_interface off (embed retrained from the same sft checkpoint, then gate).
    if ablations:
        mark = time.perf_counter()
        _train(EmbedConfig(temperature=0.05, detach_interface=False), output_dir / "sft", rows, images,
               output_dir / "embed_no_detach", seed, steps["embed"], 1e-3)
        no_detach = TWNModel.from_pretrained(output_dir / "embed_no_detach")
        ablation = evaluate(no_detach, data, data.queries["test"], random_gate_seeds=0)
        results["no_detach"] = {mode: ablation[mode] for mode in ("never", "always")}
        timings["ablation_no_detach"] = time.perf_counter() - mark

    timings["total"] = time.perf_counter() - started
    results["seconds"] = timings
    write_report(results, output_dir)
    if install:
        install_checkpoint(output_dir / "gate")
        write_report(results, COMMITTED_REPORT)
    return results


def install_checkpoint(source: Path) -> None:
    """Copy a checkpoint (weights, remote code, processor; no training state) into the package."""
    if BUNDLED.exists():
        shutil.rmtree(BUNDLED)
    # Training state stays behind: intermediate checkpoints, logs, and the gate stage's labelled features (pickle).
    keep = lambda name: not name.startswith(("checkpoints", "train_log", "training_", "gate_data"))  # noqa: E731
    shutil.copytree(source, BUNDLED, ignore=lambda folder, names: [n for n in names if not keep(n)])
    logger.info("installed %s as the bundled demo checkpoint (%s)", source, BUNDLED)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("runs/digits"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true",
                        help="copy the checkpoint into twn_hf/demo/checkpoint and the report into benchmarks/digits")
    parser.add_argument("--no-ablations", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = reproduce(args.output_dir, args.seed, install=args.install, ablations=not args.no_ablations)
    logger.info("overall hit@1: never %.1f, always %.1f, auto %.1f", results["test"]["never"]["hit@1"]["overall"],
                results["test"]["always"]["hit@1"]["overall"], results["test"]["auto"]["hit@1"]["overall"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
