"""The MMEB-V2 leaderboard's aggregation: per-task scores -> category, modality and overall means.

Exactly as the leaderboard computes them (`/shared/MMEB-V2.md` §4):

* a category score is the plain mean of its tasks' scores;
* a modality score is the plain mean of its tasks' scores (36 image, 18 video, 24 visdoc), not the
  mean of its category means;
* **Overall is the plain mean of all 78 task scores**, not the mean of the three modality means.
  Check: Qwen3-VL-Embedding-8B's published row, (36·80.12 + 18·67.15 + 24·82.36) / 78 = 77.82.

Scores are percentages (mteb's hit@1 / nDCG@5 in [0, 1] times 100), reported to two decimals.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .tasks.base import mmeb_name
from .tasks.specs import CATEGORIES, IMAGE, MODALITIES, SPECS_BY_NAME, TASK_SPECS, VIDEO, VISDOC

MODALITY_TITLES = {IMAGE: "Image", VIDEO: "Video", VISDOC: "VisDoc"}
METRICS = {IMAGE: "hit@1", VIDEO: "hit@1", VISDOC: "nDCG@5"}
_CATEGORY_COLUMNS = {IMAGE: "I-{}", VIDEO: "V-{}", VISDOC: "{}"}


def category_label(modality: str, category: str) -> str:
    """The leaderboard's column name of a category: `I-CLS`, `V-MRET`, `ViDoRe-V1`, ..."""
    return _CATEGORY_COLUMNS[modality].format(category)


def _mean(values: list[float | None], strict: bool) -> float | None:
    present = [v for v in values if v is not None]
    if not present or (strict and len(present) < len(values)):
        return None
    return math.fsum(present) / len(present)


@dataclass
class MMEBV2Report:
    """Per-task scores and their leaderboard aggregates (percentages; None where a score is missing).

    Attributes:
        tasks: MMEB task name -> score, all 78 tasks in leaderboard order.
        categories: modality -> category -> mean of the category's tasks.
        modalities: modality -> mean of the modality's tasks.
        overall: mean of all 78 tasks.
        strict: aggregates need every member task (False: mean over the tasks present).
        model: a label for the table.
    """

    tasks: dict[str, float | None]
    categories: dict[str, dict[str, float | None]]
    modalities: dict[str, float | None]
    overall: float | None
    strict: bool = True
    model: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [name for name, score in self.tasks.items() if score is None]

    def to_dict(self) -> dict:
        return {
            "benchmark": "MMEB-V2",
            "model": self.model,
            "overall": self.overall,
            "modalities": self.modalities,
            "categories": self.categories,
            "tasks": self.tasks,
            "metrics": METRICS,
            "counts": self.counts,
            "missing": self.missing,
            "aggregation": "category/modality/overall = plain means of task scores; overall over all 78 tasks",
            "strict": self.strict,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self, digits: int = 2) -> str:
        def fmt(value):
            return "–" if value is None else f"{value:.{digits}f}"

        header = ["Model", "Overall"] + [MODALITY_TITLES[m] for m in MODALITIES]
        row = [self.model or "model", fmt(self.overall)] + [fmt(self.modalities[m]) for m in MODALITIES]
        for modality in MODALITIES:
            for category in CATEGORIES[modality]:
                header.append(category_label(modality, category))
                row.append(fmt(self.categories[modality][category]))
        lines = [
            "## MMEB-V2",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
            "| " + " | ".join(row) + " |",
            "",
            f"Image and video: {METRICS[IMAGE]}; visual documents: {METRICS[VISDOC]}. Overall is the mean of "
            f"all {len(self.tasks)} task scores ({self.counts.get('scored', 0)} scored).",
            "",
            "| Modality | Category | Task | Score |",
            "|---|---|---|---:|",
        ]
        for spec in TASK_SPECS:
            title = MODALITY_TITLES[spec.modality]
            lines.append(f"| {title} | {spec.category} | {spec.name} | {fmt(self.tasks[spec.name])} |")
        if self.missing:
            lines += ["", f"Missing ({len(self.missing)}): " + ", ".join(self.missing)]
        return "\n".join(lines) + "\n"

    def save(self, output_dir: str | os.PathLike, stem: str = "mmeb_v2") -> tuple[Path, Path]:
        """Write `<stem>.json` and `<stem>.md` into `output_dir`; returns both paths."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = output_dir / f"{stem}.json", output_dir / f"{stem}.md"
        json_path.write_text(self.to_json() + "\n", encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def aggregate_scores(task_scores: Mapping[str, float | None], *, scale: float = 1.0, strict: bool = True,
                     model: str | None = None) -> MMEBV2Report:
    """Aggregate per-task scores like the MMEB-V2 leaderboard.

    Args:
        task_scores: task -> score, keyed by MMEB name (`"ImageNet-1K"`) or mteb name
            (`"MMEBV2-ImageNet-1K"`). Scores are taken as percentages unless `scale` says otherwise.
        scale: multiplies every score (100 for mteb's fractions).
        strict: a category / modality / overall score needs all its tasks (the leaderboard's rule);
            with False, means are over the tasks present (partial runs).
        model: label for the report.
    """
    tasks: dict[str, float | None] = {spec.name: None for spec in TASK_SPECS}
    for key, value in task_scores.items():
        name = mmeb_name(key)
        if name not in SPECS_BY_NAME:
            raise KeyError(f"{key!r} is not an MMEB-V2 task")
        tasks[name] = None if value is None else float(value) * scale
    categories = {
        modality: {
            category: _mean([tasks[s.name] for s in TASK_SPECS
                             if s.modality == modality and s.category == category], strict)
            for category in CATEGORIES[modality]
        }
        for modality in MODALITIES
    }
    modalities = {m: _mean([tasks[s.name] for s in TASK_SPECS if s.modality == m], strict) for m in MODALITIES}
    overall = _mean(list(tasks.values()), strict)
    counts = {"tasks": len(tasks), "scored": sum(v is not None for v in tasks.values())}
    counts |= {m: sum(s.modality == m for s in TASK_SPECS) for m in MODALITIES}
    return MMEBV2Report(tasks=tasks, categories=categories, modalities=modalities, overall=overall, strict=strict,
                        model=model, counts=counts)


def _task_results(results) -> Iterable:
    if hasattr(results, "task_results"):  # mteb ModelResult
        return results.task_results
    if hasattr(results, "model_results"):  # mteb BenchmarkResults
        models = list(results.model_results)
        if len(models) != 1:
            raise ValueError(f"expected the results of one model, got {len(models)}")
        return models[0].task_results
    return results


def scores_from_results(results) -> dict[str, float]:
    """MMEB task name -> main score in percent, from mteb results (a `ModelResult`, a one-model
    `BenchmarkResults`, or `TaskResult`s). Non-MMEB-V2 tasks are ignored."""
    scores = {}
    for result in _task_results(results):
        name = mmeb_name(result.task_name)
        if name in SPECS_BY_NAME and result.task_name.startswith("MMEBV2-"):
            scores[name] = 100.0 * float(result.get_score())
    return scores


def mmeb_v2_report(results, *, output_dir: str | os.PathLike | None = None, model: str | None = None,
                   strict: bool = True) -> MMEBV2Report:
    """The leaderboard table (markdown) and JSON of one model's MMEB-V2 results.

    `results` is anything `scores_from_results` takes, or a mapping of task -> percentage. With
    `output_dir`, `mmeb_v2.json` and `mmeb_v2.md` are written there.
    """
    if isinstance(results, Mapping):
        scores = dict(results)
    else:
        scores = scores_from_results(results)
        if model is None and hasattr(results, "model_name"):
            model = results.model_name
    report = aggregate_scores(scores, strict=strict, model=model)
    if output_dir is not None:
        report.save(output_dir)
    return report


__all__ = ["METRICS", "MMEBV2Report", "category_label", "aggregate_scores", "mmeb_v2_report", "scores_from_results"]
