"""MMEB-V2 tasks as mteb retrieval tasks.

Protocol mapping ([I] for the mapping itself, the pieces are [R] in `/shared/MMEB-V2.md`):

* Every task is an `AbsTaskRetrieval` whose corpus is the task's unique candidates, deduplicated
  by candidate name (first occurrence kept), with the names as document ids.
* **local** tasks give each query its own candidate list as mteb `top_ranked` (mteb's reranking
  path), so a query is ranked only against its own candidates; **global** tasks have no
  `top_ranked` and rank every query against the whole corpus.
* Relevance: the label name(s) of a query, relevance 1; visual documents keep the graded qrels.
* Scores: image and video tasks report `hit_rate_at_1` (hit@1), visual documents `ndcg_at_5`
  (pytrec_eval's nDCG: linear gains, log2 discount, ideal DCG from the qrels), both in [0, 1].
  Ties are broken by document id (pytrec_eval); the reference leaves them to `argsort`.
  [I] On graded qrels the reference may pair labels and relevance scores in a different order
  (its labels pass through a `set`), so its nDCG there can differ from this standard one.
"""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.types import PromptType

from . import data
from .parsers import PARSERS, ParseContext, Parsed
from .specs import (
    IMAGE,
    LOCAL,
    MOMENTSEEKER_INSTRUCTIONS,
    MOMENT_QUERY_INSTRUCTION,
    NUM_VIDEO_FRAMES,
    SPECS_BY_NAME,
    TASK_SPECS,
    VIDEO,
    VIDEO_CLS_INSTRUCTIONS,
    VIDEO_DOCUMENT_INSTRUCTION,
    VIDEO_QA_INSTRUCTION,
    VIDEO_RET_INSTRUCTIONS,
    VISDOC,
    VISDOC_DOCUMENT_INSTRUCTION,
    VISDOC_QUERY_INSTRUCTION,
    MMEBTaskSpec,
)

logger = logging.getLogger(__name__)

TASK_PREFIX = "MMEBV2-"
"""mteb task names are `MMEBV2-<MMEB name>`: several MMEB names (SUN397, VOC2007, UCF101, Country211)
are also names of different mteb tasks, and results of both would share one cache file."""

MMEB_V2_CITATION = r"""@article{meng2025vlm2vecv2,
  title = {VLM2Vec-V2: Advancing Multimodal Embedding for Videos, Images, and Visual Documents},
  author = {Meng, Rui and Jiang, Ziyan and Liu, Ye and Su, Mingyi and Yang, Xinyi and Fu, Yuepeng and
            Qin, Can and Chen, Zeyuan and Xu, Ran and Xiong, Caiming and Zhou, Yingbo and Chen, Wenhu and
            Yavuz, Semih},
  journal = {arXiv preprint arXiv:2507.04590},
  year = {2025},
}"""
MMEB_V2_REFERENCE = "https://arxiv.org/abs/2507.04590"

# [I] collection windows for mteb's `date` field: MMEB-V1's image tasks (released Oct 2024) and
# MMEB-V2's video and visual-document additions (released Jul 2025).
_DATES = {IMAGE: ("2024-07-01", "2024-10-07"), VIDEO: ("2025-01-01", "2025-07-07"),
          VISDOC: ("2025-01-01", "2025-07-07")}
_MODALITY_CODES = {"t": "text", "i": "image", "v": "video"}
_METRIC_TEXT = {"hit_rate_at_1": "hit@1", "ndcg_at_5": "nDCG@5 (linear gains)"}


def task_name(spec_or_name: MMEBTaskSpec | str) -> str:
    """The mteb task name of an MMEB-V2 task (`"ImageNet-1K"` -> `"MMEBV2-ImageNet-1K"`)."""
    name = spec_or_name.name if isinstance(spec_or_name, MMEBTaskSpec) else spec_or_name
    return name if name.startswith(TASK_PREFIX) else TASK_PREFIX + name


def mmeb_name(name: str) -> str:
    """The MMEB-V2 / leaderboard name of a task (`"MMEBV2-ImageNet-1K"` -> `"ImageNet-1K"`)."""
    return name[len(TASK_PREFIX):] if name.startswith(TASK_PREFIX) else name


def task_prompt(spec: MMEBTaskSpec) -> dict[str, str] | None:
    """The instructions the harness hard-codes for a task, as an mteb prompt dict (None for image tasks,
    whose instructions are per-row dataset fields)."""
    if spec.modality == VISDOC:
        return {"query": VISDOC_QUERY_INSTRUCTION, "document": VISDOC_DOCUMENT_INSTRUCTION}
    if spec.modality != VIDEO:
        return None
    if spec.name in VIDEO_CLS_INSTRUCTIONS:
        return {"query": VIDEO_CLS_INSTRUCTIONS[spec.name]}
    if spec.name in VIDEO_RET_INSTRUCTIONS:
        return {"query": VIDEO_RET_INSTRUCTIONS[spec.name], "document": VIDEO_DOCUMENT_INSTRUCTION}
    if spec.parser == "moment_retrieval":
        return {"query": MOMENT_QUERY_INSTRUCTION, "document": VIDEO_DOCUMENT_INSTRUCTION}
    if spec.parser == "momentseeker":
        return {"document": MOMENTSEEKER_INSTRUCTIONS["document"]}
    return {"query": VIDEO_QA_INSTRUCTION}


def _task_type(spec: MMEBTaskSpec) -> str:
    if spec.modality == VISDOC:
        return "DocumentUnderstanding"
    if spec.category == "QA":
        return "VisionCentricQA" if spec.modality == IMAGE else "VideoCentricQA"
    return "Any2AnyReranking" if spec.eval_type == LOCAL else "Any2AnyRetrieval"


class _MixedQueryMetadata(TaskMetadata):
    """MomentSeeker's queries are text, image *or* video (with text); mteb's categories have no code
    for that, so the query side declares all three modalities (the category says `vt2v`)."""

    def get_modalities(self, prompt_type: PromptType | None = None):
        if prompt_type == PromptType.query:
            return ["text", "image", "video"]
        return super().get_modalities(prompt_type)


def task_metadata(spec: MMEBTaskSpec, revision: str | None = None) -> TaskMetadata:
    """Complete mteb metadata of one MMEB-V2 task. `revision` None (unpinned) is recorded as "main"."""
    query_codes, document_codes = spec.mteb_category.split("2")
    modalities = {_MODALITY_CODES[c] for c in query_codes + document_codes}
    if spec.parser == "momentseeker":
        modalities.add("image")
    ranking = ("each query is ranked against its own candidate list (local)" if spec.eval_type == LOCAL
               else "each query is ranked against every unique candidate of the task (global)")
    description = (
        f"{spec.about} MMEB-V2 {spec.modality} task, category {spec.category}: {ranking}, candidates "
        f"deduplicated by name; scored by {_METRIC_TEXT[spec.main_score]} over {spec.num_queries} queries."
    )
    dataset: dict[str, Any] = {"path": spec.hf_path, "revision": revision or "main"}
    if spec.hf_config and spec.modality != VISDOC:
        dataset["name"] = spec.hf_config
    metadata_class = _MixedQueryMetadata if spec.parser == "momentseeker" else TaskMetadata
    return metadata_class(
        name=task_name(spec),
        description=description,
        reference=MMEB_V2_REFERENCE,
        dataset=dataset,
        type=_task_type(spec),
        category=spec.mteb_category,
        modalities=sorted(modalities),
        eval_splits=[spec.hf_split],
        eval_langs=list(spec.eval_langs),
        main_score=spec.main_score,
        date=_DATES[spec.modality],
        domains=list(spec.domains),
        task_subtypes=list(spec.task_subtypes),
        license=spec.license,
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation=MMEB_V2_CITATION,
        prompt=task_prompt(spec),
    )


def _dataset(rows: dict[str, list]):
    """A lazily-decoding `datasets.Dataset`: `image` holds paths (Image feature), `video` lists of frame paths."""
    from datasets import Dataset, Features, Image, List, Value

    columns = {"id": rows["id"], "text": rows["text"]}
    features = {"id": Value("string"), "text": Value("string")}
    if any(rows["instruction"]):
        columns["instruction"], features["instruction"] = rows["instruction"], Value("string")
    if any(value is not None for value in rows["image"]):
        columns["image"], features["image"] = rows["image"], Image()
    if any(value is not None for value in rows["video"]):
        columns["video"], features["video"] = rows["video"], List(Image())
    return Dataset.from_dict(columns, features=Features(features))


def _columns(items) -> dict[str, list]:
    rows: dict[str, list] = {"id": [], "text": [], "instruction": [], "image": [], "video": []}
    for item_id, item in items:
        rows["id"].append(item_id)
        rows["text"].append(item.text or "")
        rows["instruction"].append(item.instruction or "")
        rows["image"].append(item.image)
        rows["video"].append(item.video)
    return rows


def build_split(parsed: Parsed, eval_type: str) -> dict[str, Any]:
    """mteb's `RetrievalSplitData` for parsed MMEB rows (see the module docstring for the mapping)."""
    query_ids = [f"q{i}" for i in range(len(parsed.queries))]
    queries = _dataset(_columns(zip(query_ids, parsed.queries)))
    if parsed.corpus_table is not None:
        table = parsed.corpus_table
        ids = [str(i) for i in table["corpus-id"]]
        first = {}
        for index, doc_id in enumerate(ids):
            first.setdefault(doc_id, index)
        if len(first) < len(ids):
            table = table.select(sorted(first.values()))
            ids = [ids[i] for i in sorted(first.values())]
        corpus = table.remove_columns(["corpus-id"]).add_column("id", ids).add_column("text", [""] * len(ids))
    else:
        corpus = _dataset(_columns(parsed.pool.items()))
    relevant = {qid: dict(query.labels) for qid, query in zip(query_ids, parsed.queries)}
    top_ranked = None
    if eval_type == LOCAL:
        top_ranked = {qid: list(dict.fromkeys(query.candidates)) for qid, query in zip(query_ids, parsed.queries)}
    return {"queries": queries, "corpus": corpus, "relevant_docs": relevant, "top_ranked": top_ranked}


class MMEBV2Task(AbsTaskRetrieval):
    """Base class of the 78 MMEB-V2 tasks (one subclass per task, built from `specs.TASK_SPECS`).

    Args:
        root: local MMEB-V2 folder (`$MMEB_V2_ROOT` when None); see `twn_hf.mteb.tasks.data`.
        revisions: per-repo commit overrides of `data.HUB_REVISIONS`.
        num_frames: frames per video (MMEB-V2: 8).
    """

    spec: ClassVar[MMEBTaskSpec]
    k_values = (1, 3, 5, 10, 20, 100, 1000)

    def __init__(self, root: str | os.PathLike | None = None, revisions: dict[str, str | None] | None = None,
                 num_frames: int = NUM_VIDEO_FRAMES, **kwargs):
        self.root = root
        self.revisions = dict(revisions or {})
        self.num_frames = num_frames
        revision = self.revisions.get(self.spec.hf_path, data.HUB_REVISIONS.get(self.spec.hf_path))
        if (revision or "main") != self.metadata.revision:  # pinned after the class was built
            self.metadata = task_metadata(self.spec, revision)
        super().__init__(**kwargs)

    @property
    def mmeb_name(self) -> str:
        return self.spec.name

    def _load_table(self, config: str | None):
        return data.load_table(self.spec.hf_path, config, self.spec.hf_split, root=data.data_root(self.root),
                               revisions=self.revisions)

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        if self.data_loaded:
            return
        spec = self.spec
        root = data.data_root(self.root)
        if spec.media is not None:  # fail before any annotation download
            data.require_media_root(root, f"MMEB-V2 task {spec.name}")
        context = ParseContext(spec=spec, load=self._load_table, root=root, num_frames=self.num_frames)
        parsed = PARSERS[spec.parser](context)
        if len(parsed.queries) != spec.num_queries:
            logger.warning("%s: read %d queries, MMEB-V2's published scores use %d (check the pinned revision)",
                           spec.name, len(parsed.queries), spec.num_queries)
        self.dataset = {"default": {spec.hf_split: build_split(parsed, spec.eval_type)}}
        self.data_loaded = True


def _task_class(spec: MMEBTaskSpec) -> type[MMEBV2Task]:
    class_name = "MMEBV2" + "".join(ch if ch.isalnum() else "_" for ch in spec.name)
    return type(class_name, (MMEBV2Task,), {
        "spec": spec,
        "metadata": task_metadata(spec, data.HUB_REVISIONS.get(spec.hf_path)),
        "__doc__": f"MMEB-V2 task {spec.name}: {spec.about}",
        "__module__": __name__,
    })


TASK_CLASSES: dict[str, type[MMEBV2Task]] = {spec.name: _task_class(spec) for spec in TASK_SPECS}
"""One mteb task class per MMEB-V2 task, keyed by the MMEB name, in leaderboard order."""


def get_task(name: str, **kwargs) -> MMEBV2Task:
    """An MMEB-V2 task instance by MMEB name (`"MSR-VTT"`) or mteb name (`"MMEBV2-MSR-VTT"`)."""
    key = mmeb_name(name)
    if key not in TASK_CLASSES:
        raise KeyError(f"unknown MMEB-V2 task {name!r}; known: {sorted(SPECS_BY_NAME)}")
    return TASK_CLASSES[key](**kwargs)


def get_tasks(modality: str | None = None, *, names=None, **kwargs) -> list[MMEBV2Task]:
    """MMEB-V2 task instances, all 78 or one modality's ("image", "video", "visdoc"), or `names`."""
    if modality is not None and modality not in (IMAGE, VIDEO, VISDOC):
        raise ValueError(f"modality must be 'image', 'video' or 'visdoc', got {modality!r}")
    selected = [mmeb_name(n) for n in names] if names is not None else [
        spec.name for spec in TASK_SPECS if modality is None or spec.modality == modality]
    return [get_task(name, **kwargs) for name in selected]


__all__ = ["MMEBV2Task", "TASK_CLASSES", "TASK_PREFIX", "build_split", "get_task", "get_tasks", "mmeb_name",
           "task_metadata", "task_name", "task_prompt"]
