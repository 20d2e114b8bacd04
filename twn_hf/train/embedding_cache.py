"""The global embedding cache of stage `rl`: a bank of target embeddings, bigger than any batch.

Every `refresh_every` steps the cache draws `size` rows at random (seeded: the draw depends only on the seed and
the refresh count) and re-embeds their positives with the current model, so rewards are computed against many
more targets than a batch holds. In a multi-process run each process embeds a slice of the rows and the slices
are gathered (see `stages.rl`), so every process holds the same cache.
"""

from __future__ import annotations

import torch


class EmbeddingCache:
    def __init__(self, size: int, refresh_every: int, num_rows: int, seed: int):
        if size < 1 or refresh_every < 1:
            raise ValueError("cache size and refresh interval must be positive")
        self.size = min(size, num_rows)
        self.refresh_every = refresh_every
        self.num_rows = num_rows
        self.seed = seed
        self.refreshes = 0
        self.refreshed_at: int | None = None
        self.embeddings: torch.Tensor | None = None  # (M, d)
        self.rows: torch.Tensor | None = None  # (M,) dataset row of each entry

    def due(self, step: int) -> bool:
        return self.refreshed_at is None or step - self.refreshed_at >= self.refresh_every

    def sample_rows(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 7_919 + self.refreshes)
        return sorted(torch.randperm(self.num_rows, generator=generator)[: self.size].tolist())

    def refresh(self, step: int, embed_fn) -> None:
        """`embed_fn(rows) -> (embeddings (M', d), rows (M',))` embeds the positives of `rows` (skipping bad ones)."""
        embeddings, rows = embed_fn(self.sample_rows())
        self.embeddings = embeddings.detach()
        self.rows = torch.as_tensor(rows, dtype=torch.long, device=embeddings.device)
        self.refreshed_at = step
        self.refreshes += 1

    def maybe_refresh(self, step: int, embed_fn) -> bool:
        if not self.due(step):
            return False
        self.refresh(step, embed_fn)
        return True

    def exclusion_mask(self, rows) -> torch.Tensor:
        """(N, M) True where cache entry j is the positive of query row `rows[i]` (it is scored separately)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.rows.device)
        return rows[:, None] == self.rows[None, :]

    def state_dict(self) -> dict:
        return {"refreshes": self.refreshes, "refreshed_at": self.refreshed_at,
                "embeddings": self.embeddings, "rows": self.rows}

    def load_state_dict(self, state: dict) -> None:
        self.refreshes = state["refreshes"]
        self.refreshed_at = state["refreshed_at"]
        self.embeddings = state["embeddings"]
        self.rows = state["rows"]
