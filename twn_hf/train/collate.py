"""Batches: which rows each process reads at each step, and how rows become a batch.

Data order is a pure function of (seed, epoch): every epoch is one seeded permutation, cut into *global* batches
of `batch_size x num_processes` rows; process `r` takes slice `r` of each global batch. So a run on 2 processes
with batch 4 sees exactly the rows a 1-process run with batch 8 sees, and resuming needs only the number of
micro-batches consumed so far (the "data position").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, Sampler

from twn_hf.modeling.inputs_twn import TWNInput
from twn_hf.train.data import BadRow, Example


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's slice of each global batch of one epoch, starting at global batch `start`."""

    def __init__(self, indices, batch_size: int, num_processes: int, rank: int, seed: int, epoch: int, start: int = 0):
        self.indices = list(indices)
        self.batch_size = batch_size
        self.num_processes = num_processes
        self.rank = rank
        self.seed = seed
        self.epoch = epoch
        self.start = start

    @staticmethod
    def batches_per_epoch(num_rows: int, batch_size: int, num_processes: int) -> int:
        return num_rows // (batch_size * num_processes)  # the incomplete last global batch is dropped

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch(len(self.indices), self.batch_size, self.num_processes) - self.start)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.indices), generator=generator).tolist()
        global_size = self.batch_size * self.num_processes
        total = self.batches_per_epoch(len(self.indices), self.batch_size, self.num_processes)
        for batch in range(self.start, total):
            chunk = order[batch * global_size : (batch + 1) * global_size]
            mine = chunk[self.rank * self.batch_size : (self.rank + 1) * self.batch_size]
            yield [self.indices[i] for i in mine]


@dataclass
class Batch:
    """One process's micro-batch: parallel lists over the good rows, plus the rows that failed to load."""

    rows: list[int] = field(default_factory=list)
    queries: list[TWNInput] = field(default_factory=list)
    positives: list[TWNInput] = field(default_factory=list)
    negatives: list[TWNInput] = field(default_factory=list)  # all rows' hard negatives, flattened
    query_cots: list[str | None] = field(default_factory=list)
    positive_cots: list[str | None] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def collate_examples(items: list[Example | BadRow]) -> Batch:
    batch = Batch()
    for item in items:
        if isinstance(item, BadRow):
            batch.bad_rows.append(item)
            continue
        batch.rows.append(item.row)
        batch.queries.append(item.query)
        batch.positives.append(item.positive)
        batch.negatives.extend(item.negatives)
        batch.query_cots.append(item.query_cot)
        batch.positive_cots.append(item.positive_cot)
    return batch


def iterate_batches(dataset, indices, collate_fn, batch_size: int, num_processes: int, rank: int, seed: int,
                    start: int = 0, num_workers: int = 0):
    """Endless micro-batches for this process, epoch after epoch, from micro-batch number `start` on."""
    per_epoch = ShardedBatchSampler.batches_per_epoch(len(indices), batch_size, num_processes)
    if per_epoch == 0:
        raise ValueError(f"{len(indices)} usable rows is less than one global batch "
                         f"({batch_size} x {num_processes} processes)")
    position = start
    while True:
        epoch, offset = divmod(position, per_epoch)
        sampler = ShardedBatchSampler(indices, batch_size, num_processes, rank, seed, epoch, offset)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_fn, num_workers=num_workers)
        for batch in loader:
            position += 1
            yield batch
