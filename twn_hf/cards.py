"""Model cards for TWN checkpoints: `render_card(checkpoint, ...)` → a `huggingface_hub.ModelCard`.

The card is the Jinja2 template `hub_cards/twn_model_card.md` filled from the checkpoint's config: Hub metadata
(base_model, library_name, pipeline_tag, tags, license, datasets), what TWN is, usage snippets for transformers,
sentence-transformers and mteb, the think-mode cost table and, when results exist, the MMEB-V2 table.

Cost table: `measure_think_costs(model, samples)` encodes a small sample once per think mode and records the
think rate, CoT tokens per input and inputs per second; or pass the same numbers from a results JSON.
Results JSON (`load_results`): either a plain `{task: score}` dict (MMEB-V2 scores), or
`{"mmeb_v2": {task: score}, "mmeb_v2_summary": {name: score},
  "think_costs": {"modes": {mode: {"think_rate", "cot_tokens", "items_per_s"}}, ...}}`.

Nothing here touches the network (`card.push_to_hub()` would; `twn push` uploads the exported folder instead).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

logger = logging.getLogger(__name__)

TEMPLATE_NAME = "twn_model_card.md"
COST_MODES = ("never", "auto", "always")
DEFAULT_LICENSE = "apache-2.0"
BASE_TAGS = ("twn", "think-when-needed", "multimodal-embedding", "sentence-transformers", "mteb",
             "feature-extraction", "custom_code", "peft", "lora")


def template_path(name: str = TEMPLATE_NAME) -> Path:
    """The card template: from the installed package `twn_hf.hub_cards`, else the source tree's `hub_cards/`."""
    try:
        from importlib.resources import files

        candidate = files("twn_hf.hub_cards").joinpath(name)
        if candidate.is_file():
            return Path(str(candidate))
    except ModuleNotFoundError:
        pass
    candidate = Path(__file__).resolve().parent.parent / "hub_cards" / name
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"model-card template {name!r} not found (neither twn_hf.hub_cards nor {candidate})")


# ----- think-mode cost --------------------------------------------------------------------------------------------
def default_cost_sample() -> list:
    """Eight inputs of every kind (short and long texts, images, text+image), built in code."""
    from PIL import Image, ImageDraw

    square = Image.new("RGB", (224, 224), "white")
    ImageDraw.Draw(square).rectangle((56, 56, 168, 168), fill=(220, 40, 40))
    stripes = Image.new("RGB", (256, 128), "white")
    draw = ImageDraw.Draw(stripes)
    for x in range(0, 256, 32):
        draw.rectangle((x, 0, x + 15, 127), fill=(30, 60, 200))
    return [
        "a red square on a white background",
        "what is seven plus eight, times two?",
        "the committee postponed the vote until the budget figures had been independently audited",
        "which of the two photos shows more stripes, and by how many?",
        square,
        stripes,
        {"text": "how many stripes are there?", "image": stripes},
        {"text": "what colour is the shape in the middle?", "image": square},
    ]


def measure_think_costs(model, samples=None, modes=COST_MODES, batch_size: int = 8, threshold: float | None = None,
                        warmup: bool = True) -> dict:
    """Encode `samples` once per think mode and time it.

    Returns `{"modes": {mode: {"think_rate", "cot_tokens", "items_per_s"}}, "num_inputs", "batch_size",
    "threshold", "device"}`; `cot_tokens` is the mean number of CoT tokens per input (0 for inputs that did
    not think). A warm-up call first keeps one-off start-up costs out of the first mode's time.
    """
    samples = default_cost_sample() if samples is None else list(samples)
    if not samples:
        raise ValueError("the cost sample is empty")
    if warmup:
        model.encode(samples[:1], think="never")
    rows = {}
    for mode in modes:
        start = time.perf_counter()
        _, details = model.encode(samples, think=mode, threshold=threshold, batch_size=batch_size,
                                  return_details=True)
        elapsed = max(time.perf_counter() - start, 1e-9)
        rows[mode] = {
            "think_rate": sum(d.thought for d in details) / len(details),
            "cot_tokens": sum(d.tokens_generated for d in details) / len(details),
            "items_per_s": len(details) / elapsed,
        }
    return {
        "modes": rows,
        "num_inputs": len(samples),
        "batch_size": batch_size,
        "threshold": model.config.think_threshold if threshold is None else threshold,
        "device": str(model.device),
    }


def _cost_rows(think_costs: dict | None) -> tuple[list[dict], str]:
    if not think_costs:
        return [], ""
    modes = think_costs.get("modes", think_costs)
    rows = []
    for mode in [m for m in COST_MODES if m in modes] + [m for m in modes if m not in COST_MODES]:
        values = modes[mode]
        missing = {"think_rate", "cot_tokens", "items_per_s"} - set(values)
        if missing:
            raise ValueError(f"think cost of mode {mode!r} lacks {sorted(missing)}")
        rows.append({"mode": mode, **{k: float(values[k]) for k in ("think_rate", "cot_tokens", "items_per_s")}})
    parts = []
    if "num_inputs" in think_costs:
        parts.append(f"{think_costs['num_inputs']} inputs")
    if "device" in think_costs:
        parts.append(f"on `{think_costs['device']}`")
    if "batch_size" in think_costs:
        parts.append(f"batch size {think_costs['batch_size']}")
    if "threshold" in think_costs:
        parts.append(f"`auto` threshold {think_costs['threshold']}")
    source = think_costs.get("source") or ("Measured by encoding " + ", ".join(parts) + "." if parts else "")
    return rows, source


# ----- results ----------------------------------------------------------------------------------------------------
def load_results(results) -> dict:
    """`{"mmeb_v2", "mmeb_v2_summary", "think_costs"}` (each possibly None) from a results JSON path or dict.

    Accepted: a plain `{task: score}` dict (MMEB-V2 per-task scores), or a dict with any of `"mmeb_v2"`
    (`{task: score}`), `"mmeb_v2_summary"` (`{name: score}`: e.g. the leaderboard's category / modality / overall
    means from the MMEB-V2 report; without it the card shows the plain mean of the task scores) and
    `"think_costs"` (as `measure_think_costs` returns).
    """
    keys = ("mmeb_v2", "mmeb_v2_summary", "think_costs")
    if results is None:
        return dict.fromkeys(keys)
    if isinstance(results, (str, os.PathLike)):
        results = json.loads(Path(results).read_text(encoding="utf-8"))
    if not isinstance(results, dict):
        raise TypeError(f"results must be a dict or a JSON file holding one, got {type(results).__name__}")
    if any(key in results for key in keys):
        return {key: results.get(key) for key in keys}
    if results and all(isinstance(value, (int, float)) for value in results.values()):
        return {"mmeb_v2": dict(results), "mmeb_v2_summary": None, "think_costs": None}
    raise ValueError(f"results must be {{task: score}} or hold any of {list(keys)}")


def _format_score(value: float, percent: bool) -> str:
    return f"{100 * value:.1f}" if percent else f"{value:.1f}"


def _mmeb_section(scores: dict | None, summary: dict | None = None) -> dict | None:
    """Per-task rows and summary rows (given, else the plain mean over the tasks)."""
    if not scores and not summary:
        return None
    scores = scores or {}
    values = [float(v) for v in [*scores.values(), *(summary or {}).values()]]
    percent = all(0.0 <= v <= 1.0 for v in values)  # mteb-style fractions are shown as percentages
    if summary:
        rows = list(summary.items())
    else:
        rows = [(f"mean over {len(scores)} tasks", sum(float(v) for v in scores.values()) / len(scores))]
    unit = "hit@1 / nDCG@5 in %" if percent else "hit@1 / nDCG@5"
    return {
        "tasks": [(name, _format_score(float(scores[name]), percent)) for name in sorted(scores)],
        "summary": [(name, _format_score(float(value), percent)) for name, value in rows],
        "source": f"Scores ({unit}) as recorded in the results file.",
    }


# ----- the card ---------------------------------------------------------------------------------------------------
def _load_config(checkpoint):
    from twn_hf.modeling import TWNConfig

    return TWNConfig.from_pretrained(str(checkpoint))


def _prompts(checkpoint, config) -> dict:
    from twn_hf.modeling.sentence_files_twn import SENTENCE_CONFIG_FILE, sentence_prompts

    path = Path(checkpoint) / SENTENCE_CONFIG_FILE
    prompts = sentence_prompts(config)
    if path.is_file():
        prompts.update(json.loads(path.read_text(encoding="utf-8")).get("prompts") or {})
    return prompts


def render_card(
    checkpoint,
    *,
    repo_id: str | None = None,
    model=None,
    results=None,
    think_costs: dict | None = None,
    base_model: str | None = None,
    license: str = DEFAULT_LICENSE,
    datasets: list[str] | None = None,
    language: list[str] | None = None,
    tags: list[str] | None = None,
    model_name: str | None = None,
) -> ModelCard:
    """The model card of the TWN checkpoint folder `checkpoint`.

    Args:
        repo_id: the Hub id the snippets load (default: the folder's name).
        model: the loaded `TWNModel`, to report its parameter overhead (optional).
        results: a results JSON path or dict (MMEB-V2 scores and/or think costs; see `load_results`).
        think_costs: the output of `measure_think_costs` (wins over the results file's).
        base_model: Hub id of the backbone (default: the config's `backbone_name_or_path` when it is a Hub id).
        license / datasets / language / tags: Hub metadata (`tags` adds to TWN's own).
    """
    checkpoint = Path(checkpoint)
    config = model.config if model is not None else _load_config(checkpoint)
    repo_id = repo_id or checkpoint.resolve().name
    model_name = model_name or repo_id.rsplit("/", 1)[-1]
    recorded = load_results(results)
    think_costs = think_costs or recorded["think_costs"]

    reference = config.backbone_name_or_path
    if base_model is None and reference and not os.path.isdir(reference):
        base_model = reference
    self_contained = (checkpoint / "model.safetensors").is_file()
    if base_model is None:
        logger.warning("no base_model for the card of %s: pass base_model= (the backbone's Hub id)", checkpoint)
    if not datasets:
        logger.warning("no training datasets for the card of %s: pass datasets=", checkpoint)
    family = config.backbone_config.model_type
    extra = {"base_model_relation": "adapter"} if base_model and not self_contained else {}
    card_data = ModelCardData(
        base_model=base_model,
        library_name="transformers",
        pipeline_tag="feature-extraction",
        license=license,
        datasets=list(datasets) if datasets else None,
        language=list(language) if language else None,
        tags=list(dict.fromkeys([*BASE_TAGS, family.replace("_", "-"), *(tags or [])])),
        **extra,
    )
    prompts = _prompts(checkpoint, config)
    cost_rows, cost_source = _cost_rows(think_costs)
    overhead = model.parameter_overhead() if model is not None else None
    return ModelCard.from_template(
        card_data,
        template_path=str(template_path()),
        model_name=model_name,
        repo_id=repo_id,
        backbone=reference or getattr(config.backbone_config, "_name_or_path", "") or family,
        backbone_revision=config.backbone_revision,
        self_contained=self_contained,
        embedding_dim=config.hidden_size,
        normalize=config.normalize,
        pooling=config.pooling,
        num_queries=config.num_queries,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        think_threshold=config.think_threshold,
        max_think_tokens=config.max_think_tokens,
        query_instruction=prompts["query"],
        document_instruction=prompts["document"],
        overhead=overhead,
        cost_rows=cost_rows,
        cost_source=cost_source,
        mmeb=_mmeb_section(recorded["mmeb_v2"], recorded["mmeb_v2_summary"]),
    )
