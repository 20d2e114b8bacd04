"""Input checking and prompt building for `TWNModel.encode`.

Every input is checked and normalised before any model work starts, so a bad item fails the call
with a message naming its index instead of losing a half-encoded batch. Part of the remote code:
imports only the standard library, PIL and transformers-free helpers.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DICT_KEYS = frozenset({"text", "image", "images", "video", "instruction"})
# Qwen-VL processors need each side >= one merged patch (28 px) and refuse aspect ratios > 200.
MIN_IMAGE_SIDE = 28
MAX_ASPECT_RATIO = 200


@dataclass
class TWNInput:
    """One normalised input: optional text, RGB images, optional video (RGB frames), instruction."""

    text: str | None = None
    images: list[Image.Image] = field(default_factory=list)
    video: list[Image.Image] | None = None
    instruction: str | None = None


def _is_image_path(value: str) -> bool:
    return value.lower().endswith(IMAGE_SUFFIXES)


def load_image(value, index: int, max_pixels: int, what: str = "image") -> Image.Image:
    """Open (if a path), validate and normalise one image to RGB within the pixel budget."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        try:
            with Image.open(path) as opened:
                opened.load()
                image = opened.copy()
        except FileNotFoundError:
            raise ValueError(f"input {index}: {what} file not found: {str(path)!r}") from None
        except (UnidentifiedImageError, OSError, SyntaxError) as error:
            raise ValueError(f"input {index}: cannot read {what} file {str(path)!r}: {error}") from None
    elif isinstance(value, Image.Image):
        image = value
    else:
        raise TypeError(f"input {index}: {what} must be a PIL image or a path, got {type(value).__name__}")

    width, height = image.size
    if width == 0 or height == 0:
        raise ValueError(f"input {index}: {what} has zero size ({width}x{height})")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"input {index}: {what} aspect ratio {width}x{height} exceeds {MAX_ASPECT_RATIO}:1, which Qwen-VL "
            "processors cannot handle"
        )
    if image.mode != "RGB":
        # RGBA/LA/P with transparency: composite on white so transparent pixels do not turn black.
        if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGB", rgba.size, (255, 255, 255))
            background.paste(rgba, mask=rgba.getchannel("A"))
            image = background
        else:
            image = image.convert("RGB")
    if width * height > max_pixels:
        scale = math.sqrt(max_pixels / (width * height))
        image = image.resize((max(1, int(width * scale)), max(1, int(height * scale))), Image.Resampling.BICUBIC)
    if min(image.size) < MIN_IMAGE_SIDE:
        scale = MIN_IMAGE_SIDE / min(image.size)
        image = image.resize(
            (max(MIN_IMAGE_SIDE, round(image.size[0] * scale)), max(MIN_IMAGE_SIDE, round(image.size[1] * scale))),
            Image.Resampling.BICUBIC,
        )
    return image


def _check_text(value, index: int, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"input {index}: {key!r} must be a string, got {type(value).__name__}")
    return value if value.strip() else None


def normalize_input(item, index: int, max_pixels: int) -> TWNInput:
    """Turn one user input (str, path, PIL image or dict) into a `TWNInput`, or raise naming `index`."""
    if item is None:
        raise ValueError(f"input {index} is None")
    if isinstance(item, Image.Image):
        return TWNInput(images=[load_image(item, index, max_pixels)])
    if isinstance(item, os.PathLike) or (isinstance(item, str) and _is_image_path(item.strip())):
        return TWNInput(images=[load_image(os.fspath(item).strip(), index, max_pixels)])
    if isinstance(item, str):
        if not item.strip():
            raise ValueError(f"input {index}: empty text and no image")
        return TWNInput(text=item)
    if not isinstance(item, dict):
        raise TypeError(
            f"input {index}: expected a string, a path, a PIL image or a dict, got {type(item).__name__}"
        )

    unknown = sorted(set(item) - DICT_KEYS)
    if unknown:
        raise ValueError(f"input {index}: unknown keys {unknown}; allowed keys are {sorted(DICT_KEYS)}")
    if "image" in item and "images" in item:
        raise ValueError(f"input {index}: give either 'image' or 'images', not both")

    text = _check_text(item.get("text"), index, "text")
    instruction = _check_text(item.get("instruction"), index, "instruction")
    raw_images = item.get("images")
    if "image" in item and item["image"] is not None:
        raw_images = [item["image"]]
    if raw_images is None:
        raw_images = []
    if not isinstance(raw_images, (list, tuple)):
        raise TypeError(f"input {index}: 'images' must be a list, got {type(raw_images).__name__}")
    images = [load_image(image, index, max_pixels) for image in raw_images]

    video = None
    if item.get("video") is not None:
        frames = item["video"]
        if not isinstance(frames, (list, tuple)):
            raise TypeError(f"input {index}: 'video' must be a list of frames, got {type(frames).__name__}")
        if len(frames) == 0:
            raise ValueError(f"input {index}: video has no frames")
        video = [load_image(frame, index, max_pixels, what=f"video frame {i}") for i, frame in enumerate(frames)]
        if len({frame.size for frame in video}) > 1:
            # Qwen-VL video processors patchify all frames of a video together.
            video = [frame.resize(video[0].size, Image.Resampling.BICUBIC) for frame in video]

    if text is None and not images and video is None:
        raise ValueError(f"input {index}: empty text and no image or video")
    return TWNInput(text=text, images=images, video=video, instruction=instruction)


def normalize_inputs(inputs, max_pixels: int) -> list[TWNInput]:
    """Validate a whole batch up front; a single input (not a list) is accepted too."""
    if isinstance(inputs, (str, dict, Image.Image, os.PathLike)) or inputs is None:
        inputs = [inputs]
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"inputs must be a list of inputs, got {type(inputs).__name__}")
    if len(inputs) == 0:
        raise ValueError("inputs is empty")
    return [normalize_input(item, index, max_pixels) for index, item in enumerate(inputs)]


def build_messages(item: TWNInput, default_instruction: str, think_prompt: str) -> list[dict]:
    """The chat messages for one input: instruction, media, text and the think prompt in one user turn.

    The think prompt is part of every prefill (the cache is shared by both views), so the
    no-think embedding sees it too.
    """
    content: list[dict] = [{"type": "text", "text": (item.instruction or default_instruction) + "\n"}]
    content += [{"type": "image"} for _ in item.images]
    if item.video is not None:
        content.append({"type": "video"})
    tail = "\n".join(part for part in (item.text, think_prompt) if part)
    if tail:
        content.append({"type": "text", "text": tail})
    return [{"role": "user", "content": content}]
