"""Stage 1 of the TWN recipe: the reasoning adapter learns to write the teacher's chain of thought (CE on CoT tokens).

    accelerate launch --config_file examples/accelerate/single_gpu.yaml examples/train_1_sft.py

Same from the shell: `twn train sft --backbone Qwen/Qwen3-VL-4B-Instruct --dtype bfloat16 --data ... --output-dir ...`.
"""

import logging

import torch
from accelerate import PartialState

from twn_hf.train import DataConfig, ModelConfig, SFTConfig, TrainConfig, run

logging.basicConfig(level=logging.INFO if PartialState().is_main_process else logging.WARNING, format="%(message)s")

# 1. The starting model: a fresh TWN around the base VLM (new reasoning/embedding LoRAs, queries and gate).
model = ModelConfig(backbone="Qwen/Qwen3-VL-4B-Instruct", dtype="bfloat16", lora_r=48, lora_alpha=96, num_queries=8)

# 2. The rows (train_0_data.py), with teacher CoTs in `query_cot` / `positive_cot`.
data = DataConfig(data="data/twn/with_cot.jsonl", image_root="data/MMEB-train", on_bad_row="skip", num_workers=4)

# 3. The loop: bf16 autocast on the GPU, gradient checkpointing for the long x ⊕ c sequences, a resumable checkpoint
#    every 500 steps (rerunning this script after an interruption picks up from the latest one).
train = TrainConfig(output_dir="runs/twn-4b/1-sft", batch_size=8, grad_accum=4, lr=1e-4, warmup_steps=100, epochs=1,
                    mixed_precision="bf16", gradient_checkpointing=True, save_every=500, resume="latest", seed=42)

# 4. Train: only the reasoning adapter changes.
run(SFTConfig(sft_sides="both"), model, data, train)

# 5. Look at what it writes now (main process only).
if PartialState().is_main_process:
    from transformers import AutoModel

    twn = AutoModel.from_pretrained("runs/twn-4b/1-sft", trust_remote_code=True, dtype=torch.bfloat16,
                                    device_map="cuda")
    _, details = twn.encode(["What is the capital of the country north of Spain?"], think="always",
                            return_details=True)
    print(details[0].cot)
