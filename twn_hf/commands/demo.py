"""`twn demo`: encode a few inputs with think="auto" and show what each input did.

On the bundled TWN-Digits model it shows digit queries, their CoTs and retrievals, and the mode
table (`twn_hf.demo.show`); with `--model` it encodes a few generic texts and images.
"""

from __future__ import annotations

import logging

from twn_hf.commands.common import add_model_args, bundled_checkpoint, load_model

logger = logging.getLogger("twn_hf")


def demo_inputs():
    from PIL import Image, ImageDraw

    square = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(square).rectangle((24, 24, 72, 72), fill=(220, 40, 40))
    stripes = Image.new("RGB", (128, 64), "white")
    draw = ImageDraw.Draw(stripes)
    for x in range(0, 128, 16):
        draw.rectangle((x, 0, x + 7, 63), fill=(30, 60, 200))
    return [
        "a red square on a white background",
        "what is seven plus eight, times two?",
        square,
        {"text": "how many stripes are there?", "image": stripes},
    ]


def describe(item) -> str:
    if isinstance(item, str):
        return repr(item)
    if isinstance(item, dict):
        return f"{item.get('text')!r} + image"
    return f"image {item.size[0]}x{item.size[1]}"


def run(args) -> int:
    model = load_model(args)
    if args.model is None and bundled_checkpoint() is not None:
        from twn_hf.demo.show import run_digits_demo

        run_digits_demo(model)
        return 0
    inputs = demo_inputs()
    embeddings, details = model.encode(inputs, think="auto", return_details=True)
    threshold = model.config.think_threshold
    print(f"encoded {len(inputs)} inputs with think='auto' (threshold {threshold}), embedding dim {embeddings.shape[1]}")
    for item, detail in zip(inputs, details):
        action = f"THOUGHT ({detail.tokens_generated} tokens)" if detail.thought else "embedded directly"
        print(f"- {describe(item)}: p(think)={detail.gate_probability:.2f} -> {action}")
        if detail.thought:
            print(f"    CoT: {detail.cot!r}")
    similarity = embeddings @ embeddings.T
    print("cosine similarities:")
    for row in similarity.tolist():
        print("   " + " ".join(f"{value:+.2f}" for value in row))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="encode a few texts and images with think=auto and show what each did")
    add_model_args(parser)
    parser.set_defaults(func=run)
