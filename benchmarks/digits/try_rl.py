"""Does stage `rl` help TWN-Digits? Run it on a finished reproduction's gate checkpoint and evaluate on test.

    python benchmarks/digits/try_rl.py --run runs/digits --steps 120 --lr 1e-3

Writes <run>/rl_eval_lr<lr>_steps<steps>.json (hit@1, think rates, CoT tokens per mode, training summary).
"""

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from twn_hf.demo.digits import build_digits
from twn_hf.demo.evaluate import evaluate
from twn_hf.demo.reproduce import _train
from twn_hf.modeling import TWNModel
from twn_hf.train.config import RLConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=Path("runs/digits"))
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    started = time.time()
    summary = _train(RLConfig(group_size=4, cache_size=512, cache_refresh_every=20, max_new_tokens=48, kl_coef=0.04),
                     args.run / "gate", args.run / "train.jsonl", args.run / "images", args.run / "rl", args.seed,
                     args.steps, args.lr, batch_size=8)
    seconds = time.time() - started
    data = build_digits(args.seed)
    result = evaluate(TWNModel.from_pretrained(args.run / "rl"), data, data.queries["test"], random_gate_seeds=0)
    report = {mode: {"hit@1": result[mode]["hit@1"], "think_rate": result[mode]["think_rate"],
                     "cot_tokens_per_query": result[mode]["cot_tokens_per_query"]} for mode in ("never", "always", "auto")}
    report.update(steps=args.steps, lr=args.lr, train_seconds=seconds, summary=summary)
    path = args.run / f"rl_eval_lr{args.lr:g}_steps{args.steps}.json"
    path.write_text(json.dumps(report, indent=1, default=float))
    logging.info("overall hit@1 after rl: %s (%s)", {m: round(report[m]["hit@1"]["overall"], 1)
                                                    for m in ("never", "always", "auto")}, path)


if __name__ == "__main__":
    main()
