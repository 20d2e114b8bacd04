"""Quickstart: embed texts and images with TWN, thinking only where the gate says so.

Run: python examples/quickstart.py [checkpoint]   (default: a tiny random TWN built in code)
"""

import sys

from PIL import Image
from transformers import AutoModel

# 1. Load a TWN checkpoint (any folder or Hub id written by twn_hf); remote code ships with it.
if len(sys.argv) > 1:
    model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
else:
    from twn_hf.testing import tiny_twn

    model = tiny_twn()  # random weights: the outputs are meaningless, the API is the real one

# 2. Inputs: strings, PIL images, image paths, or dicts with text + image(s) / video frames + instruction.
red = Image.new("RGB", (64, 64), (220, 30, 30))
inputs = [
    "a red square",
    red,
    {"text": "what shape is this?", "image": red},
    {"text": "seven plus eight, times two", "instruction": "Represent the arithmetic question."},
]

# 3. Encode with think="auto": the gate decides per input whether to write a chain of thought first.
embeddings, details = model.encode(inputs, think="auto", return_details=True)

# 4. Inspect what each input did and compare embeddings (they are L2-normalised: dot = cosine).
for detail in details:
    print(detail)
print(embeddings @ embeddings.T)
