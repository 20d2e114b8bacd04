"""Stage `gate`: teach the gate MLP when thinking pays off, and pick the default threshold.

1. Label (no gradients, once): for every usable row, e0 = the query's no-think embedding (and the query states the
   gate reads), e1 = its think embedding (CoT: greedy from the reasoning adapter as at inference, or the teacher's),
   and the positive's x-view embedding. Rows are ranked against the positives of their pool (`label_pool_size`
   rows); label = 1 where margin(e1) - margin(e0) > `margin` (`gate_labels`). The labelled data is kept in
   `output_dir/gate_data.pt` and reused on resume.
2. Train the gate on the train split with class-balanced BCE. Only the gate changes, so its input features are
   computed once in step 1 (the mean of the K query states, exactly what `TWNGate` pools).
3. On the held-out split: report label rate and gate accuracy, and choose the threshold with the best retrieval
   quality at a think rate <= `target_think_rate` (`choose_threshold`); it is saved as `config.think_threshold`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from twn_hf.modeling.decoding_twn import GenerationSettings
from twn_hf.train.data import BadRow
from twn_hf.train.gate_labels import choose_threshold, gate_accuracy, gate_labels, retrieval_margin
from twn_hf.train.losses import balanced_bce, gather_padded
from twn_hf.train.stages.base import Stage

logger = logging.getLogger(__name__)

GATE_DATA = "gate_data.pt"


class _Features(Dataset):
    def __init__(self, states, labels):
        self.states, self.labels = states, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.states[index], self.labels[index]


def _collate(items):
    return torch.stack([s for s, _ in items]), torch.stack([y for _, y in items])


@torch.no_grad()
def embed_views(model, items, cots=None):
    """(pooled query states (N, d), e0 (N, d), e1 (N, d)) for `items`; e1 from `cots` or a greedy CoT."""
    features = model.prepare_features(items)
    input_ids, attention_mask = features.pop("input_ids"), features.pop("attention_mask")
    last_hidden, cache, next_positions = model.prefill(input_ids, attention_mask, **features)
    states = model.query_states(cache, attention_mask, next_positions)
    e0 = model.pool(states)
    if cots is None:
        settings = GenerationSettings(max_new_tokens=model.config.max_think_tokens)
        result = model.think(cache, attention_mask, next_positions, last_hidden, settings)
        e1 = model.pool(model.query_states(cache, result.attention_mask, result.next_positions))
    else:
        e1 = e0.clone()
        rows = [i for i, c in enumerate(cots) if c]
        if rows:
            think = model.prepare_features([items[i] for i in rows], cots=[cots[i] for i in rows])
            think.pop("labels")
            e1[rows] = model(**think).embeddings
    return states.float().mean(dim=1), e0, e1


class GateStage(Stage):
    name = "gate"

    def trainable_parameters(self, model):
        return list(model.gate.parameters())

    # ----- 1. labelling ----------------------------------------------------------------------------------------
    def setup(self, ctx):
        path = Path(ctx.train_config.output_dir) / GATE_DATA
        if ctx.train_config.resume and path.is_file():
            data = torch.load(path, map_location=ctx.device, weights_only=True)
            logger.info("reusing gate labels from %s", path)
        else:
            data = self._label(ctx)
            if ctx.accelerator.is_main_process:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save({k: v.cpu() for k, v in data.items()}, path)
        self.data = data
        train, heldout = data["split"] == 0, data["split"] == 1
        self.positive_rate = float(data["labels"][train].mean()) if train.any() else 0.0
        logger.info("gate labels: %d train rows (label rate %.3f), %d held-out rows (label rate %.3f)",
                    int(train.sum()), self.positive_rate, int(heldout.sum()),
                    float(data["labels"][heldout].mean()) if heldout.any() else float("nan"))
        if self.positive_rate in (0.0, 1.0):
            logger.warning("every training label is %d: thinking %s; the gate can only learn a constant",
                           int(self.positive_rate), "always helps" if self.positive_rate else "never helps")

    def _label(self, ctx) -> dict:
        model, config, accelerator = ctx.model, self.config, ctx.accelerator
        was_training = model.training
        model.eval()
        rows = ctx.indices[accelerator.process_index :: accelerator.num_processes]
        size = config.label_batch_size
        parts = {"row": [], "state": [], "e0": [], "e1": [], "target": []}
        starts = tqdm(range(0, len(rows), size), desc="Labelling gate inputs", unit="batch",
                      disable=not (accelerator.is_main_process and ctx.train_config.progress_bar))
        for start in starts:
            examples = [ctx.dataset[r] for r in rows[start : start + size]]
            good = [e for e in examples if not isinstance(e, BadRow)]
            for bad in (e for e in examples if isinstance(e, BadRow)):
                logger.warning("gate labelling: skipping bad row %s", bad)
            if not good:
                continue
            with ctx.autocast():
                cots = [e.query_cot for e in good] if config.gate_cot_source == "teacher" else None
                state, e0, e1 = embed_views(model, [e.query for e in good], cots)
                target = _x_view(model, [e.positive for e in good])
            parts["row"].append(torch.tensor([e.row for e in good], device=ctx.device))
            for key, value in (("state", state), ("e0", e0), ("e1", e1), ("target", target)):
                parts[key].append(value.float())
        model.train(was_training)
        empty = {"row": torch.zeros(0, dtype=torch.long, device=ctx.device)}
        empty.update({k: torch.zeros(0, model.config.hidden_size, device=ctx.device) for k in parts if k != "row"})
        data = {k: gather_padded(torch.cat(v) if v else empty[k]) for k, v in parts.items()}
        order = torch.argsort(data["row"])  # the same order whatever the number of processes
        data = {k: v[order] for k, v in data.items()}
        return self._score(data, ctx.train_config.seed)

    def _score(self, data: dict, seed: int) -> dict:
        n = len(data["row"])
        if n == 0:
            raise ValueError("stage gate: no usable rows to label")
        generator = torch.Generator().manual_seed(seed)
        permutation = torch.randperm(n, generator=generator)
        heldout = min(n - 1, math.ceil(self.config.heldout_fraction * n)) if self.config.heldout_fraction > 0 else 0
        split = torch.zeros(n, dtype=torch.long)
        split[permutation[:heldout]] = 1
        margin0, margin1 = torch.zeros(n), torch.zeros(n)
        for part in (0, 1):
            members = (split == part).nonzero().flatten()
            for start in range(0, len(members), self.config.label_pool_size):
                pool = members[start : start + self.config.label_pool_size]
                targets = data["target"][pool.to(data["target"].device)]
                index = torch.arange(len(pool), device=targets.device)
                margin0[pool] = retrieval_margin(data["e0"][pool.to(targets.device)], targets, index).cpu()
                margin1[pool] = retrieval_margin(data["e1"][pool.to(targets.device)], targets, index).cpu()
        labels = gate_labels(margin0, margin1, self.config.margin)
        device = data["state"].device
        return {"row": data["row"], "state": data["state"], "labels": labels.to(device), "split": split.to(device),
                "margin0": margin0.to(device), "margin1": margin1.to(device)}

    # ----- 2. training -----------------------------------------------------------------------------------------
    def training_data(self, ctx):
        train = (self.data["split"] == 0).nonzero().flatten()
        dataset = _Features(self.data["state"][train], self.data["labels"][train])
        return dataset, list(range(len(train))), _collate

    def loss(self, ctx, batch):
        states, labels = batch
        states, labels = states.to(ctx.device), labels.to(ctx.device)
        logits = ctx.model.gate(states[:, None, :])
        loss = balanced_bce(logits, labels, self.positive_rate)
        accuracy = ((logits > 0).float() == labels).float().mean()
        return loss, {"loss": loss.item(), "accuracy": accuracy.item()}

    # ----- 3. threshold ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def finish(self, ctx):
        model, data = ctx.model, self.data
        heldout = data["split"] == 1
        if not heldout.any():
            logger.warning("no held-out rows (heldout_fraction=%s): choosing the threshold on the training rows",
                           self.config.heldout_fraction)
            heldout = torch.ones_like(heldout)
        probabilities = torch.sigmoid(model.gate(data["state"][heldout][:, None, :]).float()).cpu()
        labels = data["labels"][heldout].cpu()
        choice = choose_threshold(probabilities, data["margin0"][heldout].cpu() > 0, data["margin1"][heldout].cpu() > 0,
                                  self.config.target_think_rate)
        model.config.think_threshold = float(choice["threshold"])
        report = {
            "label_rate_train": self.positive_rate,
            "label_rate_heldout": float(labels.mean()),
            "heldout_rows": int(heldout.sum()),
            "gate_accuracy_at_0.5": gate_accuracy(probabilities, labels, 0.5),
            "gate_accuracy_at_threshold": gate_accuracy(probabilities, labels, choice["threshold"]),
            "threshold": choice["threshold"],
            "think_rate_at_threshold": choice["think_rate"],
            "hit_rate_at_threshold": choice["quality"],
            "hit_rate_never": float((data["margin0"][heldout] > 0).float().mean()),
            "hit_rate_always": float((data["margin1"][heldout] > 0).float().mean()),
        }
        logger.info("gate: label rate %.3f (train) / %.3f (held-out); held-out accuracy %.3f at 0.5; threshold %.4f "
                    "thinks on %.1f%% with hit@1 %.3f (never %.3f, always %.3f)", report["label_rate_train"],
                    report["label_rate_heldout"], report["gate_accuracy_at_0.5"], report["threshold"],
                    100 * report["think_rate_at_threshold"], report["hit_rate_at_threshold"],
                    report["hit_rate_never"], report["hit_rate_always"])
        return {"gate": report}


def _x_view(model, items) -> torch.Tensor:
    with torch.no_grad():
        features = model.prepare_features(items)
        return model(**features).embeddings
