"""The 78 MMEB-V2 tasks: benchmark listing, mteb metadata validation, counts, protocol fields, data paths."""

from __future__ import annotations

from collections import Counter

import pytest
from mteb.benchmarks.benchmark import Benchmark

from twn_hf.mteb import MMEB_V2, get_task, get_tasks, mmeb_v2_benchmark
from twn_hf.mteb.tasks import HUB_REVISIONS, MMEBV2Task
from twn_hf.mteb.tasks.data import load_table, resolve_frame_root, sample_frames, video_frames
from twn_hf.mteb.tasks.video_labels import VIDEO_CLASS_LABELS

EXPECTED_CATEGORIES = {
    ("image", "CLS"): 10, ("image", "QA"): 10, ("image", "RET"): 12, ("image", "VG"): 4,
    ("video", "CLS"): 5, ("video", "QA"): 5, ("video", "RET"): 5, ("video", "MRET"): 3,
    ("visdoc", "ViDoRe-V1"): 10, ("visdoc", "ViDoRe-V2"): 4, ("visdoc", "VisRAG"): 6, ("visdoc", "VisDoc-OOD"): 4,
}


def test_benchmark_lists_all_78_tasks_with_valid_metadata():
    assert isinstance(MMEB_V2, Benchmark) and MMEB_V2.name == "MMEB-V2"
    tasks = list(MMEB_V2)
    assert len(tasks) == 78 and len({t.metadata.name for t in tasks}) == 78
    for task in tasks:  # mteb's own checks (tests/test_tasks/test_all_metadata_is_filled_and_valid)
        assert isinstance(task, MMEBV2Task)
        task.metadata._validate_metadata()
        assert task.metadata.is_filled(), task.metadata.name
        assert task.metadata.dataset.get("trust_remote_code", False) is False
        assert isinstance(task.metadata.simplified_task_type, str)
        assert task.metadata.name.startswith("MMEBV2-")


def test_counts_per_modality_and_category():
    tasks = list(MMEB_V2)
    assert Counter(t.spec.modality for t in tasks) == {"image": 36, "video": 18, "visdoc": 24}
    assert Counter((t.spec.modality, t.spec.category) for t in tasks) == EXPECTED_CATEGORIES
    for modality, size in (("image", 36), ("video", 18), ("visdoc", 24)):
        part = mmeb_v2_benchmark(modality)
        assert part.name == f"MMEB-V2({modality})" and len(part.tasks) == size
        assert {t.spec.modality for t in part.tasks} == {modality}


def test_protocol_fields():
    tasks = {t.mmeb_name: t for t in MMEB_V2}
    for task in tasks.values():
        metric = "ndcg_at_5" if task.spec.modality == "visdoc" else "hit_rate_at_1"
        assert task.metadata.main_score == metric
    assert {t.spec.eval_type for t in tasks.values() if t.spec.modality == "image"} == {"local"}
    assert {t.spec.eval_type for t in tasks.values() if t.spec.modality == "visdoc"} == {"global"}
    global_video = {n for n, t in tasks.items() if t.spec.modality == "video" and t.spec.eval_type == "global"}
    assert global_video == {"HMDB51", "UCF101", "K700", "Breakfast", "MSR-VTT", "MSVD", "DiDeMo", "YouCook2", "VATEX"}
    # the two *-page sets read the fixed data; the three English-only ViDoRe-v2 sets are not scored
    assert tasks["ViDoSeek-page"].spec.hf_path == "VLM2Vec/ViDoSeek-page-fixed"
    assert tasks["MMLongBench-page"].spec.hf_path == "VLM2Vec/MMLongBench-page-fixed"
    assert not any(n.endswith("_v2") and "human" not in n for n in tasks)
    assert tasks["VisRAG_ChartQA"].spec.hf_split == "train" and tasks["VisRAG_ChartQA"].spec.num_queries == 63
    assert tasks["SmthSmthV2"].spec.max_queries == 1000
    assert len(tasks["MVBench"].spec.hf_configs) == 20
    assert {k: len(v) for k, v in VIDEO_CLASS_LABELS.items()} == {"HMDB51": 51, "UCF101": 101, "K700": 700,
                                                                   "Breakfast": 10}
    assert all(len(set(v)) == len(v) for v in VIDEO_CLASS_LABELS.values())


def test_revisions_are_recorded():
    task = get_task("MSR-VTT")
    assert HUB_REVISIONS["VLM2Vec/MSR-VTT"] is None and task.metadata.revision == "main"  # unpinned
    pinned = get_task("MSR-VTT", revisions={"VLM2Vec/MSR-VTT": "a" * 40})
    assert pinned.metadata.revision == "a" * 40 and get_task("MSR-VTT").metadata.revision == "main"
    assert task.metadata.dataset["name"] == "test_1k"


def test_get_tasks_by_name_and_modality():
    assert [t.mmeb_name for t in get_tasks(names=["K700", "MMEBV2-WebQA"])] == ["K700", "WebQA"]
    assert len(get_tasks("video")) == 18
    with pytest.raises(KeyError):
        get_task("NotATask")
    with pytest.raises(ValueError):
        get_tasks("audio")


def test_local_table_and_frame_helpers(mmeb_root, tmp_path):
    root, _ = mmeb_root
    table = load_table("VLM2Vec/MSR-VTT", "test_1k", "test", root=root)
    assert table.column_names == ["video_id", "video", "caption"] and len(table) == 3
    # natural frame order, 8 of 10 evenly spaced: frame_1 .. frame_10 -> indices 0,1,2,3,5,6,7,9
    frames = video_frames(root / "video-tasks/frames/video_ret/MSR-VTT/video7020")
    assert [f.rsplit("/", 1)[1] for f in frames] == [f"frame_{k}.jpg" for k in (1, 2, 3, 4, 6, 7, 8, 10)]
    assert sample_frames(list(range(5))) == [0, 1, 2, 3, 4]
    # the maintained harness nests the frames (video_ret/data/ziyan/video_retrieval/<DS>/frames)
    nested = tmp_path / "video-tasks/frames/video_ret/data/ziyan/video_retrieval/MSVD/frames"
    nested.mkdir(parents=True)
    assert resolve_frame_root(tmp_path, "video-tasks/frames/video_ret/MSVD") == nested


def test_missing_media_root_says_how_to_get_it(monkeypatch):
    monkeypatch.delenv("MMEB_V2_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="MMEB_V2_ROOT"):
        get_task("MSR-VTT").load_data()
