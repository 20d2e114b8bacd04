"""A tiny MMEB-V2 in MMEB-V2's on-disk layout, written in code (a few queries per modality).

```
root/
  image-tasks/MMEB/<task>/Test/*.jpg                       images, as unpacked from mmeb_v1.tar.gz
  video-tasks/frames/video_ret/MSR-VTT/<video>/frame_*.jpg  pre-extracted frames (10 per video)
  video-tasks/frames/video_qa/Video-MME/<video>/*.jpeg
  ziyjiang/MMEB_Test_Instruct/<task>/test-00000-of-00001.parquet   annotation repos, Hub file layout
  VLM2Vec/MSR-VTT/test_1k/test-00000-of-00001.parquet
  VLM2Vec/Video-MME/data/test-00000-of-00001.parquet
  vidore/docvqa_test_subsampled_beir/{queries,corpus,qrels}/test-00000-of-00001.parquet
```

`write_mmeb_fixture(root)` returns the raw rows, so tests can rebuild every input by hand.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, Features, Image, Value
from PIL import Image as PILImage


def _image(path: Path, color, size=(56, 56)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", size, color).save(path)


def _parquet(rows: list[dict], path: Path, features: Features | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


N24_LABELS = ["politics", "sports", "science", "travel"]
N24_ROWS = [
    # (caption, label order: positive first, as in MMEB_Test_Instruct)
    ("A senator speaks to reporters outside the building.", ["politics", "sports", "science"]),
    ("The team celebrates a late goal in the final.", ["sports", "travel", "politics"]),
    ("Researchers show a new telescope image of a galaxy.", ["science", "politics", "travel"]),
]

COCO_ROWS = [
    ("A red bus parked beside a small house.", ["coco/bus.jpg", "coco/cat.jpg", "coco/kite.jpg"]),
    ("Two cats sleeping on a blue sofa.", ["coco/cat.jpg", "coco/kite.jpg", "coco/boat.jpg"]),
    ("A kite flying over a sandy beach.", ["coco/kite.jpg", "coco/boat.jpg", "coco/bus.jpg"]),
]
COCO_COLORS = {"coco/bus.jpg": (220, 30, 30), "coco/cat.jpg": (30, 30, 220), "coco/kite.jpg": (230, 200, 40),
               "coco/boat.jpg": (20, 160, 90)}

MSRVTT_ROWS = [("video7020", "a man is cooking pasta in a kitchen"),
               ("video7021", "children play football in the park"),
               ("video7022", "a dog runs along the beach at sunset")]

VIDEOMME_ROWS = [
    ("vid_a", "What is the main colour of the car?", ["A. Red.", "B. Blue.", "C. Green.", "D. Black."], "B"),
    ("vid_b", "How many people appear?", ["A. One.", "B. Two.", "C. Three.", "D. Four."], "D"),
    ("vid_a", "Where does the scene take place?",
     ["A. A street.", "B. A kitchen.", "C. A beach.", "D. A forest."], "A"),
]

VIDORE_QUERIES = [(11, "What was the revenue in 2019?"), (12, "Who signed the letter?"),
                  (13, "Which table lists the budget?"), (14, "A query without relevant page")]
VIDORE_PAGES = [101, 102, 103, 104, 105, 106]
VIDORE_QRELS = [(11, 101, 2), (11, 103, 1), (11, 104, 0), (12, 102, 1), (12, 102, 2), (13, 105, 1), (13, 106, 1),
                (13, 101, 1)]


def _frames(folder: Path, count: int, seed: int, pattern: str) -> None:
    for k in range(1, count + 1):
        _image(folder / pattern.format(k), ((seed * 53 + k * 21) % 256, (seed * 97 + k * 7) % 256, (k * 40) % 256),
               size=(56, 56))


def write_mmeb_fixture(root: Path) -> dict:
    root = Path(root)
    image_root = root / "image-tasks" / "MMEB"
    annotations = root / "ziyjiang" / "MMEB_Test_Instruct"

    # N24News (image_cls): image + caption query, the class labels as candidates.
    n24 = []
    for i, (caption, labels) in enumerate(N24_ROWS):
        path = f"N24News/Test/n24_{i}.jpg"
        _image(image_root / path, (40 + 70 * i, 200 - 60 * i, 90))
        n24.append({
            "qry_inst": "<|image_1|> Represent the given news image with the following caption for domain "
                        "classification:",
            "qry_text": caption, "qry_img_path": path, "tgt_inst": "", "tgt_text": labels,
            "tgt_img_path": [""] * len(labels),
        })
    _parquet(n24, annotations / "N24News" / "test-00000-of-00001.parquet")

    # MSCOCO_t2i (image_t2i): caption query, images as candidates (shared between queries).
    coco = []
    for caption, paths in COCO_ROWS:
        coco.append({
            "qry_inst": "Find me an everyday image that matches the given caption:", "qry_text": caption,
            "qry_img_path": "", "tgt_inst": "<|image_1|> Represent the given image.", "tgt_text": [""] * len(paths),
            "tgt_img_path": paths,
        })
    for path, color in COCO_COLORS.items():
        _image(image_root / path, color, size=(64, 56))
    _parquet(coco, annotations / "MSCOCO_t2i" / "test-00000-of-00001.parquet")

    # MSR-VTT (msrvtt, global): caption query, every video of the task is a candidate.
    frames = root / "video-tasks" / "frames" / "video_ret" / "MSR-VTT"
    for seed, (video, _) in enumerate(MSRVTT_ROWS):
        _frames(frames / video, 10, seed, "frame_{}.jpg")
    _parquet([{"video_id": v, "video": f"{v}.mp4", "caption": c} for v, c in MSRVTT_ROWS],
             root / "VLM2Vec" / "MSR-VTT" / "test_1k" / "test-00000-of-00001.parquet")

    # Video-MME (videomme, local): video + question, the options as candidates.
    frames = root / "video-tasks" / "frames" / "video_qa" / "Video-MME"
    for seed, video in enumerate(sorted({row[0] for row in VIDEOMME_ROWS})):
        _frames(frames / video, 5, seed + 10, "{:04d}.jpeg")
    _parquet([{"question": q, "videoID": v, "options": o, "answer": a, "question_id": f"{v}-{i}",
               "domain": "Knowledge", "sub_category": "Other"} for i, (v, q, o, a) in enumerate(VIDEOMME_ROWS)],
             root / "VLM2Vec" / "Video-MME" / "data" / "test-00000-of-00001.parquet")

    # ViDoRe DocVQA (BEIR, global, graded qrels): pages live inside the corpus table.
    beir = root / "vidore" / "docvqa_test_subsampled_beir"
    _parquet([{"query-id": q, "query": text} for q, text in VIDORE_QUERIES],
             beir / "queries" / "test-00000-of-00001.parquet")
    pages = [{"corpus-id": p, "image": PILImage.new("RGB", (56 + 8 * i, 72), (25 * i, 255 - 30 * i, 120))}
             for i, p in enumerate(VIDORE_PAGES)]
    _parquet(pages, beir / "corpus" / "test-00000-of-00001.parquet",
             Features({"corpus-id": Value("int64"), "image": Image()}))
    _parquet([{"query-id": q, "corpus-id": c, "score": s} for q, c, s in VIDORE_QRELS],
             beir / "qrels" / "test-00000-of-00001.parquet")
    return {"N24News": n24, "MSCOCO_t2i": coco, "image_root": image_root,
            "msrvtt_frames": root / "video-tasks" / "frames" / "video_ret" / "MSR-VTT",
            "videomme_frames": root / "video-tasks" / "frames" / "video_qa" / "Video-MME", "pages": pages}
