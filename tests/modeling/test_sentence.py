"""Every TWN checkpoint is a sentence-transformers model: same embeddings, prompts as instructions, think kwargs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from sentence_transformers import SentenceTransformer

from twn_hf.modeling.sentence_files_twn import DEFAULT_QUERY_INSTRUCTION
from twn_hf.modeling.sentence_twn import to_sentence_transformer

RED = Image.new("RGB", (56, 56), (200, 30, 30))
BLUE = Image.new("RGB", (64, 80), (20, 40, 220))
# sentence-transformers inputs and the TWNModel.encode inputs they mean.
ST_INPUTS = ["a cat on a mat", RED, {"text": "what colour is this?", "image": BLUE}, [RED, BLUE, RED],
             {"text": "a flickering clip", "video": [BLUE, RED]}, "a much longer sentence about a dog in a field"]
TWN_INPUTS = ST_INPUTS[:3] + [{"video": [RED, BLUE, RED]}] + ST_INPUTS[4:]


def cosine(a, b):
    return torch.nn.functional.cosine_similarity(torch.as_tensor(a), torch.as_tensor(b), dim=-1)


@pytest.fixture(scope="module")
def st_model(checkpoint_dir):
    return SentenceTransformer(str(checkpoint_dir), trust_remote_code=True)


def test_checkpoint_carries_the_sentence_transformers_files(checkpoint_dir, st_model, twn):
    modules = json.loads((checkpoint_dir / "modules.json").read_text())
    assert modules == [{"idx": 0, "name": "0", "path": "", "type": "sentence_twn.TWNSentenceModule",
                        "kwargs": ["think", "threshold"]}]
    settings = json.loads((checkpoint_dir / "config_sentence_transformers.json").read_text())
    assert settings["similarity_fn_name"] == "cosine"
    assert settings["prompts"] == {"query": DEFAULT_QUERY_INSTRUCTION, "document": twn.config.embed_instruction}
    assert {"sentence_twn.py", "sentence_files_twn.py"} <= set(os.listdir(checkpoint_dir))
    assert st_model.similarity_fn_name == "cosine"
    assert st_model.get_embedding_dimension() == twn.config.hidden_size
    assert sorted(st_model.get_model_kwargs()) == ["think", "threshold"]
    assert type(st_model[0]).__module__.startswith("transformers_modules.")  # the checkpoint's own copy


@pytest.mark.parametrize("think", ["never", "always", "auto"])
def test_encode_equals_twn_encode_for_every_input_kind(st_model, twn, think):
    threshold = None
    if think == "auto":  # a threshold that splits the batch, so both branches are compared
        _, details = twn.encode(TWN_INPUTS, think="never", return_details=True)
        threshold = float(np.median([d.gate_probability for d in details]))
    expected, details = twn.encode(TWN_INPUTS, think=think, threshold=threshold, return_details=True)
    outputs = st_model.encode(ST_INPUTS, think=think, threshold=threshold, batch_size=4, output_value=None)
    embeddings = torch.stack([o["sentence_embedding"] for o in outputs])
    assert cosine(embeddings, expected).min() >= 0.9999
    assert [bool(o["thought"]) for o in outputs] == [d.thought for d in details]
    assert [int(o["cot_tokens"]) for o in outputs] == [d.tokens_generated for d in details]
    if think == "auto":
        assert 0 < sum(d.thought for d in details) < len(details)
    array = st_model.encode(ST_INPUTS[:3], think=think, threshold=threshold)
    assert isinstance(array, np.ndarray) and array.shape == (3, twn.config.hidden_size)
    assert cosine(array, expected[:3]).min() >= 0.9999


def test_encode_query_applies_the_query_prompt_as_the_instruction(st_model, twn):
    query_prompt = st_model.prompts["query"]
    texts = ["a red square", RED, {"text": "which colour?", "image": BLUE}]
    queries = st_model.encode_query(texts, think="never", convert_to_tensor=True)
    plain = st_model.encode(texts, think="never", convert_to_tensor=True)
    with_instruction = [{"text": texts[0], "instruction": query_prompt}, {"image": RED, "instruction": query_prompt},
                        {**texts[2], "instruction": query_prompt}]
    assert cosine(queries, twn.encode(with_instruction, think="never")).min() >= 0.9999
    assert cosine(queries, plain).max() < 0.999
    documents = st_model.encode_document(texts, think="never", convert_to_tensor=True)
    assert cosine(documents, twn.encode(texts, think="never")).min() >= 0.9999  # document = default instruction
    own = st_model.encode_query([{"text": "x", "instruction": "Mine."}], think="never", convert_to_tensor=True)
    assert cosine(own, twn.encode([{"text": "x", "instruction": "Mine."}], think="never")).item() >= 0.9999
    custom = st_model.encode(["a red square"], prompt="Custom instruction.", think="never", convert_to_tensor=True)
    expected = twn.encode([{"text": "a red square", "instruction": "Custom instruction."}], think="never")
    assert cosine(custom, expected).item() >= 0.9999


def test_checkpoint_prompts_come_from_the_config(tmp_path):
    from twn_hf.testing import tiny_twn

    model = tiny_twn("qwen2_vl", query_instruction="Find the matching picture.")
    model.save_pretrained(tmp_path)
    loaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    assert loaded.prompts["query"] == "Find the matching picture."
    query = loaded.encode_query("a cat", think="never")
    assert cosine(query, model.encode({"text": "a cat", "instruction": "Find the matching picture."},
                                      think="never")).item() >= 0.9999


def test_unknown_kwarg_gets_sentence_transformers_error_and_bad_think_mode_fails(st_model):
    unknown = r"additional keyword arguments that this model does not use: \['temperature'\]"
    with pytest.raises(ValueError, match=unknown):
        st_model.encode(["a cat"], temperature=0.5)
    with pytest.raises(ValueError, match="think must be one of"):
        st_model.encode(["a cat"], think="sometimes")
    with pytest.raises(ValueError, match="threshold must lie in"):
        st_model.encode(["a cat"], think="auto", threshold=2.0)


def test_other_sentence_transformers_input_forms(st_model, twn):
    array = np.asarray(RED)
    forms = [
        [{"role": "system", "content": "Describe it."}, {"role": "user", "content": [
            {"type": "image", "image": RED}, {"type": "text", "text": "a photo"}]}],
        array,
        {"text": "two pictures", "image": [RED, BLUE]},
        {"video": {"array": np.stack([array, array]), "video_metadata": None}},
    ]
    expected = twn.encode([{"instruction": "Describe it.", "image": RED, "text": "a photo"}, RED,
                           {"text": "two pictures", "images": [RED, BLUE]}, {"video": [RED, RED]}], think="never")
    embeddings = [st_model.encode(form, think="never") for form in forms]
    assert cosine(np.stack(embeddings), expected).min() >= 0.9999
    with pytest.raises(TypeError, match="not pairs"):
        st_model.encode([("a", "b")], think="never")
    with pytest.raises(ValueError, match="assistant"):
        st_model.encode([[{"role": "assistant", "content": "hi"}]], think="never")


def test_in_memory_model_and_sentence_transformers_save_round_trip(twn, tmp_path):
    in_memory = to_sentence_transformer(twn)
    expected = twn.encode(TWN_INPUTS[:3], think="always")
    assert cosine(in_memory.encode(ST_INPUTS[:3], think="always"), expected).min() >= 0.9999
    in_memory.save(str(tmp_path), create_model_card=False)
    reloaded = SentenceTransformer(str(tmp_path), trust_remote_code=True)
    assert cosine(reloaded.encode(ST_INPUTS[:3], think="always"), expected).min() >= 0.9999
    assert reloaded.prompts["query"] == in_memory.prompts["query"]


def test_sentence_transformers_loads_without_twn_hf(checkpoint_dir, twn, tmp_path):
    """In a subprocess where `import twn_hf` fails: AutoModel works without sentence-transformers, a model loaded
    with AutoModel re-saves a checkpoint that is still a SentenceTransformer, and the ST path gives TWN's embeddings."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["twn_hf"] = None
        sys.modules["sentence_transformers"] = None  # AutoModel must not need it
        import numpy as np
        from PIL import Image
        from transformers import AutoModel
        source, out = sys.argv[1], sys.argv[2]
        model = AutoModel.from_pretrained(source, trust_remote_code=True)
        model.save_pretrained(out + "/resaved")
        del sys.modules["sentence_transformers"]
        from sentence_transformers import SentenceTransformer
        red = Image.new("RGB", (56, 56), (200, 30, 30))
        inputs = ["a cat on a mat", red, {"text": "what colour?", "image": red}, [red, red]]
        for name, path in (("", source), ("resaved-", out + "/resaved")):
            model = SentenceTransformer(path, trust_remote_code=True)
            assert "twn_hf" not in type(model[0]).__module__, type(model[0]).__module__
            np.save(f"{out}/{name}never.npy", model.encode(inputs, think="never"))
            np.save(f"{out}/{name}always.npy", model.encode(inputs, think="always"))
            np.save(f"{out}/{name}query.npy", model.encode_query(["a cat on a mat"], think="never"))
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script, str(checkpoint_dir), str(tmp_path)], capture_output=True,
                            text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"sentence_twn.py", "modules.json"} <= set(os.listdir(tmp_path / "resaved"))
    inputs = ["a cat on a mat", RED, {"text": "what colour?", "image": RED}, {"video": [RED, RED]}]
    query = twn.encode([{"text": "a cat on a mat", "instruction": DEFAULT_QUERY_INSTRUCTION}], think="never")
    for name in ("", "resaved-"):
        for mode in ("never", "always"):
            assert cosine(np.load(tmp_path / f"{name}{mode}.npy"), twn.encode(inputs, think=mode)).min() >= 0.9999
        assert cosine(np.load(tmp_path / f"{name}query.npy"), query).min() >= 0.9999
