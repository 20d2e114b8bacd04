"""MMEB-V2's dataset parsers: annotation rows -> queries, their candidates and their labels.

One function per parser of the reference harness (the `dataset_parser` of its eval yaml). Each
returns the task's queries and a pool of candidates keyed by *candidate name*: MMEB-V2 deduplicates
candidates by name across the whole task, so equal names share one input and one embedding.

How an MMEB input becomes a TWN input: the reference renders everything into one string,
`"<media token> {instruction} {text}"`; a TWN input keeps the parts apart, `{"instruction", "text",
"image" | "video"}`, and TWN's chat template places them (instruction, media, text). The
instruction of an image task is a field of each row, so it travels with the row; the other
instructions are code constants of the harness and live in the task's mteb `prompt`
(`{"query": ..., "document": ...}`), which the TWN encoder maps from mteb's `prompt_type`.
Candidates the harness gives no instruction (class labels, answer options) get none.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data import MMEBDataError, list_frames, require_media_root, resolve_frame_root, resolve_image, video_frames
from .specs import MOMENTSEEKER_INSTRUCTIONS, NUM_VIDEO_FRAMES, MMEBTaskSpec
from .video_labels import VIDEO_CLASS_LABELS

logger = logging.getLogger(__name__)


@dataclass
class Candidate:
    """One candidate input. `image` is a file path; `video` a list of frame paths."""

    text: str = ""
    image: str | None = None
    video: list[str] | None = None
    instruction: str = ""


@dataclass
class Query:
    """One query with the names of its own candidates (local ranking) and its relevant names."""

    candidates: list[str]
    labels: dict[str, int]
    text: str = ""
    image: str | None = None
    video: list[str] | None = None
    instruction: str = ""


@dataclass
class Parsed:
    queries: list[Query] = field(default_factory=list)
    pool: dict[str, Candidate] = field(default_factory=dict)
    """Every unique candidate of the task, by name, first occurrence first."""
    corpus_table: Any = None
    """Visual documents: the BEIR `corpus` table (its `image` column stays lazily decoded)."""

    def add(self, name: str, make: Callable[[], Candidate]) -> str:
        if name not in self.pool:
            self.pool[name] = make()
        return name


@dataclass
class ParseContext:
    spec: MMEBTaskSpec
    load: Callable[[str | None], Any]
    """`load(config)` -> the annotation table of that config (the spec's split)."""
    root: Path | None
    num_frames: int = NUM_VIDEO_FRAMES

    def table(self):
        spec = self.spec
        if len(spec.hf_configs) == 1:
            table = self.load(spec.hf_configs[0])
        else:  # MVBench: one config per sub-task, concatenated with their name in `subset`
            from datasets import concatenate_datasets

            parts = []
            for config in spec.hf_configs:
                part = self.load(config)
                parts.append(part.add_column("subset", [config] * len(part)))
            table = concatenate_datasets(parts)
        if spec.max_queries is not None and len(table) > spec.max_queries:
            table = table.select(range(spec.max_queries))
        return table

    def media(self) -> Path:
        return require_media_root(self.root, f"MMEB-V2 task {self.spec.name}")

    def frames_root(self) -> Path:
        return resolve_frame_root(self.media(), self.spec.media)


def _cached(function):
    cache: dict = {}

    def wrapper(key):
        if key not in cache:
            cache[key] = function(key)
        return cache[key]

    return wrapper


def _strip_image_token(instruction: str | None) -> str:
    return (instruction or "").replace("<|image_1|>", "").strip()


# ----- image tasks (annotations: ziyjiang/MMEB_Test_Instruct) -------------------------------------
def parse_image_to_text(ctx: ParseContext) -> Parsed:
    """`image_cls`, `image_qa`, `image_i2t`: image (+ text) query; candidates are the `tgt_text` strings.

    The positive is candidate 0; candidates are raw text with no instruction.
    """
    media, parsed = ctx.media(), Parsed()
    image = _cached(lambda path: str(resolve_image(media, path)))
    for row in ctx.table():
        names = [parsed.add(text, lambda text=text: Candidate(text=text)) for text in row["tgt_text"]]
        parsed.queries.append(Query(
            candidates=names, labels={names[0]: 1}, text=(row["qry_text"] or "").strip(),
            image=image(row["qry_img_path"]), instruction=_strip_image_token(row.get("qry_inst")),
        ))
    return parsed


def _captions(row) -> tuple[list[str], list[str], bool]:
    paths, captions = list(row["tgt_img_path"]), list(row["tgt_text"] or [])
    captions += [""] * (len(paths) - len(captions))
    # The harness decides from the first caption whether this task's candidates carry text (WebQA, EDIS, OVEN,
    # RefCOCO-Matching do); otherwise every candidate is the image with the target instruction only.
    return paths, captions, bool(captions and captions[0].strip())


def parse_text_to_image(ctx: ParseContext) -> Parsed:
    """`image_t2i`: text query; candidates are images (+ caption) named by their path, positive first."""
    media, parsed = ctx.media(), Parsed()
    image = _cached(lambda path: str(resolve_image(media, path)))
    for row in ctx.table():
        paths, captions, with_text = _captions(row)
        instruction = _strip_image_token(row.get("tgt_inst"))
        names = [
            parsed.add(path, lambda path=path, caption=caption: Candidate(
                text=caption.strip() if with_text else "", image=image(path), instruction=instruction))
            for path, caption in zip(paths, captions)
        ]
        parsed.queries.append(Query(
            candidates=names, labels={names[0]: 1}, text=(row["qry_text"] or "").strip(),
            instruction=_strip_image_token(row.get("qry_inst")),
        ))
    return parsed


def parse_image_to_image(ctx: ParseContext) -> Parsed:
    """`image_i2i_vg`: image (+ text) query; image (+ caption) candidates named `path:caption`.

    The name keeps several crops of one image apart (RefCOCO-Matching), exactly as the harness
    builds it: `path + ':' + caption.strip('"')`.
    """
    media, parsed = ctx.media(), Parsed()
    image = _cached(lambda path: str(resolve_image(media, path)))
    for row in ctx.table():
        paths, captions, with_text = _captions(row)
        instruction = _strip_image_token(row.get("tgt_inst"))
        names = [
            parsed.add(f"{path}:{caption.strip(chr(34))}", lambda path=path, caption=caption: Candidate(
                text=caption.strip() if with_text else "", image=image(path), instruction=instruction))
            for path, caption in zip(paths, captions)
        ]
        parsed.queries.append(Query(
            candidates=names, labels={names[0]: 1}, text=(row["qry_text"] or "").strip(),
            image=image(row["qry_img_path"]), instruction=_strip_image_token(row.get("qry_inst")),
        ))
    return parsed


# ----- video classification ---------------------------------------------------------------------------
def parse_video_classification(ctx: ParseContext) -> Parsed:
    """HMDB51, UCF101, K700, Breakfast: a video ranked against the dataset's whole label list (global)."""
    frames, parsed = ctx.frames_root(), Parsed()
    for row in ctx.table():
        label = row["pos_text"]
        parsed.add(label, lambda label=label: Candidate(text=label))
        parsed.queries.append(Query(candidates=[label], labels={label: 1},
                                    video=video_frames(frames / str(row["video_id"]), ctx.num_frames)))
    for label in VIDEO_CLASS_LABELS[ctx.spec.name]:
        parsed.add(label, lambda label=label: Candidate(text=label))
    return parsed


def parse_ssv2(ctx: ParseContext) -> Parsed:
    """SmthSmthV2: a video ranked against its own `neg_text` labels; the label is `pos_text` (local).

    [I] `neg_text` is taken to contain the positive; a query whose positive is missing from it scores 0.
    """
    frames, parsed = ctx.frames_root(), Parsed()
    for row in ctx.table():
        names = [parsed.add(text, lambda text=text: Candidate(text=text)) for text in row["neg_text"]]
        parsed.queries.append(Query(candidates=names, labels={row["pos_text"]: 1},
                                    video=video_frames(frames / str(row["video_id"]), ctx.num_frames)))
    return parsed


# ----- video retrieval (text -> video, global) --------------------------------------------------------
def _text_to_video(ctx: ParseContext, rows, *, skip_missing: bool) -> Parsed:
    """`rows` yields (video name, caption); each row's video is a candidate named by its id."""
    frames, parsed, skipped = ctx.frames_root(), Parsed(), 0
    for name, caption in rows:
        name = str(name)
        folder = frames / name
        if skip_missing and not list_frames(folder):
            skipped += 1
            continue
        parsed.add(name, lambda folder=folder: Candidate(video=video_frames(folder, ctx.num_frames)))
        parsed.queries.append(Query(candidates=[name], labels={name: 1}, text=caption))
    if skipped:
        logger.warning("%s: skipped %d queries whose video frames are missing", ctx.spec.name, skipped)
    return parsed


def parse_msrvtt(ctx):
    return _text_to_video(ctx, ((r["video_id"], r["caption"]) for r in ctx.table()), skip_missing=False)


def parse_msvd(ctx):
    """MSVD: the first caption of each video is its query; videos without frames are skipped (as upstream)."""
    return _text_to_video(ctx, ((r["video_id"], r["caption"][0]) for r in ctx.table()), skip_missing=True)


def parse_didemo(ctx):
    rows = ((os.path.splitext(os.path.basename(r["video"]))[0], r["caption"]) for r in ctx.table())
    return _text_to_video(ctx, rows, skip_missing=False)


def parse_youcook2(ctx):
    """YouCook2 (validation split): one query per annotated step; clips without frames are skipped (as upstream)."""
    return _text_to_video(ctx, ((r["id"], r["sentence"]) for r in ctx.table()), skip_missing=True)


def parse_vatex(ctx):
    return _text_to_video(ctx, ((r["videoID"], r["enCap"][0]) for r in ctx.table()), skip_missing=False)


# ----- moment retrieval (local) -------------------------------------------------------------------
def parse_moment_retrieval(ctx: ParseContext) -> Parsed:
    """QVHighlight, Charades-STA: the full video (`<video>/query/` frames) + text; candidates are the
    clip folders beside it, the relevant one(s) named `positive*`."""
    frames, parsed = ctx.frames_root(), Parsed()
    for row in ctx.table():
        video = os.path.splitext(os.path.basename(row["video_path"]))[0]
        folder = frames / video
        if not (folder / "query").is_dir():
            raise MMEBDataError(f"{ctx.spec.name}: query frames not found: {folder / 'query'}")
        clips = sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "query")
        names = [parsed.add(f"{video}/{clip.name}",
                            lambda clip=clip: Candidate(video=video_frames(clip, ctx.num_frames)))
                 for clip in clips]
        labels = {name: 1 for name, clip in zip(names, clips) if clip.name.startswith("positive")}
        if not labels:
            raise MMEBDataError(f"{ctx.spec.name}: no positive clip under {folder}")
        parsed.queries.append(Query(candidates=names, labels=labels, text=row["query"],
                                    video=video_frames(folder / "query", ctx.num_frames)))
    return parsed


def parse_momentseeker(ctx: ParseContext) -> Parsed:
    """MomentSeeker: a text, image (`input_frames` ends in .jpg) or video (.mp4) query plus text, ranked
    against its positive and negative clips; several clips may be relevant.

    Each query modality has its own instruction, so the instruction travels with the row.
    """
    frames, parsed = ctx.frames_root(), Parsed()
    clip_dir = lambda path: frames / "video_frames" / path.replace("/", "_").split(".mp4")[0]  # noqa: E731
    for row in ctx.table():
        source = row.get("input_frames") or ""
        query = Query(candidates=[], labels={}, text=row["query"])
        if source.endswith(".mp4"):
            query.video = video_frames(clip_dir(source), ctx.num_frames)
            query.instruction = MOMENTSEEKER_INSTRUCTIONS["video"]
        elif source.endswith(".jpg"):
            path = frames / f"query_{source}"
            if not path.is_file():
                raise MMEBDataError(f"MomentSeeker query image not found: {path}")
            query.image = str(path)
            query.instruction = MOMENTSEEKER_INSTRUCTIONS["image"]
        else:
            query.instruction = MOMENTSEEKER_INSTRUCTIONS["text"]
        for key, relevant in (("positive_frames", True), ("negative_frames", False)):
            for entry in row[key] or []:
                path = entry["output_path"]
                name = str(clip_dir(path).relative_to(frames))
                parsed.add(name, lambda path=path: Candidate(video=video_frames(clip_dir(path), ctx.num_frames)))
                query.candidates.append(name)
                if relevant:
                    query.labels[name] = 1
        parsed.queries.append(query)
    return parsed


# ----- video QA (local; the positive is not candidate 0) ---------------------------------------------
def _strip_option_letter(option: str) -> str:
    """`"A. red"` -> `"red"`, exactly as the harness does it (`o[o.find('. '):].strip('. ')`)."""
    return option[option.find(". "):].strip(". ")


def _qa_block(question: str, options: list[str]) -> str:
    """The harness's `qa_template`: the question, then `Options:` and `(A) ...` lines."""
    lines = [f"{question}", "Options:"] + [f"({chr(ord('A') + i)}) {option}" for i, option in enumerate(options)]
    return "\n".join(lines).rstrip()


def _video_qa(ctx: ParseContext, rows) -> Parsed:
    """`rows` yields (frame folder, question text, [(candidate name, candidate text)], label name)."""
    parsed = Parsed()
    for folder, text, options, label in rows:
        names = [parsed.add(name, lambda text=option_text: Candidate(text=text)) for name, option_text in options]
        parsed.queries.append(Query(candidates=names, labels={label: 1}, text=text,
                                    video=video_frames(folder, ctx.num_frames)))
    return parsed


def parse_videomme(ctx):
    """Video-MME: options `"A. ..."` are the candidate names, their text has the letter stripped."""
    frames = ctx.frames_root()

    def rows():
        for r in ctx.table():
            options = list(r["options"])
            yield (frames / str(r["videoID"]), "Question: " + r["question"] + "\n" + "\n".join(options),
                   [(o, _strip_option_letter(o)) for o in options], options["ABCD".index(r["answer"])])

    return _video_qa(ctx, rows())


def parse_nextqa(ctx):
    frames = ctx.frames_root()

    def rows():
        for r in ctx.table():
            options = [r[f"a{i}"] for i in range(5)]
            yield (frames / str(r["video"]), "Question: " + _qa_block(r["question"], options),
                   [(o, o) for o in options], options[int(r["answer"])])

    return _video_qa(ctx, rows())


def parse_egoschema(ctx):
    """EgoSchema: the options follow the question with no separator, as upstream writes it."""
    frames = ctx.frames_root()

    def rows():
        for r in ctx.table():
            options = list(r["option"])
            yield (frames / str(r["video_idx"]), "Question: " + r["question"] + " ".join(options),
                   [(o, _strip_option_letter(o)) for o in options], options[int(r["answer"])])

    return _video_qa(ctx, rows())


def parse_mvbench(ctx):
    """MVBench: candidates become `(A) ...` strings; the label is the answer in the same form."""
    frames = ctx.frames_root()

    def rows():
        for r in ctx.table():
            options = list(r["candidates"])
            letter = options.index(r["answer"]) if r["answer"] in options else -1
            formatted = [f"({chr(ord('A') + i)}) {o}" for i, o in enumerate(options)]
            yield (frames / r["subset"] / str(r["video"]), "Question: " + _qa_block(r["question"], options),
                   [(o, o) for o in formatted], f"({chr(ord('A') + letter)}) {r['answer']}")

    return _video_qa(ctx, rows())


def parse_activitynetqa(ctx):
    frames = ctx.frames_root()

    def rows():
        for r in ctx.table():
            yield (frames / f"v_{r['video_name']}", "Question: " + r["question"] + "? (A) yes; (B) no.",
                   [("yes", "yes"), ("no", "no")], r["answer"])

    return _video_qa(ctx, rows())


# ----- visual documents (BEIR tables, global, graded qrels) -------------------------------------
def parse_beir(ctx: ParseContext) -> Parsed:
    """ViDoRe / VisRAG / ViDoSeek / MMLongBench: `queries`, `corpus`, `qrels` configs of one repo.

    Relevance keeps `score > 0`, the maximum per (query, page) pair. The candidate pool is the
    whole corpus (a query's positives are part of it); queries without a positive are dropped
    (upstream fails on them).
    """
    qrels: dict[str, dict[str, int]] = {}
    for row in ctx.load("qrels").select_columns(["query-id", "corpus-id", "score"]):
        if row["score"] > 0:
            relevant = qrels.setdefault(str(row["query-id"]), {})
            relevant[str(row["corpus-id"])] = max(relevant.get(str(row["corpus-id"]), 0), int(row["score"]))
    corpus = ctx.load("corpus").select_columns(["corpus-id", "image"])
    ids = [str(i) for i in corpus["corpus-id"]]
    parsed = Parsed(corpus_table=corpus)
    missing = 0
    for row in ctx.load("queries").select_columns(["query-id", "query"]):
        labels = qrels.get(str(row["query-id"]))
        if not labels:
            missing += 1
            continue
        parsed.queries.append(Query(candidates=[], labels=labels, text=row["query"]))
    if missing:
        logger.warning("%s: dropped %d queries without a relevant page", ctx.spec.name, missing)
    unknown = {doc for q in parsed.queries for doc in q.labels} - set(ids)
    if unknown:
        logger.warning("%s: %d relevant pages are not in the corpus", ctx.spec.name, len(unknown))
    return parsed


PARSERS: dict[str, Callable[[ParseContext], Parsed]] = {
    "image_cls": parse_image_to_text,
    "image_qa": parse_image_to_text,
    "image_i2t": parse_image_to_text,
    "image_t2i": parse_text_to_image,
    "image_i2i_vg": parse_image_to_image,
    "video_classification": parse_video_classification,
    "ssv2": parse_ssv2,
    "msrvtt": parse_msrvtt,
    "msvd": parse_msvd,
    "didemo": parse_didemo,
    "youcook2": parse_youcook2,
    "vatex": parse_vatex,
    "moment_retrieval": parse_moment_retrieval,
    "momentseeker": parse_momentseeker,
    "videomme": parse_videomme,
    "nextqa": parse_nextqa,
    "egoschema": parse_egoschema,
    "mvbench": parse_mvbench,
    "activitynetqa": parse_activitynetqa,
    "vidore": parse_beir,
    "visrag": parse_beir,
}
