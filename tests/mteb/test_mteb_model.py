"""`TWNEncoder` and `twn_model_meta`: metadata, loading, instructions, input kinds, think-mode caching."""

from __future__ import annotations

import shutil

import mteb
import numpy as np
import pytest
import torch
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.cache import ResultCache
from mteb.types import PromptType
from PIL import Image

from twn_hf.mteb import TWNEncoder, TWNModelMeta, experiment_kwargs, get_task, task_name, twn_model_meta
from twn_hf.mteb.model import video_to_frames
from twn_hf.mteb.tasks import MMEB_TRAIN_IN_DISTRIBUTION


def _metadata(prompt=None, name="TinyTask") -> TaskMetadata:
    return TaskMetadata(name=name, description="d", dataset={"path": "x/y", "revision": "1"}, type="Any2AnyRetrieval",
                        category="it2it", modalities=["image", "text"], eval_langs=["eng-Latn"],
                        main_score="ndcg_at_10", prompt=prompt)


def test_model_meta_of_a_local_checkpoint(twn, checkpoint_dir):
    meta = twn_model_meta(checkpoint_dir, think="never")
    assert isinstance(meta, TWNModelMeta)
    assert meta.name == f"local/{checkpoint_dir.name}" and "/" in meta.name
    assert meta.revision.startswith("local-") and meta.revision == twn_model_meta(checkpoint_dir).revision
    assert meta.n_parameters == sum(p.numel() for p in twn.parameters())
    assert meta.n_embedding_parameters == twn.backbone.get_input_embeddings().weight.numel()
    assert meta.embed_dim == twn.config.hidden_size
    assert meta.memory_usage_mb > 0 and meta.max_tokens == twn.config.text_config.max_position_embeddings
    assert set(meta.modalities) == {"image", "text", "video"}
    assert meta.experiment_kwargs == {"think": "never"}
    assert meta.loader_kwargs["path"] == str(checkpoint_dir.resolve())
    assert meta.similarity_fn_name.value == "cosine" and meta.use_instructions
    assert "Think When Needed" in meta.citation
    meta._check_requirements()  # no torchcodec needed: TWN takes decoded frames


def test_model_meta_of_a_model_in_memory(twn):
    meta = TWNEncoder(twn, think="always", revision="abc").mteb_model_meta
    assert meta.name == "local/twn" and meta.revision == "abc" and meta.experiment_kwargs == {"think": "always"}
    assert meta.loader is None  # nothing on disk or on the Hub to re-load it from
    assert meta.n_parameters == sum(p.numel() for p in twn.parameters())


def test_model_meta_reads_the_card(checkpoint_dir, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint_dir, folder)
    (folder / "README.md").write_text("---\nlicense: apache-2.0\ndatasets:\n- TIGER-Lab/MMEB-train\n---\n# TWN\n")
    meta = twn_model_meta(folder, name="org/twn-tiny")
    assert meta.name == "org/twn-tiny" and meta.license == "apache-2.0"
    assert meta.training_datasets == {task_name(t) for t in MMEB_TRAIN_IN_DISTRIBUTION}
    assert meta.revision != twn_model_meta(checkpoint_dir).revision  # contents changed


def test_meta_loader_builds_the_encoder(checkpoint_dir):
    meta = twn_model_meta(checkpoint_dir)
    encoder = meta.load_model(think="always", max_think_tokens=2)
    assert isinstance(encoder, TWNEncoder) and encoder.think == "always"
    assert encoder.mteb_model_meta.experiment_kwargs == {"think": "always", "max_think_tokens": 2}


def test_experiment_kwargs():
    assert experiment_kwargs() == {}  # the checkpoint as released: mteb's default (non-experiment) results
    assert experiment_kwargs("auto") == {}
    assert experiment_kwargs("auto", 0.3) == {"think": "auto", "threshold": 0.3}
    assert experiment_kwargs("never", 0.3) == {"think": "never"}  # a threshold only matters for auto
    with pytest.raises(ValueError, match="think"):
        experiment_kwargs("sometimes")


def test_instruction_sources(twn):
    encoder = TWNEncoder(twn, think="never", revision="r")
    both = _metadata({"query": "Q-inst", "document": "D-inst"})
    assert encoder.instruction_for(both, PromptType.query) == "Q-inst"
    assert encoder.instruction_for(both, PromptType.document) == "D-inst"
    assert encoder.instruction_for(_metadata({"query": "Q"}), PromptType.document) is None
    assert encoder.instruction_for(_metadata("Plain"), PromptType.query) == "Plain"
    assert encoder.instruction_for(_metadata("Plain"), PromptType.document) is None
    assert encoder.instruction_for(_metadata(None), PromptType.query) is None  # TWN's default instruction
    override = TWNEncoder(twn, think="never", revision="r", prompts={"query": "mine"})
    assert override.instruction_for(both, PromptType.query) == "mine"
    assert override.instruction_for(both, PromptType.document) == "D-inst"
    # a row's own instruction wins over the task's
    batch = {"id": ["a", "b"], "text": ["x own", "y own"], "query": ["x", "y"], "instruction": ["own", ""]}
    items = encoder._inputs(batch, "Q-inst")
    assert items == [{"text": "x", "instruction": "own"}, {"text": "y", "instruction": "Q-inst"}]


def test_encoder_handles_every_input_kind(twn):
    """Text, image, text+image, frame lists, frame tensors and decoder objects, mixed in one batch."""
    red, blue = Image.new("RGB", (56, 56), (200, 20, 20)), Image.new("RGB", (56, 56), (20, 20, 200))
    tensor = torch.stack([torch.full((3, 56, 56), 30 * k, dtype=torch.uint8) for k in range(4)])
    batch = {"id": list("abcde"), "text": ["a cat", "", "what colour?", "", "a clip"],
             "image": [None, red, blue, None, None], "video": [None, None, None, [red, blue, red], tensor]}
    encoder = TWNEncoder(twn, think="never", revision="r")
    got = encoder.encode([batch], task_metadata=_metadata(), hf_split="test", hf_subset="default",
                         prompt_type=PromptType.query)
    expected = twn.encode(["a cat", red, {"text": "what colour?", "image": blue}, {"video": [red, blue, red]},
                           {"text": "a clip", "video": video_to_frames(tensor)}], think="never", convert_to_numpy=True)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert encoder.stats["TinyTask"] == {"inputs": 5, "thought": 0, "cot_tokens": 0}
    with pytest.raises(ValueError, match="no text, image or video"):
        encoder._inputs({"id": ["a"], "text": [" "]}, None)


def test_video_to_frames_samples_evenly():
    tensor = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 28, 28).contiguous()
    frames = video_to_frames(tensor, num_frames=4)
    assert [f.getpixel((0, 0))[0] for f in frames] == [0, 3, 6, 9]

    class Decoder:  # the torchcodec VideoDecoder surface the encoder uses
        def __len__(self):
            return 10

        def get_frames_at(self, indices):
            return type("Batch", (), {"data": tensor[indices]})()

    assert [f.getpixel((0, 0))[0] for f in video_to_frames(Decoder(), num_frames=4)] == [0, 3, 6, 9]
    assert video_to_frames(["f1.jpg", "f2.jpg"]) == ["f1.jpg", "f2.jpg"]  # frame lists are used as given


def test_think_modes_are_cached_apart(twn, mmeb_root, tmp_path):
    root, _ = mmeb_root
    cache = ResultCache(tmp_path / "cache")
    paths, encoders = {}, {}
    for mode in ("never", "always"):
        encoders[mode] = TWNEncoder(twn, think=mode, revision="0123abcd")
        mteb.evaluate(encoders[mode], get_task("N24News", root=root), cache=cache, show_progress_bar=False,
                      co2_tracker=False, encode_kwargs={"batch_size": 4, "show_progress_bar": False})
        paths[mode] = cache.get_task_result_path("MMEBV2-N24News", encoders[mode].mteb_model_meta)
    assert paths["never"] != paths["always"]
    assert paths["never"].is_file() and paths["always"].is_file()
    assert paths["never"].parent.name == "think_never" and paths["always"].parent.name == "think_always"
    assert paths["never"].parent.parent.name == "experiments"
    default = TWNEncoder(twn, revision="0123abcd")  # think="auto" with the checkpoint's threshold
    assert default.mteb_model_meta.experiment_kwargs is None
    assert cache.get_task_result_path("MMEBV2-N24News", default.mteb_model_meta).parent == paths["never"].parents[2]
    assert encoders["always"].stats["MMEBV2-N24News"]["thought"] == 7  # 3 queries + 4 unique labels
    # a second run of one mode is served from its own cache entry, without encoding
    again = TWNEncoder(twn, think="never", revision="0123abcd")
    mteb.evaluate(again, get_task("N24News", root=root), cache=cache, show_progress_bar=False, co2_tracker=False)
    assert again.stats == {}
