"""Stage 2: the embedding adapter and the K query vectors learn InfoNCE over both views (x and x ⊕ c).

    accelerate launch --config_file examples/accelerate/multi_gpu.yaml examples/train_2_embed.py

Same from the shell: `twn train embed --model runs/twn-4b/1-sft --data ... --temperature 0.02 ...`. Add
`--joint` to keep training stage 1's CE on the same batches, `--no-detach-interface` for the ablation.
"""

import logging

import torch
from accelerate import PartialState

from twn_hf.train import DataConfig, EmbedConfig, ModelConfig, TrainConfig, run

logging.basicConfig(level=logging.INFO if PartialState().is_main_process else logging.WARNING, format="%(message)s")

# 1. Start from stage 1's checkpoint.
model = ModelConfig(model="runs/twn-4b/1-sft", dtype="bfloat16")

# 2. The rows: queries, positives and hard negatives (one per row here); teacher CoTs give the think view.
data = DataConfig(data="data/twn/with_cot.jsonl", image_root="data/MMEB-train", max_negatives=1, num_workers=4)

# 3. The loss: temperature 0.02, both views; negatives are gathered over all GPUs, so with 8 GPUs a query competes
#    with 8 x 64 positives plus their hard negatives. The prefill runs without gradients (detached interface), so
#    memory grows with K, not the input length.
stage = EmbedConfig(temperature=0.02, views="both", cot_source="teacher", detach_interface=True, joint=False)

# 4. The loop.
train = TrainConfig(output_dir="runs/twn-4b/2-embed", batch_size=64, lr=1e-4, warmup_steps=100, epochs=1,
                    mixed_precision="bf16", save_every=500, resume="latest", seed=42)
run(stage, model, data, train)

# 5. Retrieval with both views (main process only).
if PartialState().is_main_process:
    from transformers import AutoModel

    twn = AutoModel.from_pretrained("runs/twn-4b/2-embed", trust_remote_code=True, dtype=torch.bfloat16,
                                    device_map="cuda")
    queries = twn.encode(["a dog catching a frisbee", "a bowl of ramen"], think="never")
    documents = twn.encode(["A photo of a dog playing in a park.", "Noodle soup with egg and pork."], think="never")
    print(queries @ documents.T)
