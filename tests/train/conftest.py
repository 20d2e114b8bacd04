"""Fixtures for the training tests: a few dozen rows with tiny images, and a tiny TWN checkpoint to start from."""

from __future__ import annotations

import logging

import pytest
import torch
from train_fixture import make_rows, start_model, write_jsonl


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    """(rows.jsonl path, image root) of 24 rows."""
    folder = tmp_path_factory.mktemp("train_data")
    return write_jsonl(folder / "rows.jsonl", make_rows(folder)), str(folder / "images")


@pytest.fixture(scope="session")
def base_checkpoint(tmp_path_factory):
    """A tiny random TWN saved as a self-contained checkpoint: where stage sft starts."""
    path = tmp_path_factory.mktemp("base_twn")
    start_model().save_pretrained(path)
    return str(path)


@pytest.fixture(autouse=True)
def _info_logs(caplog):
    caplog.set_level(logging.INFO, logger="twn_hf")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny models run single-threaded: on a shared 2-core machine, 2 intra-op threads made the training steps
    ~10x slower (threads spinning against other processes), 1 thread loses nothing at this size."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
