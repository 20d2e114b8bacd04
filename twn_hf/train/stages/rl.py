"""Stage `rl`: embedding-guided policy optimisation of the reasoning adapter.

Each step, for every query in the batch:

1. Sample G CoTs c_1..c_G from the reasoning adapter (temperature / top-p; the shared-cache decode loop of
   inference: one prefill, decode, the queries appended after x ⊕ c_g).
2. Embed each x ⊕ c_g with the *frozen* embedding path → e1_g.
3. Reward r_g: how well e1_g retrieves the query's positive against the global embedding cache
   (`EmbeddingCache`: target embeddings of `cache_size` random rows, re-drawn and re-embedded with the current
   model every `cache_refresh_every` steps, the same on every process): log-softmax of the positive at
   `reward_temperature` (default) or 1/rank (`--reward mrr`). The query's own positive is scored separately,
   never counted twice.
4. Advantage A_g = (r_g - mean_G r) / (std_G r + 1e-4) within the group.
5. Loss per CoT token t: -min(ρ_t A, clip(ρ_t, 1 - ε, 1 + ε) A) + β KL_t, with ρ_t = π(c_t) / π_old(c_t) and KL_t
   the k3 estimate against the reasoning adapter as it was when the stage started (the SFT adapter);
   averaged over each CoT's tokens, then over CoTs. `updates_per_batch` optimizer updates reuse one batch of
   samples (with 1, ρ ≡ 1 and the clip never binds).

Note: the reasoning adapter also writes the KV cache that every embedding (e0 included) reads, so this stage moves
the targets and the no-think embeddings too; that is why the cache is refreshed from the current model, and why
the KL matters. A learning rate that is too high collapses the embeddings (every reward tends to -log(cache size));
watch `reward` in the log, and consider re-running stage `gate` afterwards.

How this differs from GRPO (DeepSeekMath, Shao et al. 2024):
- The reward is not a verifier or reward model on the answer: it is a retrieval score of the *embedding* the CoT
  leads to, against a cache of target embeddings; there is no answer and no format reward.
- Only the reasoning LoRA is the policy; the embedding adapter, queries and gate are frozen and form the reward
  function. Through the detached KV cache no gradient reaches them.
- The reference policy for the KL is the reasoning adapter at the start of the stage, swapped in for a no-grad
  pass (no second model copy); β defaults to 0.04 as in GRPO.
- The std is the population std, with eps 1e-4; groups with equal rewards contribute nothing.
- The LR scheduler advances once per batch of samples, however many optimizer updates reuse it.
- Sampling log-probabilities are recomputed in a teacher-forced pass (temperature applied, top-p ignored), as TRL
  does, rather than kept from the decode loop.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import LogitsProcessorList, SuppressTokensLogitsProcessor

from twn_hf.modeling.decoding_twn import GenerationSettings
from twn_hf.train.data import BadRow
from twn_hf.train.embedding_cache import EmbeddingCache
from twn_hf.train.lm import label_logprobs
from twn_hf.train.losses import gather_padded
from twn_hf.train.rewards import clipped_objective, group_advantages, kl_estimate, retrieval_reward, sequence_mean
from twn_hf.train.stages.base import Stage, mean_metrics


@dataclass
class SamplingSettings(GenerationSettings):
    """`GenerationSettings` that never sample the vision placeholder tokens: a CoT holding an `<|image_pad|>`
    could not be re-read in the teacher-forced pass (the backbone would look for image features for it)."""

    suppress_token_ids: tuple[int, ...] = ()

    def logits_processors(self) -> LogitsProcessorList:
        processors = LogitsProcessorList()
        if self.suppress_token_ids:
            processors.append(SuppressTokensLogitsProcessor(self.suppress_token_ids))
        processors.extend(super().logits_processors())
        return processors


def vision_token_ids(model) -> tuple[int, ...]:
    config = model.backbone.config
    names = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return tuple(sorted({getattr(config, n) for n in names if getattr(config, n, None) is not None}))


@dataclass
class Rollout:
    features: dict  # x ⊕ c for every sample (B·G rows)
    labels: torch.Tensor  # the sampled CoT tokens, -100 elsewhere
    advantages: torch.Tensor  # (B·G,)
    old_logprobs: torch.Tensor | None
    ref_logprobs: torch.Tensor | None
    metrics: dict


def as_input(item) -> dict:
    """A `TWNInput` as the dict `encode` accepts."""
    return {"text": item.text, "images": list(item.images), "video": item.video, "instruction": item.instruction}


@contextmanager
def swapped_parameters(parameters: list[torch.nn.Parameter], values: list[torch.Tensor]):
    """Temporarily load `values` into `parameters` (no gradient), restoring them afterwards."""
    saved = [p.detach().clone() for p in parameters]
    with torch.no_grad():
        for p, v in zip(parameters, values):
            p.copy_(v)
    try:
        yield
    finally:
        with torch.no_grad():
            for p, v in zip(parameters, saved):
                p.copy_(v)


class RLStage(Stage):
    name = "rl"

    def trainable_parameters(self, model):
        return model.adapter_parameters(model.config.reasoning_adapter)

    def setup(self, ctx):
        self.reference = None
        if self.config.kl_coef > 0:
            self.reference = [p.detach().clone() for p in self.trainable_parameters(ctx.model)]
        self.cache = EmbeddingCache(self.config.cache_size, self.config.cache_refresh_every, len(ctx.indices),
                                    ctx.train_config.seed)
        if self.cache.size <= ctx.train_config.batch_size * ctx.accelerator.num_processes:
            raise ValueError(f"the embedding cache ({self.cache.size} targets) must be larger than a global batch")

    # ----- targets ---------------------------------------------------------------------------------------------
    def embed_targets(self, ctx, items) -> torch.Tensor:
        embeddings = ctx.model.encode([as_input(i) for i in items], think=self.config.target_think,
                                      batch_size=ctx.train_config.batch_size)
        return embeddings.clone().to(ctx.device)  # a normal tensor (encode returns inference-mode tensors)

    def _embed_cache_rows(self, ctx, positions):
        """Embed the positives of `positions` (into ctx.indices), this process's share, then gather."""
        accelerator = ctx.accelerator
        mine = positions[accelerator.process_index :: accelerator.num_processes]
        examples = [ctx.dataset[ctx.indices[p]] for p in mine]
        good = [e for e in examples if not isinstance(e, BadRow)]
        hidden = ctx.model.config.hidden_size
        if good:
            with ctx.autocast():
                embeddings = self.embed_targets(ctx, [e.positive for e in good]).float()
        else:
            embeddings = torch.zeros(0, hidden, device=ctx.device)
        rows = torch.tensor([e.row for e in good], dtype=torch.long, device=ctx.device)
        return gather_padded(embeddings), gather_padded(rows)

    # ----- sampling --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, ctx, batch, micro: int) -> Rollout | None:
        model, config = ctx.model, self.config
        if not len(batch):
            return None
        group = config.group_size
        items = [q for q in batch.queries for _ in range(group)]
        rows = [r for r in batch.rows for _ in range(group)]
        features = model.prepare_features(items)
        input_ids, attention_mask = features.pop("input_ids"), features.pop("attention_mask")
        generator = torch.Generator(device=ctx.device).manual_seed(
            ctx.train_config.seed * 1_000_003 + ctx.step * 1_009 + ctx.accelerator.process_index * 31 + micro)
        settings = SamplingSettings(max_new_tokens=config.max_new_tokens or model.config.max_think_tokens,
                                    do_sample=True, temperature=config.sample_temperature, top_p=config.top_p,
                                    suppress_token_ids=vision_token_ids(model))
        last_hidden, cache, next_positions = model.prefill(input_ids, attention_mask, **features)
        result = model.think(cache, attention_mask, next_positions, last_hidden, settings, generator=generator)
        e1 = model.pool(model.query_states(cache, result.attention_mask, result.next_positions))
        del cache

        positives = self.embed_targets(ctx, batch.positives).repeat_interleave(group, dim=0)
        rewards = retrieval_reward(e1, positives, self.cache.embeddings, self.cache.exclusion_mask(rows),
                                   config.reward, config.reward_temperature)
        advantages = group_advantages(rewards, group)

        # x ⊕ c as one teacher-forced sequence: prompt (left padded) then the sampled tokens (right padded).
        tokens = result.tokens
        token_mask = torch.arange(tokens.shape[1], device=tokens.device)[None] < result.num_tokens[:, None]
        full = dict(features)
        full["input_ids"] = torch.cat([input_ids, tokens], dim=1)
        full["attention_mask"] = torch.cat([attention_mask, token_mask.long()], dim=1)
        full["mm_token_type_ids"] = torch.cat([features["mm_token_type_ids"], torch.zeros_like(tokens)], dim=1)
        labels = torch.cat([torch.full_like(input_ids, -100), tokens.masked_fill(~token_mask, -100)], dim=1)

        old = ref = None
        if config.updates_per_batch > 1:
            old, _ = label_logprobs(model, full, labels, config.sample_temperature)
        if self.reference is not None:
            with swapped_parameters(self.trainable_parameters(model), self.reference):
                ref, _ = label_logprobs(model, full, labels, config.sample_temperature)
        metrics = {"reward": rewards.mean().item(), "reward_std": rewards.std(unbiased=False).item(),
                   "cot_tokens": result.num_tokens.float().mean().item()}
        return Rollout(full, labels, advantages, old, ref, metrics)

    # ----- update ----------------------------------------------------------------------------------------------
    def policy_loss(self, ctx, rollout: Rollout) -> tuple[torch.Tensor, dict]:
        config = self.config
        logprobs, rows = label_logprobs(ctx.model, rollout.features, rollout.labels, config.sample_temperature,
                                        ctx.train_config.gradient_checkpointing)
        old = rollout.old_logprobs if rollout.old_logprobs is not None else logprobs.detach()
        per_token, clipped = clipped_objective(logprobs, old, rollout.advantages[rows], config.clip_eps)
        metrics = {"clip_fraction": clipped.float().mean().item()}
        if rollout.ref_logprobs is not None:
            kl = kl_estimate(logprobs, rollout.ref_logprobs)
            per_token = per_token + config.kl_coef * kl
            metrics["kl"] = kl.mean().item()
        loss = sequence_mean(per_token, rows, len(rollout.advantages)).mean()
        metrics["loss"] = loss.item()
        return loss, metrics

    def train_step(self, ctx, batches):
        self.cache.maybe_refresh(ctx.step, lambda positions: self._embed_cache_rows(ctx, positions))
        model = ctx.model
        was_training = model.training
        model.eval()  # sampling and rewards as at inference
        with ctx.autocast():
            rollouts = [self.rollout(ctx, batch, micro) for micro, batch in enumerate(batches)]
        model.train(was_training)
        metrics = [r.metrics for r in rollouts if r is not None]
        last = self.config.updates_per_batch - 1
        for update in range(self.config.updates_per_batch):
            for rollout in rollouts:
                if rollout is None:
                    continue
                with ctx.autocast():
                    loss, values = self.policy_loss(ctx, rollout)
                (loss / len(batches)).backward()
                if last > 0 and update in (0, last):  # the surrogate falls as updates reuse the samples
                    values[f"loss_{'first' if update == 0 else 'last'}_update"] = values["loss"]
                metrics.append(values)
            ctx.optimizer_step()
        result = mean_metrics(metrics)
        result["cache_refreshes"] = float(self.cache.refreshes)
        return result

    def state_dict(self):
        # The KL reference is not saved: `setup` takes it from the starting model again on resume.
        return {"cache": self.cache.state_dict()}

    def load_state_dict(self, state):
        self.cache.load_state_dict(state["cache"])
