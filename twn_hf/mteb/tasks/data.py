"""Where MMEB-V2 data comes from: Hub repos at pinned revisions, or a local mirror under `MMEB_V2_ROOT`.

Annotations (queries, candidates, qrels) are Hub dataset tables. Media are files: the image-task
images and the pre-extracted video frames live in `TIGER-Lab/MMEB-V2` as archives; visual-document
pages ship inside their BEIR tables. The local layout is the reference harness's `--data_basedir`
plus a mirror of each annotation repo under its Hub id:

```
$MMEB_V2_ROOT/
  image-tasks/MMEB/<qry_img_path>                 image-tasks/mmeb_v1.tar.gz, unpacked
  video-tasks/frames/<group>/<DS>/<video>/*.jpg   video-tasks/frames/* archives, unpacked
  ziyjiang/MMEB_Test_Instruct/<task>/test-*.parquet      (optional) local copies of the
  VLM2Vec/MSR-VTT/test_1k/test-*.parquet                 annotation repos, e.g. from
  vidore/docvqa_test_subsampled_beir/{queries,corpus,qrels}/test-*.parquet   `hf download --local-dir`
```

An annotation repo missing from the mirror is read from the Hub (`datasets.load_dataset`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .specs import MEDIA_REPO, NUM_VIDEO_FRAMES, hub_repos

logger = logging.getLogger(__name__)

ROOT_ENV = "MMEB_V2_ROOT"

HUB_REVISIONS: dict[str, str | None] = dict.fromkeys(hub_repos())
"""Commit sha of every Hub dataset repo MMEB-V2 reads, keyed by repo id.

Upstream pins no revision, and several of these repos were re-uploaded with different contents
(VisRAG query counts, the `*-page-fixed` page ids, MomentSeeker's deduplication), so a reproducible
run must record the commit it read. Set each entry to the sha of the commit your published numbers
were computed on, before running (`HUB_REVISIONS["vidore/esg_reports_v2"] = "<sha>"`) or by passing
`revisions={...}` to the tasks. An entry left at `None` means "the repo's latest commit, unpinned":
it works, logs a warning each time it is read, and the task's mteb metadata then records the
revision as "main". The tasks log a warning when the number of queries read differs from the count
MMEB-V2's scores were computed on, which is the quickest check that a pinned revision is the right one.

Known commits of four of these repos: mteb 2.26's own ViDoRe-V2 tasks read `vidore/esg_reports_v2` at
0542c0d03da0ec1c8cbc517c8d78e7e95c75d3d3, `vidore/biomedical_lectures_v2` at
a29202f0da409034d651614d87cd8938d254e2ea, `vidore/economics_reports_v2` at
b3e3a04b07fbbaffe79be49dabf92f691fbca252 and `vidore/esg_reports_human_labeled_v2` at
6d467dedb09a75144ede1421747e47cf036857dd; whether MMEB-V2's published numbers used the same commits
is not known, so they are not pinned here (check the query counts 228 / 640 / 232 / 52 first).
"""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class MMEBDataError(FileNotFoundError):
    """MMEB-V2 data that should be there is not."""


def data_root(root: str | os.PathLike | None = None) -> Path | None:
    """`root` if given, else `$MMEB_V2_ROOT`, else None."""
    value = root if root is not None else os.environ.get(ROOT_ENV)
    return Path(value).expanduser() if value else None


def require_media_root(root: Path | None, what: str) -> Path:
    if root is None:
        raise MMEBDataError(
            f"{what} needs the MMEB-V2 media files, which are not on the Hub as plain files: set {ROOT_ENV} "
            f"(or pass root=...) to a folder holding the unpacked `image-tasks/` and `video-tasks/frames/` of "
            f"the `{MEDIA_REPO}` dataset repo. `twn_hf.mteb.fetch_mmeb_v2_media(root)` downloads and unpacks them."
        )
    return root


# ----- annotation tables ------------------------------------------------------------------------
def _table_files(folder: Path, config: str | None, split: str) -> list[Path]:
    """Data files of one config/split in a local snapshot of a Hub dataset repo (parquet or json lines)."""
    bases = [folder / config, folder / "data" / config] if config else [folder / "data", folder / "default", folder]
    for base in bases:
        if not base.is_dir():
            continue
        for suffix in (".parquet", ".jsonl", ".json"):
            files = (sorted(base.glob(f"{split}-*{suffix}")) or sorted(base.glob(f"{split}{suffix}"))
                     or sorted((base / split).glob(f"*{suffix}")))
            if files:
                return files
    return []


def _read_files(files: list[Path]):
    """An in-memory `datasets.Dataset` from parquet / json-lines files (features restored, no cache writes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Dataset

    if files[0].suffix == ".parquet":
        tables = [pq.read_table(f) for f in files]
        return Dataset(pa.concat_tables(tables) if len(tables) > 1 else tables[0])
    rows = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json" and text.lstrip().startswith("["):
            rows.extend(json.loads(text))
        else:
            rows.extend(json.loads(line) for line in text.splitlines() if line.strip())
    return Dataset.from_list(rows)


def load_table(repo: str, config: str | None, split: str, *, root: Path | None = None,
               revisions: dict[str, str | None] | None = None):
    """One annotation table: from `root/<repo>` when that mirror exists, else from the Hub at the pinned revision."""
    local = root / repo if root is not None else None
    if local is not None and local.is_dir():
        files = _table_files(local, config, split)
        if files:
            logger.info("reading %s (%s, %s) from %s", repo, config or "default", split, local)
            return _read_files(files)
        import datasets

        # A snapshot whose README maps configs to other paths: let `datasets` resolve it.
        return datasets.load_dataset(str(local), config, split=split)
    import datasets

    revision = (revisions or {}).get(repo, HUB_REVISIONS.get(repo))
    if revision is None:
        logger.warning("reading %s from the Hub at its latest commit: the revision is not pinned "
                       "(set twn_hf.mteb.tasks.data.HUB_REVISIONS[%r])", repo, repo)
    return datasets.load_dataset(repo, config, split=split, revision=revision)


# ----- media ------------------------------------------------------------------------------------
def resolve_image(root: Path, relative: str) -> Path:
    """An image-task image: the reference resolves `image-tasks/MMEB/<path>`; older configs used
    `image-tasks/<path>`."""
    candidates = (root / "image-tasks" / "MMEB" / relative, root / "image-tasks" / relative, root / relative)
    for path in candidates:
        if path.is_file():
            return path
    raise MMEBDataError(f"image {relative!r} not found under {root} (tried {[str(p) for p in candidates]})")


def resolve_frame_root(root: Path, media: str) -> Path:
    """A task's frame folder. The maintained harness configs nest it differently from the published yaml
    (e.g. `video_ret/data/ziyan/video_retrieval/MSR-VTT/frames`), so look a few levels down for it."""
    official = root / media
    if official.is_dir():
        return official
    group, name = Path(media).parent, Path(media).name
    base = root / group
    if base.is_dir():
        for depth in range(1, 5):
            for match in sorted(base.glob("/".join(["*"] * depth) + f"/{name}")):
                if match.is_dir():
                    return match / "frames" if (match / "frames").is_dir() else match
    raise MMEBDataError(f"frames of {media!r} not found under {root}: unpack `{MEDIA_REPO}`'s {media} archive there")


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frames(folder: Path) -> list[Path]:
    """The frame images of one video folder in natural order (`frame_2` before `frame_10`)."""
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    return [folder / name for name in names]


def sample_frames(frames: list, num_frames: int = NUM_VIDEO_FRAMES) -> list:
    """`num_frames` evenly spaced frames (`np.linspace(0, n - 1, num_frames)` truncated); all of them if fewer."""
    if num_frames <= 0 or len(frames) <= num_frames:
        return list(frames)
    return [frames[i] for i in np.linspace(0, len(frames) - 1, num_frames, dtype=int).tolist()]


def video_frames(folder: Path, num_frames: int = NUM_VIDEO_FRAMES) -> list[str]:
    """Sampled frame paths of one video folder; raises when the folder has no frames."""
    frames = list_frames(folder)
    if not frames:
        raise MMEBDataError(f"no frames in {folder}")
    return [str(f) for f in sample_frames(frames, num_frames)]


# ----- fetching the media -----------------------------------------------------------------------
MEDIA_PATTERNS = {"image": ("image-tasks/*",), "video": ("video-tasks/frames/*",)}


def _extract(archive: Path) -> None:
    target = archive.parent
    logger.info("unpacking %s", archive)
    if archive.name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(archive) as handle:
            # the "data" filter (Python >= 3.11.4) refuses absolute paths, links out of `target`, devices
            handle.extractall(target, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    elif archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as handle:
            handle.extractall(target)


def fetch_mmeb_v2_media(root: str | os.PathLike, modalities: Iterable[str] = ("image", "video"),
                        revision: str | None = None) -> Path:
    """Download the image-task images and/or video frames from `TIGER-Lab/MMEB-V2` into `root` and unpack them.

    Visual-document tasks need nothing here (their pages are inside the annotation tables). The video
    frames are large (tens of GB); `modalities=("image",)` fetches only the images. Archives already
    unpacked (a marker file next to them) are skipped. Set `MMEB_V2_ROOT=root` afterwards.
    """
    from huggingface_hub import snapshot_download

    root = Path(root).expanduser()
    patterns = [pattern for modality in modalities for pattern in MEDIA_PATTERNS[modality]]
    revision = revision if revision is not None else HUB_REVISIONS.get(MEDIA_REPO)
    if revision is None:
        logger.warning("downloading %s at its latest commit: the revision is not pinned", MEDIA_REPO)
    snapshot_download(MEDIA_REPO, repo_type="dataset", revision=revision, allow_patterns=patterns, local_dir=root)
    for archive in sorted(root.glob("**/*")):
        if archive.is_file() and archive.name.endswith((".tar", ".tar.gz", ".tgz", ".zip")):
            marker = archive.with_name(archive.name + ".unpacked")
            if not marker.exists():
                _extract(archive)
                marker.touch()
    return root
