"""`TWNModel`: a frozen Qwen-VL backbone, two LoRA adapters, K query vectors and a gate.

The remote code of every TWN checkpoint (`AutoModel.from_pretrained(..., trust_remote_code=True)`).
It wraps the installed transformers backbone classes instead of vendoring them and imports only
torch, transformers, peft, PIL and its sibling files. See DESIGN.md §1 for the flow:

    prefill x (reasoning) ─► cache C(x) ─► queries (embedding, stop-gradient on C) ─► H ─► e₀, p(think)
                                  └─► decode CoT c (reasoning) ─► queries after x ⊕ c ─► e₁
"""

from __future__ import annotations

import logging
import warnings
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForImageTextToText, DynamicCache, PreTrainedModel
from transformers.utils import ModelOutput

from .checkpoint_twn import TWNCheckpointMixin
from .configuration_twn import TWNConfig
from .cost_twn import cost_report, parameter_overhead
from .decoding_twn import GenerationSettings, decode, fork_cache, text_positions
from .encoding_twn import TWNEncodeMixin

logger = logging.getLogger(__name__)

# The backbone families TWN supports and their transformers classes. Everything else about a family
# is handled by the class itself (positions via `get_rope_index`, vision inputs via the processor).
SUPPORTED_BACKBONES = {
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen2_vl": "Qwen2VLForConditionalGeneration",
}


class TWNGate(nn.Module):
    """p(think) from the mean of the K query hidden states."""

    def __init__(self, hidden_size: int, gate_hidden_size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden_size, gate_hidden_size), nn.GELU(), nn.Linear(gate_hidden_size, 1)
        )

    def forward(self, query_states: torch.Tensor) -> torch.Tensor:
        pooled = query_states.mean(dim=1)
        return self.net(pooled.to(self.net[0].weight.dtype)).squeeze(-1)


@dataclass
class TWNOutput(ModelOutput):
    """What `TWNModel.forward` returns.

    loss: CE on `labels` (reasoning adapter), when labels are given.
    logits: LM logits over the input (reasoning adapter), when labels are given or asked for.
    embeddings: pooled (and, per config, L2-normalised) embedding after the input, float32.
    query_hidden_states: (B, K, d) hidden states of the query tokens (embedding adapter).
    gate_logits: (B,) gate logits read from the detached query states.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    query_hidden_states: torch.Tensor | None = None
    gate_logits: torch.Tensor | None = None


class TWNPreTrainedModel(PreTrainedModel):
    config_class = TWNConfig
    base_model_prefix = "twn"
    supports_gradient_checkpointing = True
    _supports_sdpa = True


class TWNModel(TWNCheckpointMixin, TWNEncodeMixin, TWNPreTrainedModel):
    """Think-When-Needed multimodal embedder. Use `encode` for inference and `forward` for training."""

    def __init__(self, config: TWNConfig, backbone: PreTrainedModel | None = None):
        super().__init__(config)
        if config.backbone_config is None:
            raise ValueError("TWNConfig.backbone_config is required to build a TWNModel")
        model_type = config.backbone_config.model_type
        if model_type not in SUPPORTED_BACKBONES:
            raise ValueError(f"unsupported backbone {model_type!r}; supported: {sorted(SUPPORTED_BACKBONES)}")
        if backbone is None:
            # Random init from the embedded config: no file or network access here. `from_pretrained`
            # and `build_twn` pass a backbone with real weights instead.
            backbone = AutoModelForImageTextToText.from_config(config.backbone_config)
        self.backbone = backbone
        self.backbone.requires_grad_(False)
        self._inject_adapters()
        hidden = config.hidden_size
        std = getattr(config.text_config, "initializer_range", 0.02)
        dtype = self.backbone.get_input_embeddings().weight.dtype
        self.queries = nn.Parameter(torch.randn(config.num_queries, hidden, dtype=dtype) * std)
        self.gate = TWNGate(hidden, config.gate_hidden_size).to(dtype)
        self.processor = None  # attached by from_pretrained / build_twn; needed by `encode`

    # ----- adapters -------------------------------------------------------------------------
    def _inject_adapters(self) -> None:
        from peft import inject_adapter_in_model

        for name in (self.config.reasoning_adapter, self.config.embedding_adapter):
            with warnings.catch_warnings():
                # Two named adapters on one model is the design; peft warns about the second one.
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                inject_adapter_in_model(self.lora_config(), self.backbone, adapter_name=name)
        self._lora_layers = [m for m in self.backbone.modules() if hasattr(m, "lora_A")]
        if not self._lora_layers:
            raise ValueError(f"lora_target_modules {self.config.lora_target_modules!r} matched no backbone module")
        self._active_adapter = None
        self.set_active_adapter(self.config.reasoning_adapter)

    def lora_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.config.lora_r,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=self.config.lora_target_modules,
            bias="none",
            base_model_name_or_path=self.config.backbone_name_or_path,
            revision=self.config.backbone_revision,
        )

    def set_active_adapter(self, name: str) -> None:
        """Route the backbone through adapter `name` without touching any `requires_grad` flag.

        peft's `set_adapter` also flips `requires_grad`, which would undo what a training stage froze,
        so the flags are restored right after.
        """
        if name == self._active_adapter:
            return
        flags = [(p, p.requires_grad) for layer in self._lora_layers for p in layer.parameters()]
        for layer in self._lora_layers:
            layer.set_adapter(name)
        for parameter, flag in flags:
            parameter.requires_grad_(flag)
        self._active_adapter = name

    def adapter_parameters(self, name: str) -> list[nn.Parameter]:
        return [p for n, p in self.backbone.named_parameters() if "lora_" in n and f".{name}." in n]

    # ----- the shared-cache flow ------------------------------------------------------------
    def _language_model(self):
        return self.backbone.model.language_model

    def new_cache(self) -> DynamicCache:
        return DynamicCache(config=self.backbone.config.get_text_config(decoder=True))

    def prefill(self, input_ids, attention_mask, cache=None, **vision_inputs):
        """Run the input through the backbone with the reasoning adapter, filling `cache`.

        Returns (last_hidden_state, cache, next_positions): `next_positions[b]` is the text position
        of the first token after row b's input (left padding and M-RoPE offsets included).
        """
        if "mm_token_type_ids" not in vision_inputs:  # text-only features built by hand
            vision_inputs["mm_token_type_ids"] = torch.zeros_like(input_ids)
        self.set_active_adapter(self.config.reasoning_adapter)
        cache = self.new_cache() if cache is None else cache
        rope_kwargs = {k: v for k, v in vision_inputs.items() if k != "pixel_values" and k != "pixel_values_videos"}
        position_ids, rope_deltas = self.backbone.model.get_rope_index(
            input_ids, attention_mask=attention_mask, **rope_kwargs
        )
        outputs = self.backbone.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=cache,
            use_cache=True,
            **vision_inputs,
        )
        # `get_rope_index` measures deltas against each row's unpadded length.
        next_positions = attention_mask.sum(dim=1) + rope_deltas.reshape(-1).to(input_ids.device)
        return outputs.last_hidden_state, cache, next_positions

    def query_states(self, cache, attention_mask, next_positions, detach: bool | None = None):
        """Append the K query vectors after the cached input (embedding adapter) → (B, K, d).

        The cache itself is left unchanged (the queries go into a fork), so decoding can continue
        from it. With `detach` the queries read a stop-gradient view of the cache.
        """
        detach = self.config.detach_interface if detach is None else detach
        batch, k = attention_mask.shape[0], self.config.num_queries
        self.set_active_adapter(self.config.embedding_adapter)
        query_embeds = self.queries.to(self.backbone.dtype)[None].expand(batch, -1, -1)
        mask = torch.cat([attention_mask, attention_mask.new_ones(batch, k)], dim=1)
        outputs = self._language_model()(
            inputs_embeds=query_embeds,
            attention_mask=mask,
            position_ids=text_positions(next_positions, k),
            past_key_values=fork_cache(cache, detach),
            use_cache=True,
        )
        self.set_active_adapter(self.config.reasoning_adapter)
        return outputs.last_hidden_state

    def pool(self, query_states: torch.Tensor) -> torch.Tensor:
        pooled = query_states.mean(dim=1) if self.config.pooling == "mean" else query_states[:, -1]
        pooled = pooled.float()
        return F.normalize(pooled, dim=-1) if self.config.normalize else pooled

    def decode_step(self, cache):
        """A `step_fn` for `decode`: one token through the backbone (reasoning adapter) → logits."""

        def step(token_ids, position_ids, attention_mask):
            self.set_active_adapter(self.config.reasoning_adapter)
            outputs = self._language_model()(
                input_ids=token_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                past_key_values=cache,
                use_cache=True,
            )
            return self.backbone.lm_head(outputs.last_hidden_state[:, -1])

        return step

    def think(self, cache, attention_mask, next_positions, last_hidden, settings: GenerationSettings, generator=None):
        """Decode a CoT for every row of `cache` (which grows to `x ⊕ c`) from the prefill's last state."""
        tokenizer = self.processor.tokenizer
        first_logits = self.backbone.lm_head(last_hidden[:, -1])
        return decode(
            self.decode_step(cache),
            first_logits,
            next_positions,
            attention_mask,
            stop_token_ids=self.stop_token_ids(),
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
            settings=settings,
            generator=generator,
        )

    def stop_token_ids(self) -> list[int]:
        tokenizer = self.processor.tokenizer
        ids = {tokenizer.eos_token_id}
        generation_eos = getattr(self.backbone.generation_config, "eos_token_id", None)
        ids.update(generation_eos if isinstance(generation_eos, (list, tuple)) else [generation_eos])
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        if im_end is not None and im_end != tokenizer.unk_token_id:
            ids.add(im_end)
        return sorted(i for i in ids if i is not None)

    # ----- training forward -----------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
        return_logits: bool = False,
        detach_interface: bool | None = None,
        **vision_inputs,
    ) -> TWNOutput:
        """One pass for training: prefill (reasoning adapter) then the K queries (embedding adapter).

        For the think view, pass `x ⊕ c` as `input_ids` (with `labels` masking the prompt with -100 to
        train the reasoning adapter on c). With `detach_interface` (default: the config's), the prefill
        runs under `no_grad` unless a CE loss or logits are requested, and the queries read a
        stop-gradient view of the cache: InfoNCE never reaches the reasoning adapter.
        """
        detach = self.config.detach_interface if detach_interface is None else detach_interface
        needs_lm = labels is not None or return_logits
        grad_context = torch.no_grad() if (detach and not needs_lm) else nullcontext()
        with grad_context:
            hidden, cache, next_positions = self.prefill(input_ids, attention_mask, **vision_inputs)
        loss = logits = None
        if needs_lm:
            logits = self.backbone.lm_head(hidden)
            if labels is not None:
                loss = F.cross_entropy(
                    logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1), ignore_index=-100
                )
        states = self.query_states(cache, attention_mask, next_positions, detach=detach)
        return TWNOutput(
            loss=loss,
            logits=logits,
            embeddings=self.pool(states),
            query_hidden_states=states,
            gate_logits=self.gate(states.detach()),
        )

    # ----- cost accounting ------------------------------------------------------------------
    def parameter_overhead(self) -> dict:
        """Parameters of the adapters, queries and gate against the backbone's (see `cost_twn`)."""
        return parameter_overhead(self)

    def cost_report(self, context_length: int = 1024, bytes_per_element: int | None = None) -> dict:
        """Estimated prefill/decode FLOPs per token and KV-cache bytes per token (see `cost_twn`)."""
        if bytes_per_element is None:
            bytes_per_element = torch.tensor([], dtype=self.backbone.dtype).element_size()
        return cost_report(self.config, context_length=context_length, bytes_per_element=bytes_per_element)
