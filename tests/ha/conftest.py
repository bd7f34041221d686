"""Fixtures of the HA store tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fsspec
import pytest


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A fresh directory on fsspec's in-memory filesystem, removed afterwards."""
    root = f"/standby-test-{uuid.uuid4().hex[:12]}"
    fs = fsspec.filesystem("memory")
    yield f"memory://{root}"
    if fs.exists(root):
        fs.rm(root, recursive=True)
