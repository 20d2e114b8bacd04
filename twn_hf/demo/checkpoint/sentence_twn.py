"""TWN as a sentence-transformers model: `SentenceTransformer(path, trust_remote_code=True)`.

Every TWN checkpoint lists this module in its `modules.json` (see `sentence_files_twn`), so

    model = SentenceTransformer("path/or/hub-id", trust_remote_code=True)
    queries = model.encode_query(["a red square"], think="never")
    documents = model.encode_document([image, {"text": "a caption", "image": image}], think="auto")
    model.similarity(queries, documents)

runs TWN's own flow (prefill → query tokens → gate → optional chain of thought). The checkpoint's
`query` / `document` prompts, and any `prompt=` / `prompt_name=`, become the TWN *instruction* of each
input (an input dict's own `"instruction"` wins). `think` ("auto" | "always" | "never") and `threshold`
are `encode` keyword arguments; any other unknown keyword gets sentence-transformers' own error.

Inputs: strings, image paths, PIL images, image arrays (H×W×C), `{"text", "image" | "images", "video",
"instruction"}` dicts, videos as frame lists (a list of images inside the batch, or under `"video"`, or
sentence-transformers' `{"array": frames, "video_metadata": ...}`), and chat messages (a `system` turn
is the instruction; `user` turns give text, images and a video).

Inference only: `forward` reuses `TWNModel`'s batched encode step; train TWN with `twn_hf.train`.
Part of the remote code: imports torch, PIL, sentence-transformers and its sibling files only.
"""

from __future__ import annotations

import os

import torch
from PIL import Image

from .decoding_twn import GenerationSettings
from .encoding_twn import THINK_MODES
from .inputs_twn import IMAGE_SUFFIXES, normalize_input
from .modeling_twn import TWNModel
from .sentence_files_twn import SENTENCE_KWARGS, sentence_prompts

try:  # (inside `try`, so transformers' remote-code loader does not demand sentence-transformers for AutoModel)
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import InputModule
except ImportError as error:  # sentence-transformers missing or < 6
    raise ImportError("TWN's sentence-transformers module needs sentence-transformers>=6: "
                      "pip install -U 'sentence-transformers>=6'") from error

__all__ = ["TWNSentenceModule", "to_sentence_transformer"]


def _is_array(value) -> bool:
    return isinstance(value, torch.Tensor) or type(value).__name__ == "ndarray"


def _array_to_image(array, index: int) -> Image.Image:
    """An H×W×C (or C×H×W) uint8 / [0, 1] float array or tensor as a PIL image."""
    tensor = array.detach().cpu() if isinstance(array, torch.Tensor) else torch.from_numpy(array.copy())
    if tensor.ndim != 3:
        raise ValueError(f"input {index}: an image array needs 3 dimensions, got shape {tuple(tensor.shape)}")
    if tensor.shape[0] in (1, 3, 4) and tensor.shape[-1] not in (1, 3, 4):
        tensor = tensor.permute(1, 2, 0)  # C×H×W → H×W×C
    if tensor.is_floating_point():
        tensor = (tensor.clamp(0, 1) * 255).round()
    tensor = tensor.to(torch.uint8)
    if tensor.shape[-1] == 1:
        tensor = tensor[..., 0]
    return Image.fromarray(tensor.numpy())


def _is_image(value) -> bool:
    if isinstance(value, (Image.Image, os.PathLike)):
        return True
    return _is_array(value) and value.ndim == 3


def _image(value, index: int):
    return _array_to_image(value, index) if _is_array(value) else value


def _frames(value, index: int) -> list:
    """A video given as frames, a 4-D array, or sentence-transformers' {"array": ..., "video_metadata": ...}."""
    if isinstance(value, dict):
        if "array" not in value:
            raise ValueError(f"input {index}: a video dict needs an 'array' of frames")
        value = value["array"]
    if _is_array(value):
        if value.ndim != 4:
            raise ValueError(f"input {index}: a video array needs 4 dimensions, got shape {tuple(value.shape)}")
        return [_array_to_image(frame, index) for frame in value]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"input {index}: a video must be a list of frames, got {type(value).__name__}")
    return [_image(frame, index) for frame in value]


def _from_messages(messages, index: int) -> dict:
    """Chat messages → a TWN input dict: a system turn is the instruction, user turns bring the content."""
    if isinstance(messages, dict):
        messages = [messages]
    result: dict = {"images": []}
    texts, instructions = [], []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ("system", "user"):
            raise ValueError(f"input {index}: TWN embeds system and user turns only, got a {role!r} turn")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        for part in parts:
            kind = part.get("type")
            if kind == "text":
                (instructions if role == "system" else texts).append(part.get("text", ""))
            elif kind == "image" and role == "user":
                result["images"].append(_image(part.get("image", part.get("path", part.get("url"))), index))
            elif kind == "video" and role == "user":
                result["video"] = _frames(part.get("video", part.get("path")), index)
            else:
                raise ValueError(f"input {index}: unsupported {kind!r} content in a {role!r} turn")
    if texts:
        result["text"] = "\n".join(texts)
    if instructions:
        result["instruction"] = "\n".join(instructions)
    return result


def to_twn_input(item, index: int):
    """One sentence-transformers input → what `TWNModel.encode` accepts (str, path, PIL image or dict)."""
    if isinstance(item, (list, tuple)):
        if item and all(isinstance(m, dict) and "role" in m for m in item):
            return _from_messages(item, index)
        if item and all(_is_image(frame) or (isinstance(frame, str) and frame.lower().endswith(IMAGE_SUFFIXES))
                        for frame in item):
            return {"video": _frames(item, index)}
        raise TypeError(f"input {index}: a list input must be video frames or chat messages; "
                        "TWN embeds single inputs, not pairs")
    if _is_array(item):
        return {"video": _frames(item, index)} if item.ndim == 4 else _array_to_image(item, index)
    if not isinstance(item, dict):
        return item
    if "role" in item and "content" in item:
        return _from_messages(item, index)
    if "array" in item:
        return {"video": _frames(item, index)}
    item = dict(item)
    if isinstance(item.get("image"), (list, tuple)):  # sentence-transformers' collection under a singular key
        if "images" in item:
            raise ValueError(f"input {index}: give either 'image' or 'images', not both")
        item["images"] = item.pop("image")
    elif item.get("image") is not None:
        item["image"] = _image(item["image"], index)
    if item.get("images") is not None:
        item["images"] = [_image(image, index) for image in item["images"]]
    if item.get("video") is not None:
        item["video"] = _frames(item["video"], index)
    return item


class TWNSentenceModule(InputModule):
    """The whole TWN model as one sentence-transformers input module.

    `preprocess` checks and normalises a batch (the prompt becomes the instruction of inputs without
    one); `forward` embeds it with `think` / `threshold` and returns `sentence_embedding` plus, per input,
    `thought` (bool), `think_probability` (the gate's p) and `cot_tokens` (CoT length), all visible with
    `encode(..., output_value=None)`. The CoT texts: `model[0].model.encode(..., return_details=True)`.
    """

    config_keys: list[str] = []  # everything lives in config.json
    forward_kwargs = set(SENTENCE_KWARGS)
    save_in_root = True

    def __init__(self, model: TWNModel):
        super().__init__()
        self.model = model

    @property
    def modalities(self) -> list:
        return ["text", "image", "video", ("image", "text"), ("text", "video"), ("image", "text", "video"), "message"]

    @property
    def processor(self):
        return self.model.processor

    @property
    def tokenizer(self):
        return None if self.model.processor is None else self.model.processor.tokenizer

    def get_embedding_dimension(self) -> int:
        return self.model.config.hidden_size

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict:
        """Normalise every input up front (so a bad one fails before any model work); apply the prompt."""
        max_pixels = self.model.config.max_image_pixels
        items = []
        for index, item in enumerate(inputs):
            twn_input = normalize_input(to_twn_input(item, index), index, max_pixels)
            if twn_input.instruction is None and prompt and prompt.strip():
                twn_input.instruction = prompt
            items.append(twn_input)
        return {"twn_inputs": items}

    def forward(self, features: dict, think: str = "auto", threshold: float | None = None, **kwargs) -> dict:
        if self.training and torch.is_grad_enabled():
            raise NotImplementedError("TWNSentenceModule is inference-only; train TWN with twn_hf.train")
        model = self.model
        if model.processor is None:
            raise ValueError("this TWN model has no processor attached")
        threshold = model.check_think_args(think, threshold)
        settings = GenerationSettings(max_new_tokens=model.config.max_think_tokens)
        was_training = model.training
        model.eval()
        try:
            embeddings, details = model._encode_batch(features["twn_inputs"], think, threshold, settings)
        finally:
            model.train(was_training)
        return {
            "sentence_embedding": embeddings,
            "thought": torch.tensor([d.thought for d in details], device=embeddings.device),
            "think_probability": torch.tensor([d.gate_probability for d in details], device=embeddings.device),
            "cot_tokens": torch.tensor([d.tokens_generated for d in details], device=embeddings.device),
        }

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.model.save_pretrained(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder: str | None = None,
             revision: str | None = None, local_files_only: bool = False, trust_remote_code: bool = False,
             model_kwargs: dict | None = None, backend: str = "torch", **kwargs) -> TWNSentenceModule:
        if backend != "torch":
            raise ValueError(f"TWN runs on the torch backend only, got backend={backend!r}")
        hub = {"token": token, "cache_dir": cache_folder, "revision": revision, "local_files_only": local_files_only}
        if subfolder:
            hub["subfolder"] = subfolder
        model_kwargs = dict(model_kwargs or {})
        if "torch_dtype" in model_kwargs:
            model_kwargs["dtype"] = model_kwargs.pop("torch_dtype")
        return cls(TWNModel.from_pretrained(model_name_or_path, **hub, **model_kwargs))

    def __repr__(self) -> str:
        config = self.model.config
        return (f"TWNSentenceModule(backbone={config.backbone_config.model_type}, dim={config.hidden_size}, "
                f"queries={config.num_queries}, think_modes={THINK_MODES})")


def to_sentence_transformer(model: TWNModel, **kwargs):
    """An in-memory `SentenceTransformer` around `model`, with the prompts its checkpoint would carry."""
    kwargs.setdefault("prompts", sentence_prompts(model.config))
    kwargs.setdefault("similarity_fn_name", "cosine")
    kwargs.setdefault("device", str(model.device))
    return SentenceTransformer(modules=[TWNSentenceModule(model)], **kwargs)
