"""The one training-row format, read with `datasets`, validated row by row.

A row (JSONL line, parquet row or Hub dataset row) has these columns; only a query side and a positive
side are required, everything else is optional (missing or null):

| column | type | meaning |
|---|---|---|
| `query` | str | query text |
| `query_image` | str or list[str] | query image path(s) |
| `query_video` | list[str] | query video as frame paths |
| `instruction` | str | instruction for the query (else the model's default) |
| `query_cot` | str | teacher chain of thought for the query |
| `positive` | str | positive (target) text |
| `positive_image` | str or list[str] | positive image path(s) |
| `positive_video` | list[str] | positive video frame paths |
| `positive_instruction` | str | instruction for the positive |
| `positive_cot` | str | teacher chain of thought for the positive |
| `negatives` | list[str or null] | hard-negative texts |
| `negative_images` | list[str or null] | hard-negative image paths, parallel to `negatives` |

Relative paths resolve against `image_root`. Keep a column's type the same in every row of a file (`datasets`
infers one schema per file). `convert_mmeb_row` maps the public MMEB-train columns onto this format.

Rows are validated when they are loaded (`RowDataset.__getitem__`: images are opened there, usually in
DataLoader workers), so a bad file on row 1,000,000 costs one warning, not the run; `scan_rows` validates
everything up front. A bad row becomes a `BadRow` (row number + reason) which the training loop skips or fails
on, per `--on-bad-row`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from twn_hf.modeling.inputs_twn import TWNInput, load_image

logger = logging.getLogger(__name__)

# Chat/vision markers of the Qwen-VL tokenizers: inside a row's text they would be read as real markers (an
# "<|image_pad|>" in a CoT makes the backbone look for image features it was never given), so such rows are bad rows.
RESERVED_TOKENS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|vision_start|>", "<|vision_end|>",
                   "<|image_pad|>", "<|video_pad|>")
ROW_COLUMNS = ("query", "query_image", "query_video", "instruction", "query_cot", "positive", "positive_image",
               "positive_video", "positive_instruction", "positive_cot", "negatives", "negative_images")


class BadRowError(ValueError):
    """A malformed row with `--on-bad-row fail`; the message names the row(s)."""


@dataclass
class BadRow:
    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass
class Example:
    """One validated row: inputs with their images loaded, and the optional teacher CoTs."""

    row: int
    query: TWNInput
    positive: TWNInput
    negatives: list[TWNInput] = field(default_factory=list)
    query_cot: str | None = None
    positive_cot: str | None = None


class _RowProblem(Exception):
    pass


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RowProblem(f"{key!r} must be a string, got {type(value).__name__}")
    for token in RESERVED_TOKENS:
        if token in value:
            raise _RowProblem(f"{key!r} contains the reserved token {token}")
    return value.strip() or None


def _paths(row: dict, key: str) -> list[str]:
    value = row.get(key)
    if value is None or value == "":
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise _RowProblem(f"{key!r} must be a path or a list of paths, got {value!r}")
    return [v for v in values if v.strip()]


def _resolve(path: str, image_root: str | None) -> str:
    path = os.path.expanduser(path.strip())
    return path if os.path.isabs(path) or image_root is None else os.path.join(image_root, path)


def _image(path: str, what: str, image_root: str | None, max_pixels: int):
    resolved = _resolve(path, image_root)
    try:
        return load_image(resolved, 0, max_pixels, what=what)
    except (ValueError, TypeError) as error:
        # load_image names an input index ("input 0: ..."); the row number is what matters here.
        raise _RowProblem(str(error).removeprefix("input 0: ")) from None


def _side(row: dict, prefix: str, instruction_key: str, image_root, max_pixels) -> TWNInput | None:
    text = _text(row, prefix)
    images = [_image(p, f"{prefix} image", image_root, max_pixels) for p in _paths(row, f"{prefix}_image")]
    frames = _paths(row, f"{prefix}_video")
    video = [_image(p, f"{prefix} video frame {i}", image_root, max_pixels) for i, p in enumerate(frames)] or None
    if video is not None and len({frame.size for frame in video}) > 1:
        video = [frame.resize(video[0].size) for frame in video]
    if text is None and not images and video is None:
        return None
    return TWNInput(text=text, images=images, video=video, instruction=_text(row, instruction_key))


def parse_row(row: dict, index: int, image_root: str | None, max_pixels: int, max_negatives: int = 1) -> Example:
    """Validate one row and load its images; raise `BadRowError` naming `index` if it is malformed."""
    try:
        query = _side(row, "query", "instruction", image_root, max_pixels)
        if query is None:
            raise _RowProblem("no query (needs 'query' text, 'query_image' or 'query_video')")
        positive = _side(row, "positive", "positive_instruction", image_root, max_pixels)
        if positive is None:
            raise _RowProblem("no positive (needs 'positive' text, 'positive_image' or 'positive_video')")
        texts = row.get("negatives") or []
        images = row.get("negative_images") or []
        if not isinstance(texts, (list, tuple)) or not isinstance(images, (list, tuple)):
            raise _RowProblem("'negatives' and 'negative_images' must be lists")
        negatives = []
        for i in range(min(max(len(texts), len(images)), max_negatives)):
            text = texts[i] if i < len(texts) else None
            path = images[i] if i < len(images) else None
            text = _text({f"negative {i} text": text}, f"negative {i} text")
            image = [_image(path, f"negative {i} image", image_root, max_pixels)] if path else []
            if text or image:
                negatives.append(TWNInput(text=text, images=image, instruction=_text(row, "positive_instruction")))
        return Example(index, query, positive, negatives, _text(row, "query_cot"), _text(row, "positive_cot"))
    except _RowProblem as problem:
        raise BadRowError(f"row {index}: {problem}") from None


class RowDataset(Dataset):
    """Rows of a `datasets.Dataset` as `Example`s, validated lazily: a malformed row comes back as a `BadRow`."""

    def __init__(self, rows, image_root: str | None, max_pixels: int, max_negatives: int = 1):
        self.rows = rows
        self.image_root = image_root
        self.max_pixels = max_pixels
        self.max_negatives = max_negatives

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Example | BadRow:
        try:
            return parse_row(self.rows[int(index)], int(index), self.image_root, self.max_pixels, self.max_negatives)
        except BadRowError as error:
            return BadRow(int(index), str(error).removeprefix(f"row {index}: "))


def scan_rows(dataset: RowDataset, indices=None) -> list[BadRow]:
    """Validate rows up front (every image is opened); returns the bad ones."""
    from tqdm.auto import tqdm

    indices = range(len(dataset)) if indices is None else indices
    bad = []
    for index in tqdm(indices, desc="Scanning rows", unit="row", leave=False):
        item = dataset[index]
        if isinstance(item, BadRow):
            bad.append(item)
    return bad


def describe_bad_rows(bad: list[BadRow], limit: int = 20) -> str:
    lines = [str(b) for b in bad[:limit]] + ([f"... and {len(bad) - limit} more"] if len(bad) > limit else [])
    return f"{len(bad)} bad row(s): " + "; ".join(lines)


def load_rows(source: str, split: str = "train", subset: str | None = None, max_rows: int | None = None):
    """A `datasets.Dataset` from local JSONL/JSON/parquet file(s) (comma separated), a local dataset folder or a
    Hub dataset id."""
    from datasets import load_dataset

    if source is None:
        raise ValueError("no training data given (--data)")
    files = [s.strip() for s in str(source).split(",") if s.strip()]
    if all(os.path.isfile(f) for f in files):
        suffixes = {os.path.splitext(f)[1].lower() for f in files}
        if suffixes <= {".jsonl", ".json"}:
            builder = "json"
        elif suffixes <= {".parquet"}:
            builder = "parquet"
        else:
            raise ValueError(f"cannot tell the format of {files}: use .jsonl, .json or .parquet files")
        rows = load_dataset(builder, data_files=files, split="train")
    elif len(files) == 1 and not os.path.exists(files[0]) and files[0].count("/") != 1:
        raise FileNotFoundError(f"no such data file: {files[0]}")
    else:
        rows = load_dataset(files[0], subset, split=split)
    if max_rows is not None:
        rows = rows.select(range(min(max_rows, len(rows))))
    return rows


# ----- MMEB-train ------------------------------------------------------------------------------------------------
MMEB_COLUMNS = ("qry", "qry_image_path", "pos_text", "pos_image_path", "neg_text", "neg_image_path")
_IMAGE_TOKEN = re.compile(r"<\|image_\d+\|>")


def _mmeb_text(value) -> str | None:
    if not value:
        return None
    text = _IMAGE_TOKEN.sub("", value).strip()  # MMEB marks the image slot in the text; TWN places images itself
    return text or None


def convert_mmeb_row(row: dict) -> dict:
    """One MMEB-train row (`qry`, `qry_image_path`, `pos_text`, `pos_image_path`, `neg_text`, `neg_image_path`) in
    the TWN row format. MMEB keeps the instruction inside `qry`, so it stays in `query`; paths stay relative (pass
    `--image-root` pointing at the unpacked MMEB image folder)."""
    neg_text, neg_image = _mmeb_text(row.get("neg_text")), row.get("neg_image_path") or None
    has_negative = bool(neg_text or neg_image)
    return {
        "query": _mmeb_text(row.get("qry")),
        "query_image": row.get("qry_image_path") or None,
        "positive": _mmeb_text(row.get("pos_text")),
        "positive_image": row.get("pos_image_path") or None,
        "negatives": [neg_text] if has_negative else None,
        "negative_images": [neg_image] if has_negative else None,
    }


def convert_mmeb(source: str, output: str, subset: str | None = None, split: str = "train",
                 max_rows: int | None = None) -> int:
    """Convert an MMEB-train dataset (Hub id such as `TIGER-Lab/MMEB-train` with a `subset`, or local files) to a
    TWN-format JSONL or parquet file; returns the number of rows written."""
    rows = load_rows(source, split=split, subset=subset, max_rows=max_rows)
    missing = [c for c in ("qry", "pos_text") if c not in rows.column_names]
    if missing:
        raise ValueError(f"{source} has no MMEB columns {missing}; found {rows.column_names}")
    converted = rows.map(convert_mmeb_row, remove_columns=rows.column_names, desc="Converting MMEB rows")
    if output.endswith(".parquet"):
        converted.to_parquet(output)
    else:
        converted.to_json(output, lines=True)
    logger.info("wrote %d rows to %s", len(converted), output)
    return len(converted)
