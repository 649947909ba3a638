"""`geosensord run` as a service: graceful SIGTERM, embedded Redis, source supervision.

The daemon runs as a real subprocess on a jsonl source; the supervisor is driven
directly with a source that fails on purpose.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_proc import RedisProcess
from source_kit import Collect

from daemon.embedded_redis import EmbeddedRedis, find_redis_server
from daemon.event import Event
from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext, Station
from daemon.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[2]
STATUS = re.compile(r"stopped: redis (\w+), written (\d+), spool (\d+); replay=(\d+)")


def write_events(path: Path, n: int) -> list[str]:
    """A jsonl recording of `n` events; returns their ids in order."""
    ids = []
    with path.open("w") as fh:
        for i in range(n):
            ids.append(f"svc:{i}")
            fh.write(json.dumps({
                "id": f"svc:{i}", "src": "svc", "kind": "sensor.reading",
                "t": 1_700_000_000_000 + i,
                "lat": -30.0 + (i % 1000) / 1000.0, "lon": -51.0 - (i % 777) / 1000.0,
                "alt": float(i % 50), "data": {"i": i},
            }) + "\n")
    return ids


def write_config(tmp: Path, url: str, source_path: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""\
[station]
id = "svc-station"
lat = -30.0
lon = -51.0

[redis]
url = "{url}"

[state]
dir = "{tmp / 'state'}"

[http]
listen = ""

[pipeline]
batch_latency_ms = 20

[sources.replay]
type = "jsonl"
path = "{source_path}"
""")
    return path


def start_daemon(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--config", str(config), *extra],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=config.parent,
        )


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def stream_ids(client: Any) -> list[str]:
    return [f["id"] for _, f in client.xrange("geo:events")]


# -- graceful stop ---------------------------------------------------------------------


def test_sigterm_after_the_recording_is_published_exits_0_with_everything_in_redis(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    ids = write_events(tmp_path / "events.jsonl", 2000)
    log = tmp_path / "daemon.log"
    proc = start_daemon(write_config(tmp_path, redis_server.url, tmp_path / "events.jsonl"), log)
    try:
        client: Any = redis_server.client()
        wait_for(lambda: client.exists("geo:events") and client.xlen("geo:events") >= 2000, 30,
                 "all events in redis")
        assert proc.poll() is None, "run without --once must keep running after the file ends"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stream_ids(client) == ids
    text = log.read_text()
    assert "received SIGTERM" in text
    m = STATUS.search(text)
    assert m is not None, text
    assert (m.group(1), int(m.group(2)), int(m.group(4))) == ("up", 2000, 2000)


def test_sigterm_while_publishing_drains_every_emitted_event(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    ids = write_events(tmp_path / "events.jsonl", 40_000)
    log = tmp_path / "daemon.log"
    proc = start_daemon(write_config(tmp_path, redis_server.url, tmp_path / "events.jsonl"), log)
    client: Any = redis_server.client()
    try:
        # Stop it mid-file: as soon as the first batches have reached Redis.
        wait_for(lambda: client.exists("geo:events") and client.xlen("geo:events") > 0, 30,
                 "first events in redis")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    written = stream_ids(client)
    m = STATUS.search(log.read_text())
    assert m is not None, log.read_text()
    emitted, delivered = int(m.group(4)), int(m.group(2))
    # Everything the source handed to the pipeline was written before exit: a prefix of
    # the file, in order, without gaps or duplicates.
    assert delivered == emitted == len(written)
    assert written == ids[: len(written)]
    assert int(m.group(3)) == 0  # nothing left in the spool


def test_sigint_stops_like_sigterm(redis_server: RedisProcess, tmp_path: Path) -> None:
    write_events(tmp_path / "events.jsonl", 10)
    log = tmp_path / "daemon.log"
    proc = start_daemon(write_config(tmp_path, redis_server.url, tmp_path / "events.jsonl"), log)
    client: Any = redis_server.client()
    try:
        wait_for(lambda: client.exists("geo:events") and client.xlen("geo:events") >= 10, 30,
                 "events in redis")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "received SIGINT" in log.read_text()


# -- embedded Redis --------------------------------------------------------------------


def redis_servers_in(state_dir: Path) -> list[int]:
    """Pids of live redis processes working in `state_dir` (our embedded server).

    Matched by working directory: redis-server rewrites its command line (the
    config path disappears from /proc/<pid>/cmdline), but it runs in its data dir.
    """
    want = str(state_dir.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text()
            cwd = os.readlink(entry / "cwd")
            status = (entry / "status").read_text()
        except OSError:
            continue
        if comm.startswith("redis") and cwd == want and "\nState:\tZ" not in status:
            pids.append(int(entry.name))
    return pids


def test_embedded_once_writes_into_its_own_redis_and_leaves_no_server_behind(
    tmp_path: Path,
) -> None:
    try:
        find_redis_server()
    except Exception as exc:
        pytest.skip(f"no redis-server for the embedded mode: {exc}")
    ids = write_events(tmp_path / "events.jsonl", 300)
    config = write_config(tmp_path, "embedded", tmp_path / "events.jsonl")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    state = tmp_path / "state" / "redis"
    assert (state / "redis.conf").exists()
    assert redis_servers_in(state) == [], "redis-server outlived the daemon"

    # Start the same embedded server again: it reloads its AOF, and the events are there.
    embedded = EmbeddedRedis(state)
    embedded.start()
    try:
        client = redis.Redis(unix_socket_path=str(embedded.socket_path), decode_responses=True)
        assert stream_ids(client) == ids
        assert client.xlen("geo:src:svc") == 300
        client.close()
        assert redis_servers_in(state) == [embedded.pid]  # the helper does see a live server
    finally:
        embedded.stop()
    assert redis_servers_in(state) == []


def test_embedded_redis_dies_with_a_sigkilled_daemon(tmp_path: Path) -> None:
    try:
        find_redis_server()
    except Exception as exc:
        pytest.skip(f"no redis-server for the embedded mode: {exc}")
    ids = write_events(tmp_path / "events.jsonl", 100)
    config = write_config(tmp_path, "embedded", tmp_path / "events.jsonl")
    proc = start_daemon(config, tmp_path / "daemon.log")
    state = tmp_path / "state" / "redis"
    try:
        # Read while the daemon runs, through the embedded server's unix socket.
        socket_path = EmbeddedRedis(state).socket_path
        client = redis.Redis(unix_socket_path=str(socket_path), decode_responses=True,
                             socket_timeout=2)

        def all_written() -> bool:
            try:
                return bool(client.exists("geo:events")) and client.xlen("geo:events") >= 100
            except redis.ConnectionError:
                return False

        wait_for(all_written, 30, "events in the embedded redis")
        assert stream_ids(client) == ids
        client.close()
        servers = redis_servers_in(state)
        assert len(servers) == 1
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not redis_servers_in(state), 10,
                 "the embedded redis-server to exit after its daemon was SIGKILLed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in redis_servers_in(state):
            os.kill(pid, signal.SIGKILL)  # our own orphan: do not leave it behind


# -- supervision -----------------------------------------------------------------------


class FlakySource(Source):
    """Raises on its first `fail_times` runs, then emits one event per run and waits."""

    def __init__(self, name: str, ctx: SourceContext, fail_times: int) -> None:
        super().__init__(name, {}, ctx)
        self.fail_times = fail_times
        self.runs = 0

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        self.runs += 1
        if self.runs <= self.fail_times:
            raise OSError(f"device unplugged (run {self.runs})")
        emit(Event(id=f"flaky:{self.runs}", src=self.name, kind="test", t=1, rx=1, lat=0.0,
                   lon=0.0, alt=None, station="s"))
        if not once:
            stop.wait()


def context(tmp_path: Path, metrics: Metrics) -> SourceContext:
    return SourceContext(station=Station("s", 0.0, 0.0), metrics=metrics, state_dir=tmp_path,
                         config_dir=tmp_path, memo=lambda producer: {})


def test_supervisor_restarts_a_failing_source_and_counts_failures(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01, backoff_max_s=0.05)
    source = FlakySource("flaky", context(tmp_path, metrics), fail_times=3)
    emit = Collect()
    state = sup.start(source, emit)
    wait_for(lambda: len(emit.events) == 1, 10, "the source to run after its restarts")
    assert state.failures == 3
    assert state.restarts == 3
    assert "OSError: device unplugged (run 3)" in state.last_error
    assert metrics.get("source_failures_total", source="flaky") == 3
    assert metrics.get("source_restarts_total", source="flaky") == 3
    assert state.running
    sup.stop()
    assert sup.join(5) == []
    assert sup.all_done()
    assert [e.id for e in emit.events] == ["flaky:4"]


def test_supervisor_stops_a_source_that_keeps_failing_promptly(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01, backoff_max_s=0.02)
    source = FlakySource("broken", context(tmp_path, metrics), fail_times=10**9)
    state = sup.start(source, Collect())
    wait_for(lambda: state.failures >= 5, 10, "several failures")
    sup.stop()
    assert sup.join(2) == []
    failures = state.failures
    time.sleep(0.1)
    assert state.failures == failures, "restarted after stop"
    assert metrics.get("source_failures_total", source="broken") == failures


def test_backoff_grows_between_consecutive_failures(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.05, backoff_max_s=0.4)
    source = FlakySource("slow", context(tmp_path, metrics), fail_times=10**9)
    times: list[float] = []
    original = source.run

    def timed_run(emit: Emit, stop: threading.Event, once: bool) -> None:
        times.append(time.monotonic())
        original(emit, stop, once)

    source.run = timed_run  # type: ignore[method-assign]
    state = sup.start(source, Collect())
    wait_for(lambda: state.failures >= 6, 10, "six failures")
    sup.stop()
    sup.join(2)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Delays are d * U(0.5, 1.5) with d = 0.05, 0.1, 0.2, 0.4, 0.4: later gaps are longer.
    # Lower bounds are robust under load; the upper ones leave room for scheduling.
    assert gaps[0] < 0.3
    assert min(gaps[3:5]) >= 0.2
    assert max(gaps) < 1.5  # capped by backoff_max_s (0.4 s, times 1.5 for the jitter)


def test_with_once_a_failing_source_is_not_restarted(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01, backoff_max_s=0.02)
    source = FlakySource("once", context(tmp_path, metrics), fail_times=1)
    state = sup.start(source, Collect(), once=True)
    assert sup.join(5) == []
    assert (state.failures, state.restarts, source.runs) == (1, 0, 1)
    assert not state.finished


def test_a_source_that_returns_is_finished_and_not_restarted(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01)
    source = FlakySource("done", context(tmp_path, metrics), fail_times=0)
    emit = Collect()
    state = sup.start(source, emit, once=True)
    assert sup.join(5) == []
    assert state.finished and state.failures == 0 and source.runs == 1
    assert len(emit.events) == 1


def test_once_exits_1_when_a_source_fails_and_0_when_all_succeed(
    redis_server: RedisProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from daemon.cli import main as cli_main

    config = write_config(tmp_path, redis_server.url, tmp_path / "missing.jsonl")
    assert cli_main(["run", "--config", str(config), "--once"]) == 1
    assert "source replay failed" in caplog.text
    assert "missing.jsonl" in caplog.text
    write_events(tmp_path / "missing.jsonl", 5)
    assert cli_main(["run", "--config", str(config), "--once"]) == 0
    client: Any = redis_server.client()
    assert client.xlen("geo:events") == 5
