"""The CoT cache: hits skip decoding (one prefill, same embeddings), any key change misses, crash and
concurrency safety of the SQLite file."""

from __future__ import annotations

import copy
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from twn_hf.modeling.cot_cache_twn import CachedCoT, CoTCache, model_fingerprint, open_cot_cache
from twn_hf.modeling.decoding_twn import GenerationSettings


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


class Passes:
    """Counts language-model calls: prefills (empty KV cache) and one-token decode steps."""

    def __init__(self, model):
        self.prefill_rows = self.decode_steps = 0
        self.model = model

    def __enter__(self):
        def hook(module, args, kwargs):
            tensor = kwargs.get("inputs_embeds") if kwargs.get("inputs_embeds") is not None else kwargs["input_ids"]
            past = kwargs.get("past_key_values")
            if past is None or past.get_seq_length() == 0:
                self.prefill_rows += tensor.shape[0]
            elif tensor.shape[1] == 1:
                self.decode_steps += 1

        self.handle = self.model.backbone.model.language_model.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def test_warm_cache_decodes_nothing_prefills_once_and_matches(twn, mixed_inputs, tmp_path):
    path = tmp_path / "cot.sqlite"
    reference, reference_details = twn.encode(mixed_inputs, think="always", batch_size=3, return_details=True)
    cold, cold_details = twn.encode(mixed_inputs, think="always", batch_size=3, return_details=True, cot_cache=path)
    assert not any(d.cot_cached for d in cold_details)
    assert len(CoTCache(path)) == len(mixed_inputs)
    with Passes(twn) as passes:
        warm, warm_details = twn.encode(mixed_inputs, think="always", batch_size=3, return_details=True,
                                        cot_cache=path)
    assert passes.decode_steps == 0
    assert passes.prefill_rows == len(mixed_inputs)  # the cached CoT is a chunk after the prefill, not a prefill
    assert all(d.cot_cached for d in warm_details)
    assert [d.cot for d in warm_details] == [d.cot for d in reference_details]
    assert [d.tokens_generated for d in warm_details] == [d.tokens_generated for d in reference_details]
    assert cosine(cold, reference).min() >= 0.9999
    assert cosine(warm, reference).min() >= 0.9999


def test_hits_and_misses_mix_in_one_batch(twn, mixed_inputs, tmp_path):
    cache = CoTCache(tmp_path / "cot.sqlite")
    twn.encode(mixed_inputs[:3], think="always", cot_cache=cache)  # rows 0-2 cached
    mask = [True, False, True, True, False, True, False, True]
    reference = twn.encode(mixed_inputs, think="auto", think_mask=mask, batch_size=8)
    embeddings, details = twn.encode(mixed_inputs, think="auto", think_mask=mask, batch_size=8,
                                     return_details=True, cot_cache=cache)
    assert [d.thought for d in details] == mask
    assert [d.cot_cached for d in details] == [True, False, True, False, False, False, False, False]
    assert cosine(embeddings, reference).min() >= 0.9999
    assert len(cache) == 3 + 3  # rows 3, 5, 7 were decoded and stored


def test_think_mask_is_checked(twn):
    with pytest.raises(ValueError, match="think_mask forces the routing"):
        twn.encode(["a", "b"], think="always", think_mask=[True, False])
    with pytest.raises(ValueError, match="2 entries for 3 inputs"):
        twn.encode(["a", "b", "c"], think="auto", think_mask=[True, False])


def _cached_flags(model, inputs, path, **kwargs):
    _, details = model.encode(inputs, think="always", return_details=True, cot_cache=path, **kwargs)
    return [d.cot_cached for d in details]


def _perturbed(twn, adapter):
    model = copy.deepcopy(twn)
    with torch.no_grad():
        name, parameter = next((n, p) for n, p in model.backbone.named_parameters()
                               if "lora_B" in n and f".{adapter}." in n)
        parameter.add_(0.01)
    return model


@pytest.mark.parametrize(
    "change",
    ["text", "one_pixel", "instruction", "reasoning_weights", "backbone_weights", "think_prompt", "embed_instruction",
     "max_think_tokens", "sampling", "fingerprint"],
)
def test_any_key_change_misses(twn, tmp_path, change):
    path = tmp_path / "cot.sqlite"
    image = Image.new("RGB", (56, 56), (10, 200, 30))
    inputs = ["a cat on a mat", {"text": "what is this?", "image": image, "instruction": "Describe it."}]
    assert _cached_flags(twn, inputs, path) == [False, False]
    assert _cached_flags(twn, inputs, path) == [True, True]

    model, kwargs, changed = twn, {}, list(inputs)
    if change == "text":
        changed = ["a cat on a mat!", inputs[1]]
    elif change == "one_pixel":
        edited = image.copy()
        edited.putpixel((5, 5), (10, 200, 31))
        changed = [inputs[0], {**inputs[1], "image": edited}]
    elif change == "instruction":
        changed = [inputs[0], {**inputs[1], "instruction": "Describe it!"}]
    elif change == "reasoning_weights":
        model = _perturbed(twn, twn.config.reasoning_adapter)
    elif change == "backbone_weights":
        model = copy.deepcopy(twn)
        with torch.no_grad():
            model.backbone.lm_head.weight[0, 0] += 1.0
    elif change in ("think_prompt", "embed_instruction"):
        model = copy.deepcopy(twn)
        setattr(model.config, change, getattr(model.config, change) + " Be brief.")
    elif change == "max_think_tokens":
        kwargs = {"max_think_tokens": 5}
    elif change == "sampling":
        kwargs = {"generation": GenerationSettings(max_new_tokens=twn.config.max_think_tokens, do_sample=True)}
    elif change == "fingerprint":
        flags = _cached_flags(twn, inputs, CoTCache(path, fingerprint="release-2"))
        assert flags == [False, False]
        return
    flags = _cached_flags(model, changed, path, **kwargs)
    expected = {"text": [False, True], "one_pixel": [True, False], "instruction": [True, False],
                "embed_instruction": [False, True]}  # input 1 brings its own instruction
    assert flags == expected.get(change, [False, False])


def test_changes_that_cannot_alter_the_cot_still_hit(twn, tmp_path):
    path = tmp_path / "cot.sqlite"
    inputs = ["a red square", "two dogs"]
    _cached_flags(twn, inputs, path)
    assert _cached_flags(_perturbed(twn, twn.config.embedding_adapter), inputs, path) == [True, True]
    assert _cached_flags(twn, inputs, path, batch_size=1) == [True, True]
    _, details = twn.encode(inputs, think="auto", threshold=0.0, return_details=True, cot_cache=path)
    assert all(d.cot_cached for d in details)


def test_fingerprint_tracks_in_place_weight_changes(tmp_path):
    from twn_hf.testing import tiny_twn

    model = tiny_twn("qwen3_vl")
    first = model_fingerprint(model)
    assert model_fingerprint(model) == first
    with torch.no_grad():
        model.gate.net[0].weight.add_(1.0)  # the gate does not write CoTs
    assert model_fingerprint(model) == first
    with torch.no_grad():
        next(p for n, p in model.backbone.named_parameters() if "lora_A" in n and ".reasoning." in n).add_(1.0)
    assert model_fingerprint(model) != first


def test_open_cot_cache_arguments(tmp_path):
    cache, owned = open_cot_cache(tmp_path / "a.sqlite")
    assert isinstance(cache, CoTCache) and owned
    assert open_cot_cache(cache) == (cache, False)
    assert open_cot_cache(None) == (None, False)
    with pytest.raises(TypeError, match="cot_cache must be a path or a CoTCache"):
        open_cot_cache(42)
    cache.put_many({"k": CachedCoT((1, 2, 3), "abc")})
    reader = CoTCache(tmp_path / "a.sqlite", read_only=True)
    assert reader.get_many(["k", "missing"]) == {"k": CachedCoT((1, 2, 3), "abc")}
    reader.put_many({"x": CachedCoT((1,), "x")})  # ignored: read-only
    assert "x" not in cache
    with pytest.raises(FileNotFoundError):
        CoTCache(tmp_path / "none.sqlite", read_only=True).get_many(["k"])


def test_malformed_rows_are_misses(tmp_path):
    cache = CoTCache(tmp_path / "a.sqlite")
    cache.put_many({"good": CachedCoT((1, 2), "ab")})
    with sqlite3.connect(tmp_path / "a.sqlite") as connection:
        connection.execute("INSERT INTO cot VALUES ('bad', '[1, 2', 'x', 2, 0)")
        connection.execute("INSERT INTO cot VALUES ('short', '[1]', 'x', 2, 0)")
    assert set(cache.get_many(["good", "bad", "short"])) == {"good"}


# ----- processes -------------------------------------------------------------------------------------
# The subprocesses load cot_cache_twn.py by path: it needs only the standard library to read and write.
LOAD = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("cot_cache_twn", sys.argv[-1])
    module = sys.modules["cot_cache_twn"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    CachedCoT, CoTCache = module.CachedCoT, module.CoTCache
""")
MODULE = str(Path(__file__).resolve().parents[2] / "modeling" / "cot_cache_twn.py")

WRITER = LOAD + textwrap.dedent("""
    cache = CoTCache(sys.argv[1])
    batch = 0
    while True:  # until killed: one transaction of 200 entries per batch
        cache.put_many({f"{batch}:{i}": CachedCoT(tuple(range(i % 50 + 1)), "x" * 2000) for i in range(200)})
        batch += 1
""")


def test_killed_writer_leaves_a_consistent_database(tmp_path):
    path = tmp_path / "cot.sqlite"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), MODULE])
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=5) as probe:
                        if probe.execute("SELECT COUNT(*) FROM cot").fetchone()[0] >= 600:
                            break
                except sqlite3.OperationalError:
                    pass
            time.sleep(0.05)
        else:
            pytest.fail("the writer never committed")
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-transaction, almost surely
        writer.wait()
    assert writer.returncode == -signal.SIGKILL

    cache = CoTCache(path)
    connection = cache._connect()
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    keys = [row[0] for row in connection.execute("SELECT key FROM cot")]
    per_batch = {}
    for key in keys:
        per_batch.setdefault(key.split(":")[0], []).append(key)
    assert per_batch and all(len(batch) == 200 for batch in per_batch.values()), "a transaction was half-written"
    found = cache.get_many(keys)
    assert len(found) == len(keys)
    assert all(len(entry.tokens) == int(key.split(":")[1]) % 50 + 1 for key, entry in found.items())
    cache.put_many({"after": CachedCoT((7,), "after")})  # still writable
    assert "after" in cache


READER = LOAD + textwrap.dedent("""
    import json, time
    cache = CoTCache(sys.argv[1])
    keys = [f"k{i}" for i in range(500)]
    start, rounds = time.time(), 0
    while time.time() - start < float(sys.argv[2]):
        found = cache.get_many(keys)
        assert len(found) == 500, len(found)
        assert all(found[k].tokens == (i, i + 1) and found[k].text == f"t{i}" for i, k in enumerate(keys))
        rounds += 1
    print(json.dumps({"rounds": rounds}))
""")


def test_two_processes_read_at_once_while_a_third_writes(tmp_path):
    path = tmp_path / "cot.sqlite"
    cache = CoTCache(path)
    cache.put_many({f"k{i}": CachedCoT((i, i + 1), f"t{i}") for i in range(500)})
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(path), "2", MODULE], stdout=subprocess.PIPE,
                                text=True) for _ in range(2)]
    written = 0
    while any(reader.poll() is None for reader in readers):  # concurrent writes must not disturb the readers
        cache.put_many({f"w{written}:{i}": CachedCoT((i,), "w") for i in range(50)})
        written += 1
        time.sleep(0.01)
    outputs = [reader.communicate()[0] for reader in readers]
    assert [reader.returncode for reader in readers] == [0, 0]
    assert all(json.loads(out)["rounds"] > 0 for out in outputs)
    assert written > 0 and len(cache) == 500 + 50 * written
