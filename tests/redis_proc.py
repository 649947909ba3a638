"""A real redis-server process on a free loopback port, for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

# AOF with fsync on every write: whatever Redis acknowledged survives its own SIGKILL,
# so any loss a test finds is ours (design §4 documents the `everysec` limit).
DURABLE_REDIS = ("--appendonly", "yes", "--appendfsync", "always")


def find_redis_server() -> str | None:
    """The system redis-server (preferred over shims on PATH), else the one on PATH."""
    for candidate in ("/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if Path(candidate).exists():
            return candidate
    return shutil.which("redis-server")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """Starts, stops and restarts one redis-server; `url` points at it."""

    def __init__(
        self, workdir: Path, binary: str, port: int | None = None, extra_args: tuple[str, ...] = ()
    ) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = port or free_port()
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

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
