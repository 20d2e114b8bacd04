"""`TWNConfig`: everything a TWN checkpoint needs besides its weights.

This file is part of the remote code copied into every checkpoint, so it imports only the
standard library and transformers.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig

# LoRA on the language model's projections only: "all-linear" would also adapt the vision tower,
# which TWN keeps frozen and shared between the two views.
DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"

DEFAULT_EMBED_INSTRUCTION = "Represent the given input for retrieval."
DEFAULT_THINK_PROMPT = "Think about what the input means, then summarise it."

POOLING_MODES = ("mean", "last")


class TWNConfig(PretrainedConfig):
    """Configuration of a Think-When-Needed embedding model.

    Args:
        backbone_config: the base VLM's config (a `Qwen3VLConfig`, `Qwen2_5_VLConfig` or
            `Qwen2VLConfig`, or its dict). Always embedded so the architecture can be built offline.
        backbone_name_or_path / backbone_revision: where the backbone *weights* live for an
            adapter-only checkpoint (a Hub id pinned to a commit, or a local folder). Unused when the
            checkpoint is self-contained (it then ships `model.safetensors`).
        reasoning_adapter / embedding_adapter: names of the two LoRA adapters (also their sub-folders).
        lora_r, lora_alpha, lora_dropout, lora_target_modules: LoRA settings shared by both adapters.
        num_queries: K, the number of learnable query vectors appended after the input.
        gate_hidden_size: width of the gate MLP's hidden layer.
        think_threshold: default gate threshold for `think="auto"`.
        embed_instruction: instruction used when an input brings none.
        think_prompt: appended to every input; it asks for the chain of thought the reasoning
            adapter writes. It is part of the prefill, so both views see it.
        max_think_tokens: cap on generated CoT tokens.
        pooling: "mean" over the K query states, or "last" (the last query state).
        normalize: L2-normalise embeddings.
        detach_interface: stop gradients where the embedding path reads the reasoning KV cache.
        max_image_pixels: images above this many pixels are downscaled (aspect kept) before the
            processor sees them.
        video_fps: frame rate assumed for videos given as frame lists (Qwen3-VL timestamps).
    """

    model_type = "twn"
    # `backbone_config` is deliberately not declared in `sub_configs`: PreTrainedModel.__init__ pushes
    # its attention implementation into sub-configs, which would override the backbone's own choice.

    def __init__(
        self,
        backbone_config=None,
        backbone_name_or_path: str | None = None,
        backbone_revision: str | None = None,
        reasoning_adapter: str = "reasoning",
        embedding_adapter: str = "embedding",
        lora_r: int = 48,
        lora_alpha: int = 96,
        lora_dropout: float = 0.0,
        lora_target_modules: str = DEFAULT_LORA_TARGETS,
        num_queries: int = 8,
        gate_hidden_size: int = 1024,
        think_threshold: float = 0.5,
        embed_instruction: str = DEFAULT_EMBED_INSTRUCTION,
        think_prompt: str = DEFAULT_THINK_PROMPT,
        max_think_tokens: int = 128,
        pooling: str = "mean",
        normalize: bool = True,
        detach_interface: bool = True,
        max_image_pixels: int = 1280 * 28 * 28,
        video_fps: float = 2.0,
        **kwargs,
    ):
        if isinstance(backbone_config, dict):
            backbone_config = AutoConfig.for_model(**backbone_config)
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}, got {pooling!r}")
        if not 0.0 <= think_threshold <= 1.0:
            raise ValueError(f"think_threshold must lie in [0, 1], got {think_threshold}")
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if reasoning_adapter == embedding_adapter:
            raise ValueError("reasoning_adapter and embedding_adapter need different names")
        self.backbone_config = backbone_config
        self.backbone_name_or_path = backbone_name_or_path
        self.backbone_revision = backbone_revision
        self.reasoning_adapter = reasoning_adapter
        self.embedding_adapter = embedding_adapter
        self.lora_r = lora_r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.lora_target_modules = lora_target_modules
        self.num_queries = num_queries
        self.gate_hidden_size = gate_hidden_size
        self.think_threshold = think_threshold
        self.embed_instruction = embed_instruction
        self.think_prompt = think_prompt
        self.max_think_tokens = max_think_tokens
        self.pooling = pooling
        self.normalize = normalize
        self.detach_interface = detach_interface
        self.max_image_pixels = max_image_pixels
        self.video_fps = video_fps
        super().__init__(**kwargs)

    @property
    def text_config(self):
        """The backbone's language-model config (hidden size, layers, vocabulary)."""
        return self.backbone_config.get_text_config()

    @property
    def hidden_size(self) -> int:
        return self.text_config.hidden_size
