"""Fixtures for the mteb tests: a tiny MMEB-V2 on disk (see `mmeb_fixture`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mmeb_fixture import write_mmeb_fixture  # noqa: E402


@pytest.fixture(scope="session")
def mmeb_root(tmp_path_factory):
    """(root, raw rows) of the tiny MMEB-V2 fixture, written once per session."""
    root = tmp_path_factory.mktemp("mmeb_v2")
    return root, write_mmeb_fixture(root)
