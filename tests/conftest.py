"""Shared fixtures: a real redis-server per test on a free port (plain, or durable
across its own SIGKILL), and data paths."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from redis_proc import DURABLE_REDIS, RedisProcess, started_redis

REPO = Path(__file__).resolve().parent.parent
RECORDINGS = REPO / "recordings"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A fresh redis-server for one test (skipped with a reason if none is installed)."""
    with started_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server with AOF and appendfsync always: its data survives stop()/start()
    and its own SIGKILL, restarted on the same port."""
    with started_redis(tmp_path / "redis", DURABLE_REDIS) as server:
        yield server


@pytest.fixture
def shared_data() -> Path:
    """The bundled real recordings and feeds (`recordings/`, a copy of ../shared/data)."""
    return RECORDINGS
