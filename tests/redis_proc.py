"""A real redis-server process on a free loopback port, for tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from daemon.loopback_redis import LoopbackRedis, free_port

__all__ = ["DURABLE_REDIS", "RedisProcess", "find_redis_server", "free_port", "started_redis"]

# AOF with fsync on every write: whatever Redis acknowledged survives its own SIGKILL,
# so any loss a test finds is ours (design §4 documents the `everysec` limit).
DURABLE_REDIS = ("--appendonly", "yes", "--appendfsync", "always")


def find_redis_server() -> str | None:
    """The system redis-server (preferred over shims on PATH), else the one on PATH."""
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("redis-server")


class RedisProcess(LoopbackRedis):
    """Starts, stops and restarts one redis-server; `url` points at it."""

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


@contextmanager
def started_redis(workdir: Path, extra_args: tuple[str, ...] = ()) -> Iterator[RedisProcess]:
    """A started RedisProcess in `workdir`, stopped on exit; skips the test (with the
    reason) when no redis-server is installed."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisProcess(workdir, binary, extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        server.stop()
