"""Hub-ready export of a TWN checkpoint: `export_checkpoint(source, output_dir)` (the `twn export` command).

The folder holds everything a Hub repository needs: the weights (adapters, gate and queries, and the backbone
when self-contained), the current remote code (`*_twn.py`, sentence-transformers module included), the processor,
`modules.json` / `config_sentence_transformers.json`, the model card (`README.md`) and `requirements.txt`.
`hub_files(folder)` lists what `twn push` uploads, with the same ignore patterns `upload_folder` is given.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

# Never uploaded (editor and cache debris); passed to `HfApi.upload_folder` as-is.
IGNORE_PATTERNS = [".git/*", "*/.git/*", "__pycache__/*", "*/__pycache__/*", "*.pyc", ".cache/*", ".DS_Store"]
# What the remote code imports; sentence-transformers only for `SentenceTransformer(...)`.
REQUIREMENTS = [
    ("torch", ">=2.4", None),
    ("torchvision", "", "the Qwen-VL processors load a video processor that needs it"),
    ("transformers", ">=5.0,<6", None),
    ("peft", ">=0.17", None),
    ("pillow", "", None),
    ("safetensors", "", None),
    ("sentence-transformers", ">=6.0", "only for SentenceTransformer(...)"),
]
REQUIRED_FILES = ("config.json", "modeling_twn.py", "configuration_twn.py", "sentence_twn.py", "gate.safetensors",
                  "modules.json", "config_sentence_transformers.json", "README.md", "requirements.txt")


def requirements_text() -> str:
    versions = []
    for package in ("torch", "transformers", "peft", "sentence-transformers"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    lines = [f"# What this TWN checkpoint's remote code imports (exported with {', '.join(versions)})."]
    for package, specifier, note in REQUIREMENTS:
        lines.append(f"{package}{specifier}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"


def hub_files(folder) -> list[str]:
    """The files of `folder` an upload would send (POSIX paths relative to `folder`, sorted)."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(folder)
    paths = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return sorted(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def check_export(folder) -> None:
    """Raise if `folder` is not a complete TWN export (`twn push` refuses to upload an incomplete one)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        config = {}
    if config and config.get("model_type") != "twn":
        raise ValueError(f"{folder} is not a TWN checkpoint (model_type {config.get('model_type')!r})")
    for adapter in (config.get("reasoning_adapter", "reasoning"), config.get("embedding_adapter", "embedding")):
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            if not (folder / adapter / name).is_file():
                missing.append(f"{adapter}/{name}")
    if missing:
        raise ValueError(f"{folder} is not a complete TWN export; missing {missing}. Run `twn export` first.")


def _is_twn_folder(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type") == "twn"
    except (OSError, json.JSONDecodeError):
        return False


def read_samples(path) -> list:
    """Inputs for the cost table from a JSON list or a JSONL file (strings, image paths, TWN input dicts).

    Relative image / video paths resolve against the file's folder.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        items = json.loads(text) if path.suffix == ".json" else [json.loads(line) for line in text.splitlines()
                                                                 if line.strip()]
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{path}: expected a non-empty list of inputs")

    def resolve(value):
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str) and not os.path.isabs(value) and (path.parent / value).is_file():
            return str(path.parent / value)
        return value

    return [{k: resolve(v) if k in ("image", "images", "video") else v for k, v in item.items()}
            if isinstance(item, dict) else resolve(item) for item in items]


def export_checkpoint(
    source,
    output_dir,
    *,
    revision: str | None = None,
    model=None,
    repo_id: str | None = None,
    results=None,
    measure_cost: bool = False,
    cost_samples: list | None = None,
    cost_batch_size: int = 8,
    self_contained: bool | None = None,
    overwrite: bool = False,
    device: str | None = None,
    **card_kwargs,
) -> list[str]:
    """Write a hub-ready folder for the TWN checkpoint `source` (a folder or Hub id) into `output_dir`.

    Args:
        model: an already loaded `TWNModel` to export instead of loading `source`.
        repo_id: the Hub id the card's snippets load (default: the folder's name).
        results: MMEB-V2 scores and/or think costs for the card (a JSON path or dict; see `twn_hf.cards`).
        measure_cost: measure the think-mode cost table by encoding `cost_samples` (default: a built-in sample).
        self_contained: write the backbone weights too (default: as `save_pretrained` decides).
        overwrite: replace an existing TWN folder at `output_dir` (any other non-empty folder is refused).
        **card_kwargs: `base_model`, `license`, `datasets`, `language`, `tags` for the card's metadata.

    Returns:
        The exported files, as `hub_files(output_dir)`.
    """
    from twn_hf.cards import measure_think_costs, render_card

    output = Path(output_dir)
    if model is None and Path(str(source)).resolve() == output.resolve():
        raise ValueError("export into a different folder than the source checkpoint")
    if output.exists() and any(output.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{output} is not empty; pass overwrite=True (--overwrite) to replace it")
        if not _is_twn_folder(output):
            raise FileExistsError(f"{output} is not empty and holds no TWN checkpoint; refusing to replace it")
        shutil.rmtree(output)
    if model is None:
        from twn_hf.modeling import TWNModel

        model = TWNModel.from_pretrained(str(source), revision=revision)
    if device is not None:
        model = model.to(device)

    model.save_pretrained(output, self_contained=self_contained)
    think_costs = None
    if measure_cost or cost_samples is not None:
        think_costs = measure_think_costs(model, cost_samples, batch_size=cost_batch_size)
    card = render_card(output, repo_id=repo_id, model=model, results=results, think_costs=think_costs, **card_kwargs)
    card.save(output / "README.md")
    (output / "requirements.txt").write_text(requirements_text(), encoding="utf-8")
    check_export(output)
    files = hub_files(output)
    logger.info("exported %d files to %s", len(files), output)
    return files
