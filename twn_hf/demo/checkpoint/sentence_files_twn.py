"""The sentence-transformers files of a TWN checkpoint: `modules.json` and `config_sentence_transformers.json`.

With them every TWN checkpoint is also a sentence-transformers model whose single module is
`sentence_twn.TWNSentenceModule` (shipped with the remote code):

    SentenceTransformer(path, trust_remote_code=True).encode_query(...)

The `query` / `document` prompts are TWN *instructions* (the text TWN puts before the input), read from
the config's optional `query_instruction` / `document_instruction` attributes. Part of the remote code and
imported by `checkpoint_twn`, so it uses only the standard library: loading a checkpoint with `AutoModel`
never needs sentence-transformers.
"""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

SENTENCE_MODULE = "sentence_twn.TWNSentenceModule"
# Keyword arguments of `SentenceTransformer.encode` that reach TWN (see `TWNSentenceModule.forward`).
SENTENCE_KWARGS = ("think", "threshold")
DEFAULT_QUERY_INSTRUCTION = "Find the text, image or video that best matches the given query."
MODULES_FILE = "modules.json"
SENTENCE_CONFIG_FILE = "config_sentence_transformers.json"
# What the module needs; sentence-transformers checks these when it loads the model.
SENTENCE_REQUIREMENTS = {
    "sentence-transformers": {"specifier": ">=6.0", "reason": "TWN's module uses the v6 multimodal module API"},
    "transformers": ">=5.0,<6",
    "peft": ">=0.17",
}


def sentence_module_class():
    """`TWNSentenceModule` (needs sentence-transformers>=6).

    The relative import below is never run on load, but transformers' remote-code loader follows it, so every
    model loaded with `trust_remote_code=True` carries `sentence_twn.py` in its remote code and re-saves it.
    """
    from .sentence_twn import TWNSentenceModule

    return TWNSentenceModule


def sentence_prompts(config) -> dict[str, str]:
    """The `query` and `document` prompts (TWN instructions) of a checkpoint with this config."""
    return {
        "query": getattr(config, "query_instruction", None) or DEFAULT_QUERY_INSTRUCTION,
        "document": getattr(config, "document_instruction", None) or config.embed_instruction,
    }


def _versions() -> dict[str, str]:
    versions = {}
    for key, package in (("sentence_transformers", "sentence-transformers"), ("transformers", "transformers"),
                         ("pytorch", "torch")):
        try:
            versions[key] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def write_sentence_files(config, directory) -> list[str]:
    """Write modules.json and config_sentence_transformers.json for `config` into `directory`; returns their names."""
    directory = Path(directory)
    if not (directory / (SENTENCE_MODULE.split(".")[0] + ".py")).is_file():
        logger.warning("%s lacks %s.py: not writing the sentence-transformers files", directory,
                       SENTENCE_MODULE.split(".")[0])
        return []
    modules = [{"idx": 0, "name": "0", "path": "", "type": SENTENCE_MODULE, "kwargs": list(SENTENCE_KWARGS)}]
    settings = {
        "model_type": "SentenceTransformer",
        "__version__": _versions(),
        "requirements": SENTENCE_REQUIREMENTS,
        "prompts": sentence_prompts(config),
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (directory / MODULES_FILE).write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")
    (directory / SENTENCE_CONFIG_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return [MODULES_FILE, SENTENCE_CONFIG_FILE]
