"""Bad input gets a clear error naming the input's index, before any model work starts."""

from __future__ import annotations

import pytest
from PIL import Image

from twn_hf.modeling.inputs_twn import normalize_inputs

BUDGET = 112 * 112


@pytest.fixture
def no_model_work(twn, monkeypatch):
    """Fail the test if `encode` reaches the backbone."""

    def forbidden(*args, **kwargs):
        raise AssertionError("model work started before the inputs were validated")

    monkeypatch.setattr(twn, "prefill", forbidden)
    return twn


def write_png(path, size=(40, 40), mode="RGB"):
    Image.new(mode, size).save(path)
    return str(path)


@pytest.mark.parametrize(
    "bad, error, message",
    [
        (None, ValueError, "input 1 is None"),
        ("   ", ValueError, "input 1: empty text and no image"),
        ({"text": ""}, ValueError, "input 1: empty text and no image or video"),
        ({"text": "x", "colour": "red"}, ValueError, "input 1: unknown keys ['colour']"),
        ({"text": "x", "image": None, "images": []}, ValueError, "either 'image' or 'images'"),
        ({"video": []}, ValueError, "input 1: video has no frames"),
        ({"video": "frames"}, TypeError, "input 1: 'video' must be a list of frames"),
        (42, TypeError, "input 1: expected a string, a path, a PIL image or a dict, got int"),
        ({"text": 5}, TypeError, "input 1: 'text' must be a string"),
        ({"image": 3.5}, TypeError, "input 1: image must be a PIL image or a path, got float"),
        (Image.new("RGB", (0, 10)), ValueError, "input 1: image has zero size (0x10)"),
        (Image.new("RGB", (5000, 10)), ValueError, "aspect ratio"),
    ],
)
def test_bad_input_is_named(no_model_work, bad, error, message):
    with pytest.raises(error) as raised:
        no_model_work.encode(["fine", bad, "also fine"])
    assert message in str(raised.value)


def test_missing_image_file(no_model_work, tmp_path):
    with pytest.raises(ValueError, match=r"input 0: image file not found: .*nowhere\.png"):
        no_model_work.encode([str(tmp_path / "nowhere.png")])


def test_corrupt_image_file(no_model_work, tmp_path):
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    with pytest.raises(ValueError, match=r"input 2: cannot read image file .*corrupt\.jpg"):
        no_model_work.encode(["a", "b", {"image": str(path), "text": "c"}])


def test_corrupt_video_frame(no_model_work, tmp_path):
    good = write_png(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"input 0: cannot read video frame 1 file"):
        no_model_work.encode([{"video": [good, str(bad)]}])


def test_unknown_think_mode_and_threshold(no_model_work):
    with pytest.raises(ValueError, match=r"think must be one of .* got 'sometimes'"):
        no_model_work.encode(["a"], think="sometimes")
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\], got 1.5"):
        no_model_work.encode(["a"], threshold=1.5)
    with pytest.raises(ValueError, match=r"threshold must lie in \[0, 1\], got -0.1"):
        no_model_work.encode(["a"], threshold=-0.1)
    with pytest.raises(TypeError, match="threshold must be a number"):
        no_model_work.encode(["a"], threshold="high")


def test_empty_batch_and_bad_batch_size(no_model_work):
    with pytest.raises(ValueError, match="inputs is empty"):
        no_model_work.encode([])
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        no_model_work.encode(["a"], batch_size=0)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "LA", "I;16"])
def test_non_rgb_modes_are_converted(mode):
    (item,) = normalize_inputs([Image.new(mode, (40, 30))], BUDGET)
    assert item.images[0].mode == "RGB" and item.images[0].size == (40, 30)


def test_transparent_pixels_become_white():
    (item,) = normalize_inputs([Image.new("RGBA", (40, 40), (0, 0, 0, 0))], BUDGET)
    assert item.images[0].getpixel((0, 0)) == (255, 255, 255)


def test_images_over_the_pixel_budget_are_downscaled_keeping_aspect():
    (item,) = normalize_inputs([Image.new("RGB", (800, 400))], BUDGET)
    width, height = item.images[0].size
    assert width * height <= BUDGET
    assert abs(width / height - 2.0) < 0.05


def test_tiny_images_are_upscaled_to_one_merged_patch():
    (item,) = normalize_inputs([Image.new("RGB", (10, 20))], BUDGET)
    assert min(item.images[0].size) >= 28


def test_paths_and_dict_forms(tmp_path):
    path = write_png(tmp_path / "img.png", mode="L")
    items = normalize_inputs(
        [path, tmp_path / "img.png", {"text": "t", "images": [path, path]}, {"video": [path, path], "instruction": "Find."}],
        BUDGET,
    )
    assert [len(i.images) for i in items] == [1, 1, 2, 0]
    assert items[3].video is not None and len(items[3].video) == 2
    assert items[3].instruction == "Find."


def test_valid_inputs_still_encode_after_a_rejected_batch(twn):
    with pytest.raises(ValueError):
        twn.encode(["ok", None])
    assert twn.encode(["ok"], think="never").shape[0] == 1
