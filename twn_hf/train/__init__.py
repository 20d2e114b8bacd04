"""TWN training: the four-stage recipe (sft → embed → gate → rl), under `accelerate`.

    from twn_hf.train import DataConfig, EmbedConfig, ModelConfig, TrainConfig, run

    run(EmbedConfig(temperature=0.02), ModelConfig(model="out/sft"), DataConfig(data="train.jsonl"),
        TrainConfig(output_dir="out/embed", batch_size=64))

or `twn train embed --model out/sft --data train.jsonl --output-dir out/embed` (and
`accelerate launch -m twn_hf.train embed ...` for several processes/GPUs). Each stage writes a TWN checkpoint,
`training_config.json`, `training_summary.json`, `train_log.jsonl` and resumable `checkpoints/step-N/`.
"""

from twn_hf.train.config import DataConfig, EmbedConfig, GateConfig, ModelConfig, RLConfig, SFTConfig, TrainConfig
from twn_hf.train.data import BadRowError, convert_mmeb, convert_mmeb_row, load_rows
from twn_hf.train.loop import run

__all__ = [
    "BadRowError",
    "DataConfig",
    "EmbedConfig",
    "GateConfig",
    "ModelConfig",
    "RLConfig",
    "SFTConfig",
    "TrainConfig",
    "convert_mmeb",
    "convert_mmeb_row",
    "load_rows",
    "run",
]
