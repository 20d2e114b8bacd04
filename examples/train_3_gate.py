"""Stage 3: the gate learns when thinking helps (self-supervised labels), and the default threshold is chosen.

    accelerate launch --config_file examples/accelerate/single_gpu.yaml examples/train_3_gate.py

Same from the shell: `twn train gate --model runs/twn-4b/2-embed --data ... --target-think-rate 0.3 ...`.
"""

import json
import logging

import torch
from accelerate import PartialState

from twn_hf.train import DataConfig, GateConfig, ModelConfig, TrainConfig, run

logging.basicConfig(level=logging.INFO if PartialState().is_main_process else logging.WARNING, format="%(message)s")

# 1. Start from stage 2's checkpoint.
model = ModelConfig(model="runs/twn-4b/2-embed", dtype="bfloat16")

# 2. Labelling embeds every row twice (e0, and e1 after a greedy CoT), so a sample of rows is enough.
data = DataConfig(data="data/twn/with_cot.jsonl", image_root="data/MMEB-train", max_rows=20_000)

# 3. Labels: 1 where the think embedding ranks its positive better than the no-think one (ranked within pools of
#    1024 rows); 10% of the rows are held out to pick the threshold that thinks on at most 30% of inputs.
stage = GateConfig(margin=0.0, gate_cot_source="generate", heldout_fraction=0.1, target_think_rate=0.3,
                   label_pool_size=1024, label_batch_size=32)

# 4. Train the gate MLP (class-balanced BCE on cached query states: fast).
train = TrainConfig(output_dir="runs/twn-4b/3-gate", batch_size=256, lr=1e-3, epochs=5, mixed_precision="bf16",
                    save_every=0, seed=42)
run(stage, model, data, train)

# 5. The report and the saved threshold (main process only).
if PartialState().is_main_process:
    from transformers import AutoModel

    print(json.load(open("runs/twn-4b/3-gate/training_summary.json"))["gate"])
    twn = AutoModel.from_pretrained("runs/twn-4b/3-gate", trust_remote_code=True, dtype=torch.bfloat16,
                                    device_map="cuda")
    _, details = twn.encode(["a cat", "the number of prime factors of 360, counted with multiplicity"],
                            think="auto", return_details=True)
    print(twn.config.think_threshold, [(d.gate_probability, d.thought) for d in details])
