"""`mteb.Benchmark` objects for MMEB-V2 and its image / video / visual-document parts.

`mmeb_v2_benchmark()` builds a fresh benchmark (its tasks read `$MMEB_V2_ROOT` when they load, or
the `root` given here). The constants `MMEB_V2`, `MMEB_V2_IMAGE`, `MMEB_V2_VIDEO` and
`MMEB_V2_VISDOC` are built on first access, so importing this module creates no task (creating an
mteb task seeds the global random generators).

Each benchmark carries mteb `CustomGrouping`s for the leaderboard's modality and category columns;
the leaderboard's own numbers (overall = mean of the 78 task scores) come from
`twn_hf.mteb.aggregate.mmeb_v2_report`.
"""

from __future__ import annotations

from mteb.benchmarks.benchmark import Benchmark, BenchmarkAggregation, CustomGroup, CustomGrouping

from .aggregate import MODALITY_TITLES, category_label
from .tasks.base import MMEB_V2_CITATION, MMEB_V2_REFERENCE, get_tasks
from .tasks.specs import CATEGORIES, MODALITIES

BENCHMARK_NAMES = {None: "MMEB-V2", "image": "MMEB-V2(image)", "video": "MMEB-V2(video)", "visdoc": "MMEB-V2(visdoc)"}

_DESCRIPTIONS = {
    None: "MMEB-V2: 78 multimodal embedding tasks (36 image, 18 video, 24 visual-document) scored with "
          "hit@1 (image, video) and nDCG@5 (visual documents); the overall score is the mean of the 78 task scores.",
    "image": "MMEB-V2's 36 image tasks (MMEB-V1): classification, VQA, retrieval and visual grounding, hit@1.",
    "video": "MMEB-V2's 18 video tasks: classification, QA, retrieval and moment retrieval, hit@1.",
    "visdoc": "MMEB-V2's 24 visual-document retrieval tasks: ViDoRe V1/V2, VisRAG and out-of-domain sets, nDCG@5.",
}


def mmeb_v2_benchmark(modality: str | None = None, **task_kwargs) -> Benchmark:
    """MMEB-V2 (all 78 tasks) or one part: `modality` in "image", "video", "visdoc".

    `task_kwargs` go to every task (`root=`, `revisions=`, `num_frames=`).
    """
    if modality not in BENCHMARK_NAMES:
        raise ValueError(f"modality must be None, 'image', 'video' or 'visdoc', got {modality!r}")
    tasks = get_tasks(modality, **task_kwargs)
    modalities = [modality] if modality else list(MODALITIES)
    by_modality = CustomGrouping(name="Modality", groups=tuple(
        CustomGroup(label=MODALITY_TITLES[m], tasks=[t for t in tasks if t.spec.modality == m]) for m in modalities))
    by_category = CustomGrouping(name="Category", groups=tuple(
        CustomGroup(label=category_label(m, c),
                    tasks=[t for t in tasks if t.spec.modality == m and t.spec.category == c])
        for m in modalities for c in CATEGORIES[m]))
    return Benchmark(
        name=BENCHMARK_NAMES[modality],
        tasks=tasks,
        description=_DESCRIPTIONS[modality],
        reference=MMEB_V2_REFERENCE,
        citation=MMEB_V2_CITATION,
        aggregations=(BenchmarkAggregation.MEAN_TASK, by_modality, by_category),
    )


_CONSTANTS = {"MMEB_V2": None, "MMEB_V2_IMAGE": "image", "MMEB_V2_VIDEO": "video", "MMEB_V2_VISDOC": "visdoc"}
_built: dict[str, Benchmark] = {}


def __getattr__(name: str) -> Benchmark:
    if name in _CONSTANTS:
        if name not in _built:
            _built[name] = mmeb_v2_benchmark(_CONSTANTS[name])
        return _built[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BENCHMARK_NAMES", "MMEB_V2", "MMEB_V2_IMAGE", "MMEB_V2_VIDEO", "MMEB_V2_VISDOC", "mmeb_v2_benchmark"]
