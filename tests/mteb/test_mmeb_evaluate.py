"""`mteb.evaluate` on the tiny MMEB-V2 fixture equals MMEB-V2's protocol computed by hand.

The hand side never touches `twn_hf.mteb`: it rebuilds every input from the raw fixture rows with
MMEB-V2's instructions, embeds with `TWNModel.encode`, and scores with the reference protocol
(candidates deduplicated by name; local = own candidates, global = every candidate; hit@1;
nDCG@5 with linear gains).
"""

from __future__ import annotations

import math

import mteb
import numpy as np
import pytest
from mmeb_fixture import COCO_ROWS, MSRVTT_ROWS, N24_ROWS, VIDEOMME_ROWS, VIDORE_QRELS, VIDORE_QUERIES
from mteb._create_dataloaders import create_dataloader
from mteb.types import PromptType
from PIL import Image

from twn_hf.mteb import TWNEncoder, get_task, twn_model_meta

QA = ("Given a video and a question, select the most accurate answer from the provided candidates. "
      "Return only the exact text of your chosen answer.")


def _embed(twn, inputs):
    return twn.encode(inputs, think="never", batch_size=8, convert_to_numpy=True)


def _hit_at_1(twn, case):
    """Local: each query against its own candidates; global (`own` None): against every candidate name."""
    queries, candidates, own, labels = case
    names = list(candidates)
    q = _embed(twn, queries)
    c = dict(zip(names, _embed(twn, [candidates[n] for n in names])))
    hits = []
    for i, label in enumerate(labels):
        pool = own[i] if own is not None else names
        scores = [float(q[i] @ c[n]) for n in pool]
        hits.append(pool[int(np.argmax(scores))] == label)
    return float(np.mean(hits))


def _frames(folder, sample=8):
    files = sorted(folder.iterdir(), key=lambda p: int("".join(ch for ch in p.stem if ch.isdigit())))
    if len(files) > sample:
        files = [files[i] for i in np.linspace(0, len(files) - 1, sample, dtype=int)]
    return [Image.open(f).convert("RGB") for f in files]


# Each `*_inputs` returns (query inputs, {candidate name: input}, per-query candidate names or None, labels).
def n24news_inputs(raw):
    image_root = raw["image_root"]
    queries = [{"instruction": "Represent the given news image with the following caption for domain classification:",
                "text": caption, "image": Image.open(image_root / row["qry_img_path"]).convert("RGB")}
               for (caption, _), row in zip(N24_ROWS, raw["N24News"])]
    candidates = {label: {"text": label} for _, labels in N24_ROWS for label in labels}
    return queries, candidates, [labels for _, labels in N24_ROWS], [labels[0] for _, labels in N24_ROWS]


def mscoco_t2i_inputs(raw):
    queries = [{"instruction": "Find me an everyday image that matches the given caption:", "text": caption}
               for caption, _ in COCO_ROWS]
    candidates = {p: {"image": Image.open(raw["image_root"] / p).convert("RGB"),
                      "instruction": "Represent the given image."} for _, paths in COCO_ROWS for p in paths}
    return queries, candidates, [paths for _, paths in COCO_ROWS], [paths[0] for _, paths in COCO_ROWS]


def msrvtt_inputs(raw):
    queries = [{"instruction": "Find a video that contains the following visual content:", "text": caption}
               for _, caption in MSRVTT_ROWS]
    candidates = {video: {"video": _frames(raw["msrvtt_frames"] / video),
                          "instruction": "Understand the content of the provided video."} for video, _ in MSRVTT_ROWS}
    return queries, candidates, None, [video for video, _ in MSRVTT_ROWS]


def videomme_inputs(raw):
    queries = [{"instruction": QA, "text": "Question: " + q + "\n" + "\n".join(options),
                "video": _frames(raw["videomme_frames"] / video)} for video, q, options, _ in VIDEOMME_ROWS]
    candidates = {o: {"text": o[o.find(". "):].strip(". ")} for _, _, options, _ in VIDEOMME_ROWS for o in options}
    labels = [options["ABCD".index(answer)] for _, _, options, answer in VIDEOMME_ROWS]
    return queries, candidates, [options for _, _, options, _ in VIDEOMME_ROWS], labels


def vidore_inputs(raw):
    qrels: dict[int, dict[str, int]] = {}
    for q, c, s in VIDORE_QRELS:
        if s > 0:
            qrels.setdefault(q, {})[str(c)] = max(qrels.get(q, {}).get(str(c), 0), s)
    kept = [(q, text) for q, text in VIDORE_QUERIES if q in qrels]
    queries = [{"instruction": "Find a document image that matches the given query:", "text": t} for _, t in kept]
    pages = {str(row["corpus-id"]): {"image": row["image"],
                                     "instruction": "Understand the content of the provided document image."}
             for row in raw["pages"]}
    return queries, pages, None, [qrels[q] for q, _ in kept]


def _ndcg_at_5(twn, case):
    queries, pages, _, qrels = case
    names = list(pages)
    q, p = _embed(twn, queries), _embed(twn, list(pages.values()))
    ndcgs = []
    for i, relevant in enumerate(qrels):
        order = np.argsort(-(p @ q[i]))
        gains = [relevant.get(names[j], 0) for j in order[:5]]
        dcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))
        ideal = sorted(relevant.values(), reverse=True)[:5]
        ndcgs.append(dcg / sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal)))
    return float(np.mean(ndcgs))


CASES = {
    "N24News": ("hit_rate_at_1", n24news_inputs, _hit_at_1),
    "MSCOCO_t2i": ("hit_rate_at_1", mscoco_t2i_inputs, _hit_at_1),
    "MSR-VTT": ("hit_rate_at_1", msrvtt_inputs, _hit_at_1),
    "Video-MME": ("hit_rate_at_1", videomme_inputs, _hit_at_1),
    "ViDoRe_docvqa": ("ndcg_at_5", vidore_inputs, _ndcg_at_5),
}


def _main_scores(result):
    (task_result,) = result.task_results
    (split,) = task_result.scores
    (scores,) = task_result.scores[split]
    return scores


def _evaluate(model, task, **kwargs):
    return mteb.evaluate(model, task, cache=None, show_progress_bar=False, co2_tracker=False,
                         encode_kwargs={"batch_size": 4, "show_progress_bar": False}, **kwargs)


@pytest.mark.parametrize("name", list(CASES))
def test_evaluate_matches_hand_computed_protocol(twn, mmeb_root, name):
    root, raw = mmeb_root
    metric, inputs, score = CASES[name]
    encoder = TWNEncoder(twn, think="never", revision="fixture")
    scores = _main_scores(_evaluate(encoder, get_task(name, root=root)))
    assert scores["main_score"] == scores[metric]
    assert scores[metric] == pytest.approx(score(twn, inputs(raw)), abs=1e-4)


@pytest.mark.parametrize("name", list(CASES))
def test_encoder_builds_the_protocol_inputs(twn, mmeb_root, name):
    """Embeddings the encoder produces from mteb's batches equal those of the hand-built inputs, for the
    queries and for every (deduplicated) candidate: instruction, text, image and video all arrive."""
    root, raw = mmeb_root
    _, inputs, _ = CASES[name]
    queries, candidates, _, _ = inputs(raw)
    task = get_task(name, root=root)
    task.load_data()
    split = task.dataset["default"][task.spec.hf_split]
    encoder = TWNEncoder(twn, think="never", revision="fixture")
    assert list(split["corpus"]["id"]) == list(candidates)
    for data, prompt_type, expected in ((split["queries"], PromptType.query, queries),
                                        (split["corpus"], PromptType.document, list(candidates.values()))):
        loader = create_dataloader(data, task_metadata=task.metadata, prompt_type=prompt_type, batch_size=3)
        got = encoder.encode(loader, task_metadata=task.metadata, hf_split="test", hf_subset="default",
                             prompt_type=prompt_type, batch_size=3)
        np.testing.assert_allclose(got, _embed(twn, expected), atol=1e-4)


def test_evaluate_from_model_meta_loads_the_checkpoint(twn, checkpoint_dir, mmeb_root):
    """The meta's loader builds the encoder from the saved checkpoint (remote code); same weights, same score."""
    root, raw = mmeb_root
    meta = twn_model_meta(checkpoint_dir, think="never")
    scores = _main_scores(_evaluate(meta, get_task("N24News", root=root)))
    assert scores["hit_rate_at_1"] == pytest.approx(_hit_at_1(twn, n24news_inputs(raw)), abs=1e-4)


def test_global_and_local_candidates_differ(mmeb_root):
    """MSR-VTT ranks against every video of the task; Video-MME only against each question's options."""
    root, _ = mmeb_root
    msrvtt, videomme = get_task("MSR-VTT", root=root), get_task("Video-MME", root=root)
    msrvtt.load_data()
    videomme.load_data()
    assert msrvtt.dataset["default"]["test"]["top_ranked"] is None
    top = videomme.dataset["default"]["test"]["top_ranked"]
    assert [len(v) for v in top.values()] == [4, 4, 4]
    assert len(videomme.dataset["default"]["test"]["corpus"]) == 12  # 12 distinct option strings
    # the positive is not candidate 0 for video QA
    assert videomme.dataset["default"]["test"]["relevant_docs"]["q0"] == {"B. Blue.": 1}
