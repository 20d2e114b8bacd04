"""What a training stage is: the parameters it trains, its loss, and optional hooks around the shared loop."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from twn_hf.train.collate import collate_examples


@dataclass
class TrainContext:
    """Everything a stage needs from the loop (`loop.run` builds it)."""

    accelerator: object
    model: object
    model_config: object
    data_config: object
    train_config: object
    rows: object  # the datasets.Dataset
    dataset: object  # RowDataset over `rows`
    indices: list[int]  # usable row numbers (after stage filtering and the optional scan)
    step: int = 0
    optimizer_step: object = None  # callable set by the loop: sync gradients, clip, step, zero
    extras: dict = field(default_factory=dict)

    @property
    def device(self):
        return self.accelerator.device

    def autocast(self):
        return self.accelerator.autocast()


def mean_metrics(metrics: list[dict]) -> dict:
    keys = {k for m in metrics for k in m}
    return {k: sum(m[k] for m in metrics if k in m) / sum(1 for m in metrics if k in m) for k in sorted(keys)}


class Stage:
    """Subclasses set `name` and implement `trainable_parameters` and `loss`; the other hooks are optional."""

    name = ""

    def __init__(self, config):
        self.config = config

    def select_rows(self, ctx: TrainContext) -> list[int]:
        """Rows this stage can use (before the optional scan); all by default."""
        return list(range(len(ctx.rows)))

    def setup(self, ctx: TrainContext) -> None:
        """After model and data are loaded, before the optimizer is built (e.g. gate labelling)."""

    def trainable_parameters(self, model) -> list[torch.nn.Parameter]:
        raise NotImplementedError

    def training_data(self, ctx: TrainContext):
        """(dataset, indices, collate_fn) the loop iterates over."""
        return ctx.dataset, ctx.indices, collate_examples

    def loss(self, ctx: TrainContext, batch) -> tuple[torch.Tensor | None, dict]:
        raise NotImplementedError

    def train_step(self, ctx: TrainContext, batches: list) -> dict:
        """One optimizer step over `batches` (the gradient-accumulation micro-batches)."""
        metrics = []
        for batch in batches:
            with ctx.autocast():
                loss, values = self.loss(ctx, batch)
            if loss is not None and loss.requires_grad:
                (loss / len(batches)).backward()
            metrics.append(values)
        ctx.optimizer_step()
        return mean_metrics(metrics)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def finish(self, ctx: TrainContext) -> dict:
        """After the last step, before the model is saved; returns a summary (written to training_summary.json)."""
        return {}
