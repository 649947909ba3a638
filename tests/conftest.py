"""Shared fixtures: a real redis-server per test on a free port, and data paths."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_proc import RedisProcess, find_redis_server

REPO = Path(__file__).resolve().parent.parent
RECORDINGS = REPO / "recordings"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh redis-server for one test (skipped with a reason if none is installed)."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path / "redis", binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shared_data() -> Path:
    """The bundled real recordings and feeds (`recordings/`, a copy of ../shared/data)."""
    return RECORDINGS
