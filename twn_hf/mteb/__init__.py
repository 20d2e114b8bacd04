"""TWN in mteb, and MMEB-V2 as mteb tasks.

```python
import mteb
from twn_hf.mteb import mmeb_v2_benchmark, mmeb_v2_report, twn_model_meta

meta = twn_model_meta("zhanglx/TWN-8B", revision="<sha>")   # or a local checkpoint folder
encoder = meta.load_model(device="cuda")                      # think="auto"; or load_model(think="never")
results = mteb.evaluate(encoder, mmeb_v2_benchmark(), encode_kwargs={"batch_size": 16})
print(mmeb_v2_report(results, output_dir="results/").to_markdown())
```

* `model`: `TWNEncoder` (mteb `AbsEncoder` over a `TWNModel`) and `twn_model_meta` (its `ModelMeta`).
* `tasks`: the 78 MMEB-V2 tasks (`get_tasks`, `get_task`), data from the Hub or `$MMEB_V2_ROOT`.
* `benchmark`: `mmeb_v2_benchmark(modality)` and the lazily built `MMEB_V2`, `MMEB_V2_IMAGE`, ...
* `aggregate`: the leaderboard's category / modality / overall means as markdown and JSON.
"""

from .aggregate import MMEBV2Report, aggregate_scores, mmeb_v2_report, scores_from_results
from .benchmark import BENCHMARK_NAMES, mmeb_v2_benchmark
from .model import TWNEncoder, TWNModelMeta, experiment_kwargs, twn_model_meta
from .tasks import (
    HUB_REVISIONS,
    TASK_SPECS,
    MMEBV2Task,
    fetch_mmeb_v2_media,
    get_task,
    get_tasks,
    mmeb_name,
    task_name,
)

__all__ = [
    "BENCHMARK_NAMES", "HUB_REVISIONS", "MMEB_V2", "MMEB_V2_IMAGE", "MMEB_V2_VIDEO", "MMEB_V2_VISDOC",
    "MMEBV2Report", "MMEBV2Task", "TASK_SPECS", "TWNEncoder", "TWNModelMeta", "aggregate_scores",
    "experiment_kwargs", "fetch_mmeb_v2_media", "get_task", "get_tasks", "mmeb_name", "mmeb_v2_benchmark",
    "mmeb_v2_report", "scores_from_results", "task_name", "twn_model_meta",
]


def __getattr__(name: str):
    if name in ("MMEB_V2", "MMEB_V2_IMAGE", "MMEB_V2_VIDEO", "MMEB_V2_VISDOC"):
        from . import benchmark

        return getattr(benchmark, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
