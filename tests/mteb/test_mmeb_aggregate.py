"""The leaderboard aggregation: category -> modality -> overall, overall = mean of the 78 task scores."""

from __future__ import annotations

import json
import math

import pytest

from twn_hf.mteb import aggregate_scores, mmeb_v2_report, scores_from_results
from twn_hf.mteb.tasks import TASK_SPECS

MODALITY_MEANS = {"image": 80.12, "video": 67.15, "visdoc": 82.36}  # Qwen3-VL-Embedding-8B's published row


def fixed_table() -> dict[str, float]:
    """Per-task scores that vary within every category yet average exactly to the published modality means:
    task i of a modality gets mean + offset_i, with offsets (-k, ..., +k) summing to zero."""
    table = {}
    for modality, mean in MODALITY_MEANS.items():
        names = [s.name for s in TASK_SPECS if s.modality == modality]
        offsets = [(i - (len(names) - 1) / 2) * 0.5 for i in range(len(names))]
        table |= {name: mean + offset for name, offset in zip(names, offsets)}
    return table


def test_overall_is_the_mean_of_the_78_task_scores():
    table = fixed_table()
    report = aggregate_scores(table)
    for modality, mean in MODALITY_MEANS.items():
        assert report.modalities[modality] == pytest.approx(mean)
    expected = (36 * 80.12 + 18 * 67.15 + 24 * 82.36) / 78
    assert report.overall == pytest.approx(expected) == pytest.approx(math.fsum(table.values()) / 78)
    assert round(report.overall, 2) == 77.82
    assert round(sum(MODALITY_MEANS.values()) / 3, 2) == 76.54  # what a mean of modality means would give
    assert "| 77.82 | 80.12 | 67.15 | 82.36 |" in report.to_markdown()


def test_category_means():
    table = fixed_table()
    report = aggregate_scores(table)
    for spec in TASK_SPECS:
        members = [table[s.name] for s in TASK_SPECS if s.modality == spec.modality and s.category == spec.category]
        assert report.categories[spec.modality][spec.category] == pytest.approx(sum(members) / len(members))
    # hand-checked example: the four image VG tasks are the last four image tasks (offsets 7.25 .. 8.75)
    assert report.categories["image"]["VG"] == pytest.approx(80.12 + 8.0)
    # modality = mean of tasks, not of category means (categories have different sizes)
    image_categories = report.categories["image"]
    assert report.modalities["image"] != pytest.approx(sum(image_categories.values()) / 4)


def test_missing_tasks_and_names():
    table = fixed_table()
    del table["K700"]
    strict = aggregate_scores(table)
    assert strict.overall is None and strict.modalities["video"] is None and strict.categories["video"]["CLS"] is None
    assert strict.modalities["image"] == pytest.approx(80.12) and strict.missing == ["K700"]
    partial = aggregate_scores(table, strict=False)
    assert partial.overall == pytest.approx(math.fsum(table.values()) / 77)
    # mteb names and fractions are accepted too
    report = aggregate_scores({f"MMEBV2-{k}": v / 100 for k, v in fixed_table().items()}, scale=100)
    assert report.overall == pytest.approx(aggregate_scores(fixed_table()).overall)
    with pytest.raises(KeyError):
        aggregate_scores({"STS12": 1.0})


def test_report_from_mteb_results_writes_markdown_and_json(tmp_path):
    class Result:  # the TaskResult surface used: task_name and get_score() (mteb's main score in [0, 1])
        def __init__(self, name, score):
            self.task_name, self._score = name, score

        def get_score(self):
            return self._score

    class ModelResult:
        model_name = "org/model"
        task_results = [Result(f"MMEBV2-{k}", v / 100) for k, v in fixed_table().items()] + [Result("STS12", 0.5)]

    assert scores_from_results(ModelResult()) == pytest.approx(fixed_table())
    report = mmeb_v2_report(ModelResult(), output_dir=tmp_path)
    data = json.loads((tmp_path / "mmeb_v2.json").read_text())
    assert data["model"] == "org/model" and data["overall"] == pytest.approx(report.overall)
    assert data["counts"] == {"tasks": 78, "scored": 78, "image": 36, "video": 18, "visdoc": 24}
    markdown = (tmp_path / "mmeb_v2.md").read_text()
    assert "| org/model | 77.82 |" in markdown and markdown.count("\n| Image | ") == 36
