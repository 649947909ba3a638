"""Fixtures of the fault-injection tests: a redis-server that survives its own SIGKILL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_proc import DURABLE_REDIS
from redis_proc import RedisProcess, find_redis_server


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server with AOF and appendfsync always, restartable on the same port."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(tmp_path / "redis", binary, extra_args=DURABLE_REDIS)
    server.start()
    try:
        yield server
    finally:
        server.stop()
