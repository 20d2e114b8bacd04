"""TWN in mteb: an `AbsEncoder` wrapper and a `ModelMeta` factory for any TWN checkpoint.

```python
import mteb
from twn_hf.mteb import TWNEncoder, twn_model_meta, mmeb_v2_benchmark

meta = twn_model_meta("zhanglx/TWN-8B", revision="<commit sha>", loader_kwargs={"dtype": "bfloat16"})
encoder = meta.load_model(device="cuda")                           # or meta.load_model(think="never", ...)
results = mteb.evaluate(encoder, mmeb_v2_benchmark("image"), encode_kwargs={"batch_size": 16})
# with a model already in memory:
results = mteb.evaluate(TWNEncoder(model, think="never"), tasks)
```

(`mteb.evaluate(meta, tasks)` works too, but mteb then loads the model once per task.)

The think mode and threshold are mteb `experiment_kwargs`: the checkpoint as released
(`think="auto"` with its own threshold) is the model's default configuration, and every other
setting (`think="never"`, `"always"`, an explicit threshold) is an mteb experiment of the same
model and revision, cached in its own folder (`<model>/<revision>/experiments/think_never/...`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mteb.models.abs_encoder import AbsEncoder, get_prompt_name
from mteb.models.model_meta import ModelMeta
from mteb.types import PromptType

from .tasks.specs import MMEB_TRAIN_IN_DISTRIBUTION, NUM_VIDEO_FRAMES
from .tasks.base import task_name

logger = logging.getLogger(__name__)

THINK_MODES = ("auto", "always", "never")

TWN_CITATION = r"""@article{zhang2026thinkneeded,
  title = {Think When Needed: Adaptive Reasoning-Driven Multimodal Embeddings with a Dual-LoRA Architecture},
  author = {Longxiang Zhang and Weilong Dai and Guanghao Zhang and Hao Jiang and Pipei Huang},
  year = {2026},
  eprint = {2605.14448},
  archivePrefix = {arXiv},
  primaryClass = {cs.CV},
  url = {https://arxiv.org/abs/2605.14448},
}"""

MMEB_TRAIN_DATASETS = ("TIGER-Lab/MMEB-train",)
"""Hub ids of MMEB's training data: a checkpoint whose card lists one of them was trained on the
training splits of MMEB-V2's 20 in-distribution image tasks (`MMEB_TRAIN_IN_DISTRIBUTION`)."""

_BYTES = {torch.float32: 4, torch.float16: 2, torch.bfloat16: 2, torch.float64: 8}
_HASHED_FILE_LIMIT = 64 * 2**20


class TWNModelMeta(ModelMeta):
    """`ModelMeta` of a TWN checkpoint.

    One difference from the base class: mteb adds its `video` extra (torchcodec) to the requirements
    of any model that lists the video modality. TWN reads a video as a list of decoded frames (which
    is how MMEB-V2 ships its videos); decoding encoded video files is the dataset's job, so loading a
    TWN model does not require torchcodec.
    """

    def _resolve_extras_groups(self) -> list[str]:
        return [group for group in super()._resolve_extras_groups() if group != "video"]


def experiment_kwargs(think: str = "auto", threshold: float | None = None) -> dict[str, Any]:
    """The mteb experiment kwargs of a think setting: empty for the checkpoint's default (`auto` with
    its own threshold), else the mode, plus the threshold when `auto` is given one (`always` and
    `never` ignore it)."""
    if think not in THINK_MODES:
        raise ValueError(f"think must be one of {THINK_MODES}, got {think!r}")
    if threshold is not None and think != "auto":
        logger.warning("threshold=%s is ignored with think=%r", threshold, think)
        threshold = None
    if think == "auto" and threshold is None:
        return {}
    return {"think": think} | ({"threshold": float(threshold)} if threshold is not None else {})


# ----- the encoder ------------------------------------------------------------------------------
def _to_pil(array) -> list:
    """(T, C, H, W) or (T, H, W, C) uint8 / float frames -> list of RGB PIL images."""
    from PIL import Image

    array = array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if array.ndim == 3:
        array = array[None]
    if array.shape[1] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)
    if array.dtype != np.uint8:
        array = np.clip(array * (255.0 if array.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return [Image.fromarray(frame[..., :3]) for frame in array]


def video_to_frames(video, num_frames: int = NUM_VIDEO_FRAMES) -> list:
    """A video as TWN takes it (a list of frames) from what mteb batches hold.

    A list of frames (PIL images or paths, e.g. MMEB-V2's pre-sampled frames) is used as given.
    A frame tensor / array, or a torchcodec `VideoDecoder` (mteb's video datasets), is sampled to
    `num_frames` evenly spaced frames.
    """
    if isinstance(video, (list, tuple)):
        return list(video)
    if hasattr(video, "get_frames_at"):  # torchcodec.decoders.VideoDecoder
        total = len(video)
        indices = np.linspace(0, total - 1, min(num_frames, total), dtype=int).tolist()
        return _to_pil(video.get_frames_at(indices=indices).data)
    if isinstance(video, (torch.Tensor, np.ndarray)):
        frames = video if video.ndim == 4 else video[None]
        indices = np.linspace(0, len(frames) - 1, min(num_frames, len(frames)), dtype=int).tolist()
        return _to_pil(frames[indices])
    raise TypeError(f"cannot read a video of type {type(video).__name__}")


class TWNEncoder(AbsEncoder):
    """mteb encoder for a TWN model: text, image, text+image and video inputs, with think modes.

    Args:
        model: a loaded `TWNModel`, or a checkpoint path / Hub id loaded with
            `AutoModel.from_pretrained(model, trust_remote_code=True)`.
        revision: Hub revision to load (pin it); for the metadata of a loaded model, its revision.
        think / threshold: TWN's think mode ("auto", "always", "never") and the gate threshold for
            "auto" (the checkpoint's default when None). Anything but the default is recorded as mteb
            `experiment_kwargs`.
        device / dtype: where and in which precision to load a checkpoint.
        prompts: optional instructions overriding the tasks' own, keyed as mteb model prompts
            (`"query"`, `"document"`, a task name or `"<task>-query"`).
        num_frames: frames sampled from videos that do not come as frame lists.
        model_meta: the `ModelMeta` to report; built with `twn_model_meta` when None.
        max_think_tokens: cap on CoT tokens (the checkpoint's default when None).
        **load_kwargs: passed to `from_pretrained`.

    Instructions: a row's own `instruction` (MMEB-V2 image tasks, mteb instruction-retrieval tasks)
    wins; then `prompts`; then the task's mteb prompt for the `prompt_type` (a plain-string task
    prompt applies to queries only); otherwise the checkpoint's default instruction.

    After each `encode` call, `stats[task name]` holds the inputs seen, how many thought, and the CoT
    tokens generated (for think-rate / cost reports).
    """

    def __init__(self, model, *, revision: str | None = None, think: str = "auto", threshold: float | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype | str | None = None,
                 prompts: dict[str, str] | None = None, num_frames: int = NUM_VIDEO_FRAMES,
                 model_meta: ModelMeta | None = None, max_think_tokens: int | None = None, **load_kwargs):
        self.think = think
        self.threshold = threshold
        self._experiment = experiment_kwargs(think, threshold)
        self._revision = revision
        self._meta_source = model
        if isinstance(model, (str, os.PathLike)):
            from transformers import AutoModel

            self._meta_source = os.fspath(model)
            if dtype is not None:
                load_kwargs["dtype"] = dtype
            model = AutoModel.from_pretrained(self._meta_source, revision=revision, trust_remote_code=True,
                                              **load_kwargs)
        if device is not None:
            model = model.to(device)
        self.model = model.eval()
        self.model.check_think_args(think, threshold)
        self.prompts = dict(prompts) if prompts else None
        self.num_frames = num_frames
        self.max_think_tokens = max_think_tokens
        self._meta = None
        if model_meta is not None:
            self.mteb_model_meta = model_meta
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: {"inputs": 0, "thought": 0, "cot_tokens": 0})

    @property
    def mteb_model_meta(self) -> ModelMeta:
        """The model's `ModelMeta` (built on first use with `twn_model_meta`), always carrying this
        encoder's think settings as `experiment_kwargs`."""
        if self._meta is None:
            self._meta = twn_model_meta(self._meta_source, revision=self._revision, think=self.think,
                                        threshold=self.threshold)
        return self._meta

    @mteb_model_meta.setter
    def mteb_model_meta(self, meta: ModelMeta | None) -> None:
        if meta is not None:
            other = {k: v for k, v in (meta.experiment_kwargs or {}).items() if k not in ("think", "threshold")}
            if dict(meta.experiment_kwargs or {}) != other | self._experiment:
                meta = meta.model_copy(update={"experiment_kwargs": (other | self._experiment) or None})
        self._meta = meta

    # ----- instructions ---------------------------------------------------------------------
    def instruction_for(self, task_metadata, prompt_type: PromptType | None) -> str | None:
        """The instruction of inputs without their own: `prompts`, then the task's prompt, else None
        (TWN then uses the checkpoint's default instruction)."""
        if self.prompts:
            key = get_prompt_name(self.prompts, task_metadata, prompt_type)
            if key is not None:
                return self.prompts[key] or None
        prompt = getattr(task_metadata, "prompt", None)
        if isinstance(prompt, dict):
            return (prompt.get(prompt_type.value) if prompt_type is not None else None) or None
        if isinstance(prompt, str) and prompt_type != PromptType.document:
            return prompt or None
        return None

    def _inputs(self, batch: dict[str, list], default_instruction: str | None) -> list[dict]:
        size = len(next(iter(batch.values())))
        # mteb appends a query's instruction to its `text` and keeps the original under `query`.
        texts = batch["query"] if "query" in batch and "instruction" in batch else batch.get("text")
        items = []
        for i in range(size):
            item: dict[str, Any] = {}
            text = texts[i] if texts is not None else None
            if isinstance(text, str) and text.strip():
                item["text"] = text
            image = batch["image"][i] if "image" in batch else None
            if isinstance(image, (list, tuple)):
                if image:
                    item["images"] = list(image)
            elif image is not None:
                item["image"] = image
            video = batch["video"][i] if "video" in batch else None
            if video is not None:
                item["video"] = video_to_frames(video, self.num_frames)
            instruction = batch["instruction"][i] if "instruction" in batch else None
            instruction = instruction if isinstance(instruction, str) and instruction.strip() else default_instruction
            if instruction:
                item["instruction"] = instruction
            if not set(item) - {"instruction"}:
                raise ValueError(f"input {i} of the batch has no text, image or video (keys: {sorted(batch)})")
            items.append(item)
        return items

    # ----- mteb API -------------------------------------------------------------------------
    def encode(self, inputs, *, task_metadata, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs) -> np.ndarray:
        instruction = self.instruction_for(task_metadata, prompt_type)
        batch_size = int(kwargs.get("batch_size") or 8)
        stats = self.stats[task_metadata.name]
        embeddings = []
        for batch in inputs:
            items = self._inputs(batch, instruction)
            vectors, details = self.model.encode(
                items, think=self.think, threshold=self.threshold, batch_size=batch_size, return_details=True,
                convert_to_numpy=True, max_think_tokens=self.max_think_tokens,
            )
            embeddings.append(np.asarray(vectors, dtype=np.float32))
            stats["inputs"] += len(details)
            stats["thought"] += sum(d.thought for d in details)
            stats["cot_tokens"] += sum(d.tokens_generated for d in details)
        if not embeddings:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return np.concatenate(embeddings)


def _load_twn_encoder(model_name: str, revision: str | None = None, *, path: str | None = None, **kwargs) -> TWNEncoder:
    """`ModelMeta.loader`: a local checkpoint loads from `path` (its meta revision is a content hash, not
    a Hub revision); a Hub checkpoint loads from `model_name` at `revision`."""
    if path is not None:
        return TWNEncoder(path, revision=None if os.path.isdir(path) else revision, **kwargs)
    return TWNEncoder(model_name, revision=revision, **kwargs)


# ----- the metadata -----------------------------------------------------------------------------
def _local_revision(folder: Path) -> str:
    """A stable id of a local checkpoint's contents: sha256 over its files (names and sizes only for
    files above 64 MiB), shortened. Changes when any config, adapter, gate or code file changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not {".cache", ".git"} & set(p.parts)):
        relative = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        if size <= _HASHED_FILE_LIMIT:
            digest.update(path.read_bytes())
    return "local-" + digest.hexdigest()[:16]


def _card_data(source: str, revision: str | None) -> dict:
    """YAML metadata of the checkpoint's model card (empty when there is none or it cannot be read)."""
    try:
        from huggingface_hub import ModelCard

        if os.path.isdir(source):
            readme = Path(source) / "README.md"
            return ModelCard.load(readme).data.to_dict() if readme.is_file() else {}
        return ModelCard.load(source, revision=revision).data.to_dict()
    except Exception as error:  # offline, private, no card
        logger.info("no model card metadata for %s: %s", source, error)
        return {}


def _counts(model) -> tuple[int, int, int]:
    """(parameters, input-embedding parameters, bytes per parameter) of a TWN model."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.backbone.get_input_embeddings().weight.numel()
    dtypes = [p.dtype for p in model.parameters()]
    size = max(set(dtypes), key=dtypes.count) if dtypes else torch.float32
    return total, embedding, _BYTES.get(size, 4)


def twn_model_meta(source, revision: str | None = None, *, name: str | None = None, think: str = "auto",
                   threshold: float | None = None, n_parameters: int | None = None,
                   memory_usage_mb: float | None = None, license: str | None = None,
                   training_datasets: set[str] | None = None, release_date: str | None = None,
                   languages: list[str] | None = None, public_training_code: str | None = None,
                   reference: str | None = None, citation: str | None = TWN_CITATION,
                   loader_kwargs: dict[str, Any] | None = None) -> TWNModelMeta:
    """mteb `ModelMeta` for a TWN checkpoint (a Hub id, a local folder, or a loaded `TWNModel`).

    Read from the checkpoint where possible: embedding size, maximum tokens, parameter count and
    memory (the architecture is built on the meta device, no weights are loaded), the backbone it
    adapts, and the model card's licence and training datasets. Arguments override what is read.

    * name: "org/model"; a Hub id is used as is, a local folder becomes `local/<folder name>`, a model
      built in memory `local/twn` (its metadata then has no loader).
    * revision: the Hub commit (pin it: unpinned metadata logs a warning); for a local folder a hash
      of its contents (`local-<sha256 prefix>`), so cached results follow the checkpoint's contents.
    * training_datasets: mteb task names; from the card's `datasets`, `TIGER-Lab/MMEB-train` maps to
      the 20 MMEB-V2 in-distribution image tasks. None (unknown) when nothing says.
    * memory_usage_mb: parameters times the bytes of the checkpoint's dtype (bfloat16 when the
      config does not say).
    """
    from twn_hf.modeling import TWNConfig, TWNModel

    kwargs = dict(loader_kwargs or {})
    model = None if isinstance(source, (str, os.PathLike)) else source
    if model is not None:
        config = model.config
        source_name = getattr(config, "_name_or_path", "") or "twn"
        local = os.path.isdir(source_name)
        card = _card_data(source_name, revision) if local else {}
    else:
        source_name = os.fspath(source)
        local = os.path.isdir(source_name)
        config = TWNConfig.from_pretrained(source_name, **({} if local else {"revision": revision}))
        card = _card_data(source_name, revision)
        if local:
            kwargs.setdefault("path", os.path.abspath(source_name))
    if name is None:
        name = f"local/{Path(source_name).name or 'twn'}" if local or "/" not in source_name else source_name
    elif model is None and not local and name != source_name:
        kwargs.setdefault("path", source_name)  # a Hub checkpoint reported under another name
    if model is not None and local:
        kwargs.setdefault("path", os.path.abspath(source_name))
    # a model built in memory (no folder, no Hub id) cannot be re-loaded by mteb from its metadata
    reloadable = model is None or local or "/" in source_name
    if revision is None and local:
        revision = _local_revision(Path(source_name))
    if revision is None:
        logger.warning("ModelMeta for %s has no pinned revision: cached results cannot tell checkpoints apart", name)

    embedding_parameters = None
    if model is not None:
        counted, embedding_parameters, bytes_per = _counts(model)
    else:
        with torch.device("meta"):
            counted, embedding_parameters, _ = _counts(TWNModel(config))
        dtype = getattr(config.backbone_config, "dtype", None) or getattr(config, "dtype", None) or torch.bfloat16
        bytes_per = _BYTES.get(getattr(torch, dtype) if isinstance(dtype, str) else dtype, 2)
    n_parameters = n_parameters if n_parameters is not None else counted
    if memory_usage_mb is None:
        memory_usage_mb = round(n_parameters * bytes_per / 2**20, 2)

    if training_datasets is None:
        listed = card.get("datasets") or []
        listed = [listed] if isinstance(listed, str) else list(listed)
        if any(d in MMEB_TRAIN_DATASETS for d in listed):
            training_datasets = {task_name(t) for t in MMEB_TRAIN_IN_DISTRIBUTION}
    text_config = config.text_config
    hub = not local and model is None
    return TWNModelMeta(
        loader=_load_twn_encoder if reloadable else None,
        loader_kwargs=kwargs,
        name=name,
        revision=revision,
        release_date=release_date,
        languages=languages,
        n_parameters=n_parameters,
        n_embedding_parameters=embedding_parameters,
        memory_usage_mb=memory_usage_mb,
        max_tokens=getattr(text_config, "max_position_embeddings", None),
        embed_dim=config.hidden_size,
        license=license or card.get("license"),
        open_weights=True,
        public_training_code=public_training_code,
        public_training_data=None,
        framework=["PyTorch", "Transformers"],
        reference=reference or (f"https://huggingface.co/{source_name}" if hub else None),
        similarity_fn_name="cosine",
        use_instructions=True,
        training_datasets=training_datasets,
        adapted_from=config.backbone_name_or_path,
        modalities=["image", "text", "video"],
        model_type=["dense"],
        citation=citation,
        experiment_kwargs=experiment_kwargs(think, threshold) or None,
    )


__all__ = ["THINK_MODES", "TWN_CITATION", "TWNEncoder", "TWNModelMeta", "experiment_kwargs", "twn_model_meta",
           "video_to_frames"]
