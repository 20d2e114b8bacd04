"""Resumable intermediate checkpoints: `output_dir/checkpoints/step-0000500/`.

```
parts.safetensors       every TWN part that training can change: both adapters, queries, gate (not the backbone)
optimizer.pt            optimizer state;  scheduler.pt: LR scheduler state
trainer_state.json      step, data position (micro-batches consumed), bad rows seen, the run's config
stage_state.pt          what the stage keeps between steps (e.g. the RL embedding cache)
rng_state_<rank>.pt     python / numpy / torch (/ cuda) RNG states of each process
```

A checkpoint is written to `step-N.tmp` and renamed when complete, so a crash while saving never leaves a
half-written checkpoint that `--resume latest` would pick. The final model is not one of these: it is the TWN
checkpoint (`model.save_pretrained`) in `output_dir` itself.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
PARTS_FILE = "parts.safetensors"
STATE_FILE = "trainer_state.json"


def twn_parts(model) -> dict[str, torch.nn.Parameter]:
    """The parameters a TWN training stage may change, by name: LoRA weights of both adapters, queries, gate."""
    return {name: p for name, p in model.named_parameters()
            if "lora_" in name or name == "queries" or name.startswith("gate.")}


def checkpoint_path(output_dir, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:07d}"


def latest_checkpoint(output_dir) -> Path | None:
    folder = Path(output_dir) / CHECKPOINTS
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
    return found[-1] if found else None


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(accelerator, output_dir, model, optimizer, scheduler, trainer_state: dict, stage_state: dict,
                    keep: int) -> Path:
    final = checkpoint_path(output_dir, trainer_state["step"])
    temporary = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        parts = {name: p.detach().contiguous().cpu() for name, p in twn_parts(model).items()}
        save_file(parts, temporary / PARTS_FILE, metadata={"format": "pt"})
        torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
        torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
        torch.save(stage_state, temporary / "stage_state.pt")
        (temporary / STATE_FILE).write_text(json.dumps(trainer_state, indent=2))
    torch.save(_rng_state(), temporary / f"rng_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        temporary.rename(final)
        old = sorted(p for p in final.parent.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
        for stale in old[: max(0, len(old) - keep)]:
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("saved resumable checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator, path, model, optimizer, scheduler) -> tuple[dict, dict]:
    """Restore model parts, optimizer, scheduler and this process's RNG; returns (trainer_state, stage_state)."""
    path = Path(path)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a training checkpoint (no {STATE_FILE})")
    parts = load_file(path / PARTS_FILE)
    expected = twn_parts(model)
    if set(parts) != set(expected):
        missing, unexpected = sorted(set(expected) - set(parts)), sorted(set(parts) - set(expected))
        raise ValueError(f"{path}: parts do not match the model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    with torch.no_grad():
        for name, parameter in expected.items():
            parameter.copy_(parts[name].to(parameter.dtype))
    device = accelerator.device
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device, weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    stage_state = torch.load(path / "stage_state.pt", map_location=device, weights_only=False)
    rng_file = path / f"rng_state_{accelerator.process_index}.pt"
    if rng_file.is_file():
        _set_rng_state(torch.load(rng_file, weights_only=False))
    else:
        logger.warning("%s has no RNG state for process %d (different number of processes?)", path,
                       accelerator.process_index)
    trainer_state = json.loads((path / STATE_FILE).read_text())
    logger.info("resumed from %s at step %d", path, trainer_state["step"])
    return trainer_state, stage_state
