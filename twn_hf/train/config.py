"""Small config dataclasses for the four training stages (nanochat style: flat, few fields, defaults that work).

A run is `ModelConfig` (where the TWN comes from) + `DataConfig` (the rows) + `TrainConfig` (the loop) + one stage
config (`SFTConfig`, `EmbedConfig`, `GateConfig`, `RLConfig`). The CLI (`twn train <stage>`) turns every field
into a `--flag` (field names are unique across the four classes), and the whole set is written to
`training_config.json` next to the weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


@dataclass
class ModelConfig:
    """Where the starting TWN comes from: a TWN checkpoint (`model`), or a base VLM to wrap (`backbone`)."""

    model: str | None = _help("TWN checkpoint folder or Hub id to start from (the previous stage's output)",
                              default=None)
    backbone: str | None = _help("base Qwen-VL Hub id or folder: build a fresh TWN on it (stage sft from scratch)",
                                 default=None)
    revision: str | None = _help("Hub revision of --model / --backbone", default=None)
    dtype: str = _help("backbone dtype: auto, float32, bfloat16 (trainable parts are kept in float32)", default="auto")
    lora_r: int = _help("LoRA rank when building from --backbone", default=48)
    lora_alpha: int = _help("LoRA alpha when building from --backbone", default=96)
    num_queries: int = _help("K query vectors when building from --backbone", default=8)


@dataclass
class DataConfig:
    """The training rows (format: `twn_hf.train.data`)."""

    data: str | None = _help("JSONL / JSON / parquet file(s) (comma separated) or a Hub dataset id", default=None)
    data_split: str = _help("split to read", default="train")
    data_subset: str | None = _help("Hub dataset config/subset name", default=None)
    image_root: str | None = _help("directory that relative image/frame paths resolve against", default=None)
    on_bad_row: str = _help("what a malformed row does: skip (warn, name it, go on) or fail (stop, naming it)",
                            default="skip")
    scan: bool = _help("validate every row (open every image) before training starts", default=False)
    max_rows: int | None = _help("use only the first N rows", default=None)
    max_negatives: int = _help("hard negatives used per row", default=1)
    num_workers: int = _help("DataLoader worker processes (images are loaded in workers)", default=0)


@dataclass
class TrainConfig:
    """The loop shared by every stage."""

    output_dir: str = _help("where the TWN checkpoint, training_config.json, logs and checkpoints/ go",
                            default="twn-output")
    seed: int = _help("seeds data order, initialisation and sampling", default=42)
    batch_size: int = _help("rows per process per micro-batch", default=8)
    grad_accum: int = _help("micro-batches per optimizer step (negatives are not shared across them)", default=1)
    lr: float = _help("peak learning rate", default=1e-4)
    weight_decay: float = _help("AdamW weight decay", default=0.0)
    warmup_steps: int = _help("linear warm-up steps", default=0)
    schedule: str = _help("learning-rate schedule after warm-up: cosine, linear or constant", default="cosine")
    max_steps: int | None = _help("optimizer steps; default: epochs x steps per epoch", default=None)
    epochs: float = _help("passes over the data when --max-steps is not given", default=1.0)
    max_grad_norm: float = _help("gradient clipping (0: off)", default=1.0)
    mixed_precision: str | None = _help("no or bf16 (autocast; use bf16 on GPUs); default: the accelerate launch "
                                        "config's, else no", default=None)
    gradient_checkpointing: bool = _help("recompute activations in the language-model (CE) passes", default=False)
    save_every: int = _help("write a resumable checkpoint every N steps (0: only at the end)", default=500)
    keep_checkpoints: int = _help("intermediate checkpoints kept", default=2)
    log_every: int = _help("log a line every N steps", default=10)
    resume: str | None = _help("resume from 'latest' (in output_dir/checkpoints) or a checkpoint folder",
                               default=None)
    progress_bar: bool = _help("show a progress bar", default=True)


@dataclass
class SFTConfig:
    """Stage 1: CE on teacher CoT tokens (prompt masked), reasoning adapter only."""

    sft_sides: str = _help("which teacher CoTs to learn: query, positive or both", default="both")


@dataclass
class EmbedConfig:
    """Stage 2: InfoNCE for the embedding adapter + queries over both views."""

    temperature: float = _help("InfoNCE temperature", default=0.02)
    views: str = _help("query views in the loss: both (x and x+c), nothink (x) or think (x+c)", default="both")
    cot_source: str = _help("where c comes from: teacher (query_cot column) or generate (greedy, current reasoning "
                            "adapter)", default="teacher")
    joint: bool = _help("also train the reasoning adapter with stage sft's CE on the same batch", default=False)
    sft_weight: float = _help("weight of the CE loss with --joint", default=1.0)
    detach_interface: bool = _help("stop gradients at the KV cache (the TWN design); --no-detach-interface is the "
                                   "ablation where InfoNCE also trains the reasoning adapter", default=True)


@dataclass
class GateConfig:
    """Stage 3: self-supervised gate labels, class-balanced BCE, threshold chosen on a held-out split."""

    margin: float = _help("label 1 where the think view's retrieval margin beats the no-think one's by more than "
                          "this", default=0.0)
    gate_cot_source: str = _help("CoTs for e1: generate (greedy, as at inference) or teacher", default="generate")
    heldout_fraction: float = _help("labelled rows held out to choose the threshold and report accuracy",
                                    default=0.2)
    target_think_rate: float = _help("the chosen threshold thinks on at most this fraction of held-out inputs",
                                     default=0.5)
    label_pool_size: int = _help("targets each input is ranked against when labelling (rows are labelled in pools "
                                 "of this many)", default=1024)
    label_batch_size: int = _help("rows per forward pass when labelling", default=16)


@dataclass
class RLConfig:
    """Stage 4: embedding-guided policy optimisation of the reasoning adapter (see `stages.rl`)."""

    group_size: int = _help("G: sampled CoTs per query", default=4)
    sample_temperature: float = _help("sampling temperature", default=1.0)
    top_p: float = _help("nucleus sampling", default=1.0)
    max_new_tokens: int | None = _help("CoT length cap (default: the model's max_think_tokens)", default=None)
    reward: str = _help("logprob (log-softmax of the positive among the cache) or mrr (1/rank)", default="logprob")
    reward_temperature: float = _help("softmax temperature of the logprob reward", default=0.02)
    clip_eps: float = _help("PPO clip range of the probability ratio", default=0.2)
    kl_coef: float = _help("weight of the KL to the SFT (starting) reasoning adapter; 0 turns it off", default=0.04)
    updates_per_batch: int = _help("optimizer updates per batch of samples (>1 makes the clip matter)", default=1)
    cache_size: int = _help("target embeddings in the global cache (more than a batch)", default=1024)
    cache_refresh_every: int = _help("re-sample and re-embed the cache every N steps", default=50)
    target_think: str = _help("how targets are embedded for the cache: never, auto or always", default="never")


STAGE_CONFIGS = {"sft": SFTConfig, "embed": EmbedConfig, "gate": GateConfig, "rl": RLConfig}
CHOICES = {
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "on_bad_row": ("skip", "fail"),
    "schedule": ("cosine", "linear", "constant"),
    "mixed_precision": ("no", "bf16"),
    "sft_sides": ("query", "positive", "both"),
    "views": ("both", "nothink", "think"),
    "cot_source": ("teacher", "generate"),
    "gate_cot_source": ("teacher", "generate"),
    "reward": ("logprob", "mrr"),
    "target_think": ("never", "auto", "always"),
}


def check_choices(*configs) -> None:
    """Raise ValueError for a field outside its allowed values (the CLI checks too; this covers the Python API)."""
    for config in configs:
        for f in fields(config):
            value = getattr(config, f.name)
            if f.name in CHOICES and value not in CHOICES[f.name] and not (value is None and f.default is None):
                raise ValueError(f"{f.name} must be one of {CHOICES[f.name]}, got {value!r}")


def config_dict(stage: str, model: ModelConfig, data: DataConfig, train: TrainConfig, stage_config) -> dict:
    """Everything that defines a run, as written to training_config.json."""
    return {"stage": stage, "model": asdict(model), "data": asdict(data), "train": asdict(train),
            stage: asdict(stage_config)}
