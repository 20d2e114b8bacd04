"""`twn export` writes a complete hub-ready folder; `twn push` uploads it (mocked HfApi) or lists it (--dry-run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image
from sentence_transformers import SentenceTransformer

import twn_hf.commands.push as push_command
from twn_hf.cli import main
from twn_hf.export import IGNORE_PATTERNS, check_export, export_checkpoint, hub_files

MODELING = Path(__file__).resolve().parents[1] / "modeling"
REPO_ID = "tester/twn-tiny"


@pytest.fixture(scope="module")
def exported(checkpoint_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    Image.new("RGB", (64, 64), (10, 200, 10)).save(root / "green.png")
    (root / "sample.jsonl").write_text('"a green square"\n{"text": "what colour?", "image": "green.png"}\n')
    (root / "results.json").write_text(json.dumps({"mmeb_v2": {"ImageNet-1K": 0.5, "MSCOCO_i2t": 0.25}}))
    code = main(["export", str(root / "out"), "--model", str(checkpoint_dir), "--repo-id", REPO_ID,
                 "--cost-sample", str(root / "sample.jsonl"), "--results", str(root / "results.json"),
                 "--base-model", "Qwen/Qwen3-VL-4B-Instruct", "--dataset", "TIGER-Lab/MMEB-train", "--tag", "demo"])
    assert code == 0
    return root / "out"


def test_export_folder_is_complete(exported, checkpoint_dir):
    files = set(hub_files(exported))
    remote_code = {path.name for path in MODELING.glob("*_twn.py")}
    expected = {"config.json", "gate.safetensors", "model.safetensors", "modules.json",
                "config_sentence_transformers.json", "README.md", "requirements.txt", "tokenizer.json",
                "reasoning/adapter_config.json", "reasoning/adapter_model.safetensors", "embedding/adapter_config.json",
                "embedding/adapter_model.safetensors"} | remote_code
    assert expected <= files
    assert files - expected <= {"tokenizer_config.json", "processor_config.json", "chat_template.jinja",
                                "preprocessor_config.json", "video_preprocessor_config.json", "special_tokens_map.json"}
    for name in remote_code:  # the toolkit's current remote code, verbatim
        assert (exported / name).read_bytes() == (MODELING / name).read_bytes()
    requirements = (exported / "requirements.txt").read_text().splitlines()
    assert {"transformers>=5.0,<6", "peft>=0.17", "pillow", "safetensors"} <= set(requirements)
    assert any(line.startswith("sentence-transformers>=6.0") for line in requirements)
    check_export(exported)


def test_exported_card_and_weights(exported, twn):
    card = ModelCard.load(exported / "README.md")
    assert card.data.base_model == "Qwen/Qwen3-VL-4B-Instruct" and card.data.datasets == ["TIGER-Lab/MMEB-train"]
    assert "demo" in card.data.tags and card.data.library_name == "transformers"
    assert "Measured by encoding 2 inputs" in card.text and "| MSCOCO_i2t | 25.0 |" in card.text
    assert f'SentenceTransformer("{REPO_ID}", trust_remote_code=True)' in card.text
    model = SentenceTransformer(str(exported), trust_remote_code=True)
    inputs = ["a cat on a mat", Image.new("RGB", (56, 56), (200, 30, 30))]
    embeddings = model.encode(inputs, think="always", convert_to_tensor=True)
    assert torch.nn.functional.cosine_similarity(embeddings, twn.encode(inputs, think="always")).min() >= 0.9999


def test_export_refuses_to_clobber(exported, checkpoint_dir, tmp_path, twn):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no TWN checkpoint"):
        export_checkpoint(checkpoint_dir, tmp_path, overwrite=True)
    assert main(["export", str(tmp_path), "--model", str(checkpoint_dir)]) == 2
    with pytest.raises(ValueError, match="different folder"):
        export_checkpoint(checkpoint_dir, checkpoint_dir)
    again = export_checkpoint(checkpoint_dir, tmp_path / "again", model=twn)
    (tmp_path / "again" / "stale.bin").write_bytes(b"x")
    assert export_checkpoint(checkpoint_dir, tmp_path / "again", model=twn, overwrite=True) == again


def test_push_dry_run_lists_every_file_and_uploads_nothing(exported, monkeypatch, capsys):
    monkeypatch.setattr(push_command, "HfApi", lambda *a, **k: pytest.fail("--dry-run must not reach the Hub"))
    assert main(["push", str(exported), "--repo-id", REPO_ID, "--dry-run"]) == 0
    out = capsys.readouterr().out
    files = hub_files(exported)
    assert f"would upload {len(files)} files" in out and REPO_ID in out
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == files


class FakeApi:
    calls: list = []

    def __init__(self, token=None):
        self.calls.append(("init", token))

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            return type("Commit", (), {"commit_url": "https://hub.example/commit/1"})()

        return record


def test_push_uploads_the_folder_with_huggingface_hub(exported, monkeypatch, capsys):
    FakeApi.calls = []
    monkeypatch.setattr(push_command, "HfApi", FakeApi)
    assert main(["push", str(exported), "--repo-id", REPO_ID, "--private", "--revision", "v1", "--token", "t0k"]) == 0
    names = [call[0] for call in FakeApi.calls]
    assert names == ["init", "create_repo", "create_branch", "upload_folder"]
    assert FakeApi.calls[0] == ("init", "t0k")
    assert FakeApi.calls[1][1] == (REPO_ID,) and FakeApi.calls[1][2]["private"] is True
    upload = FakeApi.calls[3][2]
    assert upload["folder_path"] == str(exported) and upload["repo_id"] == REPO_ID and upload["revision"] == "v1"
    assert upload["ignore_patterns"] == IGNORE_PATTERNS and upload["repo_type"] == "model"
    assert "https://hub.example/commit/1" in capsys.readouterr().out


def test_push_refuses_a_folder_that_is_not_an_export(checkpoint_dir, monkeypatch):
    monkeypatch.setattr(push_command, "HfApi", lambda *a, **k: pytest.fail("must not reach the Hub"))
    assert main(["push", str(checkpoint_dir), "--repo-id", REPO_ID, "--dry-run"]) == 2  # no README.md / requirements


def test_hub_files_skip_caches(tmp_path):
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"")
    (tmp_path / "sub" / "__pycache__").mkdir(parents=True)
    (tmp_path / "sub" / "__pycache__" / "y.pyc").write_bytes(b"")
    (tmp_path / "sub" / "keep.json").write_text("{}")
    (tmp_path / "README.md").write_text("hi")
    assert hub_files(tmp_path) == ["README.md", "sub/keep.json"]
