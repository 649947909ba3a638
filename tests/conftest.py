"""Shared fixtures: a real redis-server per test on a free port (plain, or durable
across its own SIGKILL), and data paths."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One redis-server for the tests of a module that leave its configuration alone
    (use `server`, which empties it first)."""
    with started_redis(tmp_path_factory.mktemp("redis")) as proc:
        yield proc


@pytest.fixture
def server(module_server: RedisProcess) -> RedisProcess:
    """The module's redis-server, emptied (and its script cache too) for this test."""
    client: Any = module_server.client()
    client.flushall()
    client.script_flush()
    client.close()
    return module_server


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
