"""Saving and loading the TWN checkpoint layout (DESIGN.md §3).

```
config.json, *_twn.py        config with auto_map, and the remote code
reasoning/, embedding/       PEFT adapter folders (adapter_config.json, adapter_model.safetensors)
gate.safetensors             gate MLP + query embeddings
model.safetensors            backbone weights, only in self-contained checkpoints
processor / tokenizer files
```

Every weight file is loaded strictly: a missing or unexpected key is an error that names the keys,
never a silent random initialisation.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from transformers.utils import cached_file

from .sentence_files_twn import write_sentence_files

logger = logging.getLogger(__name__)

GATE_FILE = "gate.safetensors"
BACKBONE_FILE = "model.safetensors"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
PEFT_PREFIX = "base_model.model."
REMOTE_CODE_SUFFIX = "_twn.py"
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "proxies", "revision", "token", "subfolder")


class CheckpointKeyError(ValueError):
    """A weight file whose keys do not match the model."""


def check_keys(what: str, expected, found) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise CheckpointKeyError(f"{what}: missing keys {missing[:10]}{' ...' if len(missing) > 10 else ''} "
                                 f"({len(missing)} in all); unexpected keys {unexpected[:10]}"
                                 f"{' ...' if len(unexpected) > 10 else ''} ({len(unexpected)} in all)")


def _contiguous(state: dict) -> dict:
    return {key: value.detach().contiguous().cpu() for key, value in state.items()}


class TWNCheckpointMixin:
    # ----- state dicts of the parts ---------------------------------------------------------
    def adapter_state_dict(self, name: str) -> dict:
        """Adapter `name`'s LoRA weights under the keys plain `peft` uses (adapter name removed)."""
        marker = f".{name}."
        return {
            PEFT_PREFIX + key.replace(marker, "."): value
            for key, value in self.backbone.state_dict().items()
            if "lora_" in key and marker in key
        }

    def load_adapter_state_dict(self, name: str, state: dict, source: str = "adapter") -> None:
        expected = self.adapter_state_dict(name)
        check_keys(source, expected, state)
        renamed = {}
        for key, value in state.items():
            inner = key[len(PEFT_PREFIX):]
            for part in ("lora_A", "lora_B"):
                inner = inner.replace(f".{part}.", f".{part}.{name}.")
            renamed[inner] = value
        result = self.backbone.load_state_dict(renamed, strict=False)
        if result.unexpected_keys:
            raise CheckpointKeyError(f"{source}: unexpected keys {result.unexpected_keys[:10]}")

    def head_state_dict(self) -> dict:
        """Query embeddings and gate MLP: the contents of gate.safetensors."""
        state = {"queries": self.queries}
        state.update({f"gate.{key}": value for key, value in self.gate.state_dict().items()})
        return state

    def load_head_state_dict(self, state: dict, source: str = GATE_FILE) -> None:
        check_keys(source, self.head_state_dict(), state)
        with torch.no_grad():
            self.queries.copy_(state["queries"])
        self.gate.load_state_dict({key[len("gate."):]: value for key, value in state.items() if key != "queries"})

    def backbone_state_dict(self) -> dict:
        """Backbone weights under plain transformers keys (LoRA removed, `base_layer` unwrapped)."""
        state = {
            key.replace(".base_layer.", "."): value
            for key, value in self.backbone.state_dict().items()
            if "lora_" not in key
        }
        if getattr(self.backbone.config.get_text_config(), "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # shared with the input embeddings; safetensors refuses aliases
        return state

    # ----- save -----------------------------------------------------------------------------
    def save_pretrained(self, save_directory, self_contained: bool | None = None, push_to_hub: bool = False, **kwargs):
        """Write the TWN checkpoint layout.

        Args:
            self_contained: also write the backbone weights (`model.safetensors`). Defaults to True when
                the config names no `backbone_name_or_path` to fetch them from, else False (adapter-only).
            push_to_hub: upload the folder afterwards (kwargs go to `push_to_hub`).
        """
        if push_to_hub:
            repo_id = kwargs.pop("repo_id", str(save_directory))
            return self.push_to_hub(repo_id, self_contained=self_contained, **kwargs)
        if self_contained is None:
            self_contained = self.config.backbone_name_or_path is None
        if not self_contained and self.config.backbone_name_or_path is None:
            raise ValueError("an adapter-only checkpoint needs config.backbone_name_or_path (and a pinned revision)")
        if not self_contained and self.config.backbone_revision is None:
            logger.warning("adapter-only checkpoint without backbone_revision: the backbone it loads may change")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)

        config = copy.deepcopy(self.config)
        config.architectures = [type(self).__name__]
        config.auto_map = {"AutoConfig": "configuration_twn.TWNConfig", "AutoModel": "modeling_twn.TWNModel"}
        config.dtype = self.backbone.dtype
        config.save_pretrained(directory)
        for source in Path(__file__).parent.glob(f"*{REMOTE_CODE_SUFFIX}"):
            shutil.copyfile(source, directory / source.name)
        write_sentence_files(self.config, directory)  # modules.json etc.: the checkpoint is also a SentenceTransformer

        for name in (self.config.reasoning_adapter, self.config.embedding_adapter):
            adapter_dir = directory / name
            adapter_dir.mkdir(exist_ok=True)
            self.lora_config().save_pretrained(adapter_dir)
            save_file(_contiguous(self.adapter_state_dict(name)), adapter_dir / ADAPTER_WEIGHTS, metadata={"format": "pt"})
        save_file(_contiguous(self.head_state_dict()), directory / GATE_FILE, metadata={"format": "pt"})
        backbone_path = directory / BACKBONE_FILE
        if self_contained:
            save_file(_contiguous(self.backbone_state_dict()), backbone_path, metadata={"format": "pt"})
        elif backbone_path.exists():
            backbone_path.unlink()  # a stale self-contained copy would shadow the referenced backbone
        if self.processor is not None:
            self.processor.save_pretrained(directory)
        logger.info("saved %s TWN checkpoint to %s", "self-contained" if self_contained else "adapter-only", directory)

    # ----- load -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, config=None, backbone=None,
                        dtype="auto", device_map=None, **kwargs):
        """Load a TWN checkpoint from a local folder or the Hub.

        The backbone comes from `model.safetensors` when the checkpoint is self-contained, else from
        `config.backbone_name_or_path` at `config.backbone_revision` (or pass `backbone=` yourself).
        `dtype`: a torch dtype or "auto" (the checkpoint's). `device_map`: a single device ("cpu",
        "cuda", "cuda:1"); multi-device maps are not supported.
        """
        hub = {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}
        kwargs.pop("trust_remote_code", None)
        kwargs.pop("adapter_kwargs", None)  # AutoModel passes it for PEFT-wrapped models; TWN loads its own adapters
        if kwargs:
            logger.warning("TWNModel.from_pretrained ignores unknown arguments %s", sorted(kwargs))
        source = str(pretrained_model_name_or_path)
        if config is None:
            config = cls.config_class.from_pretrained(source, **hub)
        if dtype == "auto":
            dtype = getattr(config, "dtype", None) or torch.float32
            dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype

        def fetch(filename, subfolder="", required=True):
            return cached_file(source, filename, subfolder=os.path.join(hub.get("subfolder", ""), subfolder),
                               _raise_exceptions_for_missing_entries=required,
                               **{k: v for k, v in hub.items() if k != "subfolder"})

        backbone_file = fetch(BACKBONE_FILE, required=False)
        if backbone is None and backbone_file is not None:
            backbone = AutoModelForImageTextToText.from_config(config.backbone_config, dtype=dtype)
            state = load_file(backbone_file)
            expected = {k: None for k in backbone.state_dict()}
            if getattr(backbone.config.get_text_config(), "tie_word_embeddings", False):
                expected.pop("lm_head.weight", None)
            check_keys(f"{BACKBONE_FILE} of {source}", expected, state)
            backbone.load_state_dict(state, strict=False)
            backbone.tie_weights()
        elif backbone is None:
            if config.backbone_name_or_path is None:
                raise ValueError(f"{source} has no {BACKBONE_FILE} and its config names no backbone_name_or_path")
            backbone = AutoModelForImageTextToText.from_pretrained(
                config.backbone_name_or_path, revision=config.backbone_revision, dtype=dtype
            )
        backbone.eval()
        model = cls(config, backbone=backbone)
        for name in (config.reasoning_adapter, config.embedding_adapter):
            model.load_adapter_state_dict(name, load_file(fetch(ADAPTER_WEIGHTS, subfolder=name)),
                                          source=f"adapter {name!r} of {source}")
        model.load_head_state_dict(load_file(fetch(GATE_FILE)), source=f"{GATE_FILE} of {source}")
        model.to(dtype)
        if device_map is not None:
            if isinstance(device_map, dict):
                if set(device_map) - {""}:
                    raise ValueError("TWNModel loads onto one device; a multi-device device_map is not supported")
                device_map = device_map[""]
            if device_map == "auto":
                device_map = "cuda" if torch.cuda.is_available() else "cpu"
            model.to(device_map)
        model.processor = _load_processor(source, config, hub)
        model.eval()
        return model


def _load_processor(source, config, hub):
    """The checkpoint's processor, else the backbone's; None (with a warning) if neither loads."""
    has_own = cached_file(source, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False,
                          **{k: v for k, v in hub.items() if k != "subfolder"}) or cached_file(
        source, "processor_config.json", _raise_exceptions_for_missing_entries=False,
        **{k: v for k, v in hub.items() if k != "subfolder"})
    if has_own:
        # The processor classes are stock transformers ones; the auto_map in config.json is for the model only.
        # AutoTokenizer reads config.json as a generic config and warns that "twn" is not its model
        # type; the warning is about the model config, not the tokenizer, so it is silenced here.
        config_logger = logging.getLogger("transformers.configuration_utils")
        level = config_logger.level
        config_logger.setLevel(logging.ERROR)
        try:
            return AutoProcessor.from_pretrained(
                source, trust_remote_code=False, **{k: v for k, v in hub.items() if k != "subfolder"}
            )
        finally:
            config_logger.setLevel(level)
    if config.backbone_name_or_path is not None:
        return AutoProcessor.from_pretrained(config.backbone_name_or_path, revision=config.backbone_revision)
    logger.warning("no processor found for %s; set model.processor before calling encode", source)
    return None
