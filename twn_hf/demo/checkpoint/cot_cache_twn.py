"""A persistent chain-of-thought cache for `TWNModel.encode(..., cot_cache=path)`.

Re-indexing a corpus with the same model should decode nothing twice. The cache is one SQLite
file mapping a key to the CoT *token ids* (and their text). On a hit, `encode` feeds the cached
tokens through the KV cache after the prefill as one teacher-forced chunk instead of decoding them
step by step, so the input is still prefilled exactly once and the think embedding is the same.

Key: SHA-256 over
  - the input's content: the chat-templated prompt (instruction, text, think prompt, template)
    and every image / video frame as pixels (mode, size, raw bytes, after `encode`'s normalisation);
  - the model: backbone config, backbone id + revision, the reasoning adapter's LoRA settings and
    weights, and the backbone weights themselves (skipped when the backbone is pinned to a 40-hex
    Hub commit, which then identifies them; TWN keeps the backbone frozen);
  - the tokenizer and image/video processor settings, the stop/pad tokens;
  - the generation settings (`GenerationSettings`, sampling parameters included: a sampled CoT
    is cached once and reused).
Anything that can change the CoT changes the key, so a stale entry is never read.

Concurrency and crashes: the database runs in WAL mode, so any number of processes read while one
writes; each `put` is one `BEGIN IMMEDIATE … COMMIT` transaction, so a writer killed mid-write
leaves the file consistent (its uncommitted pages are discarded on the next open). Writers wait
for each other (`busy_timeout`). Connections are opened per process (never shared across
`fork`). Part of the remote code: imports only the standard library and torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_SQL_CHUNK = 500  # keys per SELECT (SQLite's host-parameter limit is 999 on old builds)


@dataclass(frozen=True)
class CachedCoT:
    """One cache entry: the CoT token ids as fed to the model (stop token included) and their text."""

    tokens: tuple[int, ...]
    text: str


def _update(digest, tag: str, data: bytes | str | None) -> None:
    """Length-prefixed, tagged update, so that no two different field sequences hash alike."""
    if data is None:
        digest.update(f"{tag}:none;".encode())
        return
    if isinstance(data, str):
        data = data.encode("utf-8")
    digest.update(f"{tag}:{len(data)}:".encode())
    digest.update(data)


def _update_image(digest, tag: str, image) -> None:
    _update(digest, tag, f"{image.mode}:{image.size[0]}x{image.size[1]}")
    _update(digest, tag + ".pixels", image.tobytes())


def _tensor_bytes(tensor):
    import torch  # imported here: reading and writing the cache needs only the standard library

    flat = tensor.detach().reshape(-1).contiguous().cpu()
    return memoryview(flat.view(torch.uint8).numpy())


def model_fingerprint(model) -> str:
    """A hex digest of everything in `model` that can change a CoT (see the module docstring).

    Cached on the model and recomputed when any parameter is modified in place (torch's version
    counters), so calling it per `encode` is cheap after the first time.
    """
    config = model.config
    reasoning = config.reasoning_adapter
    pinned = bool(config.backbone_name_or_path) and bool(_SHA_RE.match(str(config.backbone_revision or "")))
    named = [
        (name, parameter)
        for name, parameter in model.backbone.named_parameters()
        if ("lora_" in name and f".{reasoning}." in name) or ("lora_" not in name and not pinned)
    ]
    versions = (pinned, tuple(p._version for _, p in named), tuple(p.data_ptr() for _, p in named))
    cached = getattr(model, "_twn_cot_fingerprint", None)
    if cached is not None and cached[0] == versions:
        return cached[1]
    digest = hashlib.sha256()
    _update(digest, "backbone_config", config.backbone_config.to_json_string(use_diff=False))
    _update(digest, "backbone", str(config.backbone_name_or_path))
    _update(digest, "revision", str(config.backbone_revision))
    lora = {k: getattr(config, k) for k in ("lora_r", "lora_alpha", "lora_target_modules")}
    _update(digest, "lora", json.dumps(lora, sort_keys=True))
    for name, parameter in named:
        _update(digest, "name", f"{name.replace(f'.{reasoning}.', '.')}:{parameter.dtype}:{tuple(parameter.shape)}")
        digest.update(_tensor_bytes(parameter))
    fingerprint = digest.hexdigest()
    model._twn_cot_fingerprint = (versions, fingerprint)
    return fingerprint


def _processor_settings(processor) -> str:
    parts = []
    tokenizer = getattr(processor, "tokenizer", processor)
    parts.append(f"tokenizer:{type(tokenizer).__name__}:{len(tokenizer)}")
    vocab = tokenizer.get_vocab()
    parts.append(hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest())
    for attribute in ("image_processor", "video_processor"):
        sub = getattr(processor, attribute, None)
        if sub is not None and hasattr(sub, "to_json_string"):
            parts.append(sub.to_json_string())
    return "\n".join(parts)


class CoTSession:
    """A cache bound to one model and one set of generation settings: computes keys, reads, writes."""

    def __init__(self, cache: "CoTCache", context: str):
        self.cache = cache
        self.context = context

    def key(self, prompt: str, item) -> str:
        digest = hashlib.sha256()
        _update(digest, "context", self.context)
        _update(digest, "prompt", prompt)
        for index, image in enumerate(item.images):
            _update_image(digest, f"image{index}", image)
        if item.video is not None:
            _update(digest, "video", str(len(item.video)))
            for index, frame in enumerate(item.video):
                _update_image(digest, f"frame{index}", frame)
        return digest.hexdigest()

    def lookup(self, keys: list[str]) -> dict[str, CachedCoT]:
        return self.cache.get_many(keys)

    def store(self, entries: dict[str, CachedCoT]) -> None:
        self.cache.put_many(entries)


class CoTCache:
    """An SQLite file of CoTs keyed by (input, model, prompts, generation settings).

    Args:
        path: the database file (created with its folder if missing).
        fingerprint: use this string as the model's identity instead of hashing its weights
            (e.g. a release tag); the caller then answers for it changing with the weights.
        timeout: seconds a writer waits for another writer's lock.
        read_only: never write (lookups only); the file must exist.
    """

    def __init__(self, path, fingerprint: str | None = None, timeout: float = 60.0, read_only: bool = False):
        self.path = os.fspath(path)
        self.fingerprint = fingerprint
        self.timeout = timeout
        self.read_only = read_only
        self.hits = 0
        self.misses = 0
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None

    # ----- connection -----------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None and self._pid == os.getpid():
            return self._connection
        if self.read_only:
            if not os.path.exists(self.path):
                raise FileNotFoundError(f"CoT cache {self.path!r} does not exist")
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout,
                                         isolation_level=None, check_same_thread=False)
        else:
            folder = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(folder, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                                         check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("CoT cache %s: journal mode %s (WAL unavailable on this filesystem?)", self.path, mode)
            connection.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: atomic and consistent on a crash
            try:  # a plain read first: readers of an existing cache never take the write lock
                row = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            except sqlite3.OperationalError:
                row = None
            if row is None:
                with _transaction(connection, immediate=True):
                    connection.execute(
                        "CREATE TABLE IF NOT EXISTS cot (key TEXT PRIMARY KEY, tokens TEXT NOT NULL, "
                        "text TEXT NOT NULL, num_tokens INTEGER NOT NULL, created REAL NOT NULL)"
                    )
                    connection.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                    connection.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                    row = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if row[0] != str(SCHEMA_VERSION):
                connection.close()
                raise ValueError(f"CoT cache {self.path!r} has schema {row[0]}, expected {SCHEMA_VERSION}")
        self._connection, self._pid = connection, os.getpid()
        return connection

    def close(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):  # picklable for multiprocessing: the connection is reopened in the child
        state = dict(self.__dict__)
        state["_connection"] = state["_pid"] = None
        return state

    # ----- reads and writes -----------------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, CachedCoT]:
        """The entries present for `keys` (absent keys are misses). Malformed rows count as misses."""
        connection = self._connect()
        found: dict[str, CachedCoT] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _SQL_CHUNK):
            chunk = unique[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = connection.execute(
                f"SELECT key, tokens, text, num_tokens FROM cot WHERE key IN ({marks})", chunk
            ).fetchall()
            for key, tokens, text, num_tokens in rows:
                try:
                    ids = tuple(int(t) for t in json.loads(tokens))
                except (ValueError, TypeError):
                    ids = None
                if ids is None or len(ids) != num_tokens:
                    logger.warning("CoT cache %s: ignoring a malformed entry %s", self.path, key[:12])
                    continue
                found[key] = CachedCoT(ids, text)
        self.hits += sum(key in found for key in keys)
        self.misses += sum(key not in found for key in keys)
        return found

    def put_many(self, entries: dict[str, CachedCoT]) -> None:
        """Store `entries` in one transaction (all or nothing)."""
        if not entries or self.read_only:
            return
        connection = self._connect()
        now = time.time()
        rows = [(key, json.dumps(list(entry.tokens)), entry.text, len(entry.tokens), now) for key, entry in entries.items()]
        with _transaction(connection, immediate=True):
            connection.executemany("INSERT OR REPLACE INTO cot VALUES (?, ?, ?, ?, ?)", rows)

    def __len__(self) -> int:
        return self._connect().execute("SELECT COUNT(*) FROM cot").fetchone()[0]

    def __contains__(self, key: str) -> bool:
        return self._connect().execute("SELECT 1 FROM cot WHERE key = ?", (key,)).fetchone() is not None

    # ----- binding to a model ---------------------------------------------------------------
    def session(self, model, settings) -> CoTSession:
        """Bind to `model` and `settings` (`GenerationSettings`): the key context of one `encode` call."""
        processor = model.processor
        tokenizer = processor.tokenizer
        context = {
            "schema": SCHEMA_VERSION,
            "model": self.fingerprint if self.fingerprint is not None else model_fingerprint(model),
            "processor": hashlib.sha256(_processor_settings(processor).encode()).hexdigest(),
            "stop_token_ids": model.stop_token_ids(),
            "pad_token_id": tokenizer.pad_token_id,
            "generation": dataclasses.asdict(settings),
        }
        return CoTSession(self, json.dumps(context, sort_keys=True, default=str))


class _transaction:
    """BEGIN [IMMEDIATE] … COMMIT, rolled back on any exception."""

    def __init__(self, connection: sqlite3.Connection, immediate: bool = False):
        self.connection = connection
        self.begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self):
        self.connection.execute(self.begin)
        return self.connection

    def __exit__(self, exc_type, exc, tb):
        self.connection.execute("COMMIT" if exc_type is None else "ROLLBACK")
        return False


def open_cot_cache(cot_cache) -> tuple[CoTCache | None, bool]:
    """(cache, owned): a `CoTCache` as given, or one opened on a path (closed by the caller)."""
    if cot_cache is None:
        return None, False
    if isinstance(cot_cache, CoTCache):
        return cot_cache, False
    if isinstance(cot_cache, (str, os.PathLike)):
        return CoTCache(cot_cache), True
    raise TypeError(f"cot_cache must be a path or a CoTCache, got {type(cot_cache).__name__}")
