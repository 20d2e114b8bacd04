"""Stage 4: embedding-guided policy optimisation of the reasoning adapter (GRPO-style; see twn_hf.train.stages.rl).

    accelerate launch --config_file examples/accelerate/multi_gpu.yaml examples/train_4_rl.py

Same from the shell: `twn train rl --model runs/twn-4b/3-gate --data ... --group-size 8 ...`.
"""

import logging

import torch
from accelerate import PartialState

from twn_hf.train import DataConfig, ModelConfig, RLConfig, TrainConfig, run

logging.basicConfig(level=logging.INFO if PartialState().is_main_process else logging.WARNING, format="%(message)s")

# 1. Start from stage 3's checkpoint (the KL reference is its reasoning adapter, i.e. the SFT one).
model = ModelConfig(model="runs/twn-4b/3-gate", dtype="bfloat16")

# 2. The rows: only queries and positives are needed.
data = DataConfig(data="data/twn/with_cot.jsonl", image_root="data/MMEB-train", num_workers=4)

# 3. G = 8 sampled CoTs per query; reward = log-probability of retrieving the positive among 8192 cached target
#    embeddings (re-drawn and re-embedded every 100 steps); clipped objective with 2 updates per batch of samples;
#    KL 0.04 to the SFT adapter. The reasoning adapter also writes the KV cache every embedding reads: keep the LR
#    small and watch `reward` in runs/twn-4b/4-rl/train_log.jsonl.
stage = RLConfig(group_size=8, sample_temperature=1.0, top_p=1.0, max_new_tokens=256, reward="logprob",
                 reward_temperature=0.02, clip_eps=0.2, kl_coef=0.04, updates_per_batch=2, cache_size=8192,
                 cache_refresh_every=100, target_think="never")

# 4. The loop: 4 queries x 8 samples per GPU.
train = TrainConfig(output_dir="runs/twn-4b/4-rl", batch_size=4, lr=1e-5, warmup_steps=20, max_steps=1000,
                    mixed_precision="bf16", gradient_checkpointing=True, save_every=100, resume="latest", seed=42)
run(stage, model, data, train)

# 5. The final TWN (main process only): ready for `twn push` / `push_to_hub`.
if PartialState().is_main_process:
    from transformers import AutoModel

    twn = AutoModel.from_pretrained("runs/twn-4b/4-rl", trust_remote_code=True, dtype=torch.bfloat16,
                                    device_map="cuda")
    embeddings, details = twn.encode(["How many legs do three spiders and two ants have in total?"], think="auto",
                                     return_details=True)
    print(details[0])
