"""The checkpoint layout: remote-code loading without twn_hf, plain-peft adapters, strict keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForImageTextToText

from twn_hf import build_twn
from twn_hf.modeling.decoding_twn import text_positions
from twn_hf.modeling.inputs_twn import normalize_inputs
from twn_hf.testing import FAMILIES, tiny_backbone, tiny_twn

# Inputs rebuilt identically inside the subprocess (which cannot import the test helpers).
INPUTS_SOURCE = """
from PIL import Image
red = Image.new("RGB", (56, 56), (200, 30, 30))
blue = Image.new("RGB", (64, 80), (20, 40, 220))
INPUTS = ["a cat on a mat", red, {"text": "what colour?", "image": blue}, {"video": [red, blue], "text": "clip"}]
"""
namespace: dict = {}
exec(INPUTS_SOURCE, namespace)
INPUTS = namespace["INPUTS"]


def test_layout(checkpoint_dir):
    names = set(os.listdir(checkpoint_dir))
    assert {"config.json", "configuration_twn.py", "modeling_twn.py", "gate.safetensors", "model.safetensors"} <= names
    assert {"tokenizer.json", "chat_template.jinja"} & names
    for adapter in ("reasoning", "embedding"):
        assert set(os.listdir(checkpoint_dir / adapter)) == {"adapter_config.json", "adapter_model.safetensors"}
    config = json.loads((checkpoint_dir / "config.json").read_text())
    assert config["model_type"] == "twn"
    assert config["auto_map"] == {"AutoConfig": "configuration_twn.TWNConfig", "AutoModel": "modeling_twn.TWNModel"}
    assert config["backbone_config"]["model_type"] == "qwen3_vl"
    assert set(load_file(checkpoint_dir / "gate.safetensors")) == {
        "queries", "gate.net.0.weight", "gate.net.0.bias", "gate.net.2.weight", "gate.net.2.bias"
    }


def test_remote_code_loads_without_twn_hf_for_every_family(tmp_path):
    """Save each family, load it in a subprocess where `import twn_hf` fails, compare embeddings."""
    expected = {}
    for family in FAMILIES:
        model = tiny_twn(family)
        model.save_pretrained(tmp_path / family)
        expected[family] = {mode: model.encode(INPUTS, think=mode).numpy() for mode in ("never", "always")}
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["twn_hf"] = None  # any `import twn_hf` now raises ImportError
        import numpy as np
        from transformers import AutoModel
        {textwrap.indent(INPUTS_SOURCE, "        ").strip()}
        try:
            import twn_hf
        except ImportError:
            pass
        else:
            raise SystemExit("twn_hf is importable")
        for family in {list(FAMILIES)!r}:
            model = AutoModel.from_pretrained(sys.argv[1] + "/" + family, trust_remote_code=True)
            assert "twn_hf" not in type(model).__module__, type(model).__module__
            for mode in ("never", "always"):
                np.save(f"{{sys.argv[1]}}/{{family}}-{{mode}}.npy", model.encode(INPUTS, think=mode).numpy())
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for family in FAMILIES:
        for mode in ("never", "always"):
            loaded = np.load(tmp_path / f"{family}-{mode}.npy")
            assert np.abs(loaded - expected[family][mode]).max() < 1e-5, (family, mode)


def test_adapter_only_checkpoint_references_its_backbone(tmp_path):
    backbone, processor = tiny_backbone("qwen2_vl", seed=3)
    backbone.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    model = build_twn(str(tmp_path / "base"), revision="v1", seed=1, lora_r=4, num_queries=2, gate_hidden_size=8,
                      max_think_tokens=4)
    assert model.config.backbone_name_or_path == str(tmp_path / "base")
    model.save_pretrained(tmp_path / "twn")
    assert not (tmp_path / "twn" / "model.safetensors").exists()
    assert json.loads((tmp_path / "twn" / "reasoning" / "adapter_config.json").read_text())["revision"] == "v1"
    loaded = AutoModel.from_pretrained(tmp_path / "twn", trust_remote_code=True)
    np.testing.assert_allclose(loaded.encode(INPUTS, think="always").numpy(),
                               model.encode(INPUTS, think="always").numpy(), atol=1e-5)


def test_never_equals_the_embedding_computed_by_hand_with_transformers_and_peft(twn, checkpoint_dir):
    """Prefill with `reasoning`, queries with `embedding`, mean-pool, normalise — plain libraries only."""
    backbone = AutoModelForImageTextToText.from_config(twn.config.backbone_config)
    backbone.load_state_dict(load_file(checkpoint_dir / "model.safetensors"), strict=True)
    peft_model = PeftModel.from_pretrained(backbone, checkpoint_dir / "reasoning", adapter_name="reasoning")
    peft_model.load_adapter(checkpoint_dir / "embedding", adapter_name="embedding")
    peft_model.eval()
    head = load_file(checkpoint_dir / "gate.safetensors")
    inner = peft_model.base_model.model.model  # the Qwen3VLModel

    twn_inputs = normalize_inputs(INPUTS, twn.config.max_image_pixels)
    features = twn.prepare_features(twn_inputs)  # the same chat template and processor call
    ids, mask = features.pop("input_ids"), features.pop("attention_mask")
    with torch.no_grad():
        peft_model.set_adapter("reasoning")
        positions, deltas = inner.get_rope_index(ids, attention_mask=mask, mm_token_type_ids=features["mm_token_type_ids"],
                                                 image_grid_thw=features.get("image_grid_thw"),
                                                 video_grid_thw=features.get("video_grid_thw"))
        out = inner(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **features)
        peft_model.set_adapter("embedding")
        k = head["queries"].shape[0]
        start = mask.sum(1) + deltas.reshape(-1)
        queries = inner.language_model(
            inputs_embeds=head["queries"][None].expand(len(twn_inputs), -1, -1),
            attention_mask=torch.cat([mask, torch.ones(len(twn_inputs), k, dtype=mask.dtype)], dim=1),
            position_ids=(start[:, None] + torch.arange(k)).unsqueeze(0).expand(3, -1, -1),
            past_key_values=out.past_key_values,
        ).last_hidden_state
        by_hand = torch.nn.functional.normalize(queries.mean(1), dim=-1)
    assert text_positions(start, k).shape == (3, len(twn_inputs), k)
    torch.testing.assert_close(twn.encode(INPUTS, think="never"), by_hand, atol=1e-5, rtol=1e-5)


def test_missing_gate_key_fails_to_load_naming_it(tmp_path, twn):
    twn.save_pretrained(tmp_path)
    state = load_file(tmp_path / "gate.safetensors")
    del state["gate.net.2.bias"]
    state["surprise"] = torch.zeros(1)
    save_file(state, tmp_path / "gate.safetensors")
    with pytest.raises(ValueError, match=r"missing keys \['gate.net.2.bias'\].*unexpected keys \['surprise'\]"):
        AutoModel.from_pretrained(tmp_path, trust_remote_code=True)


def test_adapter_with_missing_keys_fails_to_load_naming_them(tmp_path, twn):
    twn.save_pretrained(tmp_path)
    path = tmp_path / "embedding" / "adapter_model.safetensors"
    state = load_file(path)
    dropped = sorted(state)[0]
    del state[dropped]
    save_file(state, path)
    with pytest.raises(ValueError, match=r"adapter 'embedding'.*missing keys \['" + dropped.replace(".", r"\.")):
        AutoModel.from_pretrained(tmp_path, trust_remote_code=True)


def test_backbone_weights_with_missing_keys_fail_to_load(tmp_path, twn):
    twn.save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    dropped = sorted(state)[-1]
    del state[dropped]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"model\.safetensors.*missing keys \['" + dropped.replace(".", r"\.")):
        AutoModel.from_pretrained(tmp_path, trust_remote_code=True)


def test_adapter_only_save_needs_a_backbone_reference(twn, tmp_path):
    with pytest.raises(ValueError, match="backbone_name_or_path"):
        twn.save_pretrained(tmp_path, self_contained=False)
