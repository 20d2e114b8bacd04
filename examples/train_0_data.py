"""Prepare TWN training rows from MMEB-train (the data format: `twn_hf.train.data`).

    python examples/train_0_data.py

Same from the shell: `twn train convert-mmeb TIGER-Lab/MMEB-train data/mmeb_imagenet.jsonl --subset ImageNet_1K
--split original` and `twn train check-data --data data/mmeb_imagenet.jsonl --image-root data/MMEB-train`.
"""

import logging

from twn_hf.train import convert_mmeb

logging.basicConfig(level=logging.INFO, format="%(message)s")

# 1. Where things are. MMEB-train's images come as zip files in the dataset repo (images/<subset>/...); unzip them
#    under IMAGE_ROOT so that the rows' relative paths resolve.
IMAGE_ROOT = "data/MMEB-train"
SUBSETS = ["ImageNet_1K", "N24News", "HatefulMemes", "VOC2007", "SUN397", "OK-VQA", "A-OKVQA", "DocVQA",
           "InfographicsVQA", "ChartQA", "Visual7W", "VisDial", "CIRR", "VisualNews_t2i", "VisualNews_i2t",
           "MSCOCO_t2i", "MSCOCO_i2t", "NIGHTS", "WebQA", "MSCOCO"]

# 2. Convert each subset's MMEB columns (qry, qry_image_path, pos_text, pos_image_path, neg_text, neg_image_path)
#    to TWN rows (query, query_image, positive, positive_image, negatives, negative_images).
for subset in SUBSETS:
    convert_mmeb("TIGER-Lab/MMEB-train", f"data/twn/{subset}.jsonl", subset=subset, split="original")

# 3. Teacher chains of thought. Stage sft needs `query_cot` (and optionally `positive_cot`) columns: add them to the
#    rows with your teacher (e.g. a larger VLM prompted with the model's think prompt). Stages embed, gate and rl
#    run without them (embed then trains the x view only, or use --cot-source generate).

# 4. Check every row once before a long run: bad files are named by row number (training can also skip them
#    as they load: --on-bad-row skip, the default).
#    twn train check-data --data data/twn/ImageNet_1K.jsonl --image-root data/MMEB-train
