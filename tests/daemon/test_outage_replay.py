"""Fault injection end to end: the real pipeline, a real redis-server, the disk spool.

Redis is stopped (SIGTERM or SIGKILL) and restarted on the same port while events
flow; the daemon itself is SIGKILLed while batches sit in the spool. Afterwards
every event must be in the global stream exactly once, in emission order per
producer (design §4: nothing lost, no duplicates).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
from pipeline_kit import nothing_committed, redis_pipeline
from redis_proc import RedisProcess

from daemon.event import Event
from daemon.metrics import Metrics
from daemon.pipeline import Emit, Pipeline
from sinks.spool import DiskSpool

REPO = Path(__file__).resolve().parents[2]
# `durable_redis` (tests/conftest.py): AOF with fsync on every write, so whatever Redis
# acknowledged survives its own SIGKILL and any loss these tests find is ours.


def make_event(producer: str, i: int) -> Event:
    """Event number `i` of `producer`, spread over the globe so many cell streams are hit."""
    return Event(
        id=f"test:{producer}:{i}", src=producer, kind="sensor.reading",
        t=1_700_000_000_000 + i, rx=1_700_000_000_000 + i,
        lat=(i * 7.3) % 170 - 85, lon=(i * 13.7) % 350 - 175, alt=None,
        station="test", data={"i": i},
    )


def build_pipeline(url: str, state: Path, metrics: Metrics) -> tuple[Pipeline, DiskSpool]:
    spool = DiskSpool(state / "spool", segment_bytes=64 * 1024)
    # The committed-offset lookup would fail while Redis is down; the persisted
    # reservation in seq.json alone keeps sequences above everything handed out.
    pipeline, _ = redis_pipeline(url, state / "seq.json", metrics, committed=nothing_committed,
                                 socket_timeout_s=2.0, spool=spool, batch_size=100,
                                 batch_latency_s=0.02)
    return pipeline, spool


def ids_by_producer(server: RedisProcess, key: str = "geo:events") -> dict[str, list[str]]:
    """The ids in a stream, in stream order, grouped by producer (the entry's src)."""
    client = server.client()
    out: dict[str, list[str]] = {}
    for _, fields in client.xrange(key) or []:
        assert fields is not None
        out.setdefault(str(fields["src"]), []).append(str(fields["id"]))
    client.close()
    return out


def stream_length(server: RedisProcess) -> int:
    client = redis.Redis(port=server.port, socket_timeout=1)
    try:
        return int(client.xlen("geo:events"))
    except redis.ConnectionError:
        return -1
    finally:
        client.close()


def kill_redis(server: RedisProcess) -> None:
    assert server.proc is not None
    server.proc.kill()
    server.proc.wait()
    server.proc = None


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the test condition")
        time.sleep(0.005)


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_redis_outage_mid_run_loses_and_duplicates_nothing(
    durable_redis: RedisProcess, tmp_path: Path, how: str
) -> None:
    n = 1200
    producers = ("alpha", "beta")
    metrics = Metrics()
    pipeline, spool = build_pipeline(durable_redis.url, tmp_path / "state", metrics)
    pipeline.start()
    emitted = {p: 0 for p in producers}

    def run_source(producer: str, emit: Emit) -> None:
        for i in range(n):
            emit(make_event(producer, i))
            emitted[producer] = i + 1
            if i % 10 == 9:
                time.sleep(0.002)  # events keep trickling in across the outage

    threads = [
        threading.Thread(target=run_source, args=(p, pipeline.emitter(p)), daemon=True)
        for p in producers
    ]
    for t in threads:
        t.start()
    wait_for(lambda: min(emitted.values()) >= n // 4)
    if how == "sigkill":
        kill_redis(durable_redis)
    else:
        durable_redis.stop()
    wait_for(lambda: min(emitted.values()) >= n // 2)
    durable_redis.start()  # same port, same AOF
    for t in threads:
        t.join(60)
    assert pipeline.wait_idle(30)
    assert pipeline.stop()
    spool.close()

    expected = {p: [f"test:{p}:{i}" for i in range(n)] for p in producers}
    assert ids_by_producer(durable_redis) == expected
    for p in producers:
        assert ids_by_producer(durable_redis, f"geo:src:{p}") == {p: expected[p]}
    # The outage really went through the spool (otherwise this test proves nothing).
    assert metrics.total("spooled_events_total") > 0
    assert metrics.total("replayed_events_total") == metrics.total("spooled_events_total")
    assert spool.dropped_events == 0
    assert spool.corrupt_records == 0


# The "daemon" that gets SIGKILLed: writes `first` events with Redis up, then (after
# the test stopped Redis) emits up to `spooled_upto`, waits until all are spooled,
# says so and waits to be killed (or, with Redis back, starts replaying first).
CHILD = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [{repo!r}, {tests!r}, {here!r}]
    from pathlib import Path
    from daemon.metrics import Metrics
    from test_outage_replay import build_pipeline, make_event

    url, state, first, spooled_upto = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:5])
    pipeline, spool = build_pipeline(url, state, Metrics())
    pipeline.batch_size = 20  # many small batches: a kill during replay lands mid-way
    pipeline.start()
    emit = pipeline.emitter("alpha")
    for i in range(first):
        emit(make_event("alpha", i))
    assert pipeline.wait_idle(30)
    print("written", flush=True)
    sys.stdin.readline()
    for i in range(first, spooled_upto):
        emit(make_event("alpha", i))
    while pipeline.queue_depth() or spool.depth() < spooled_upto - first:
        time.sleep(0.005)
    print("spooled", spool.depth(), flush=True)
    sys.stdin.readline()
    time.sleep(600)
""").format(repo=str(REPO), tests=str(REPO / "tests"), here=str(Path(__file__).parent))


@pytest.mark.parametrize("killed_during", ["outage", "replay"])
def test_daemon_killed_with_a_full_spool_resumes_exactly_once(
    durable_redis: RedisProcess, tmp_path: Path, killed_during: str
) -> None:
    first, spooled_upto, n = 300, 1500, 1800
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, durable_redis.url, str(state), str(first),
         str(spooled_upto)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "written"
        durable_redis.stop()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["spooled", str(spooled_upto - first)]
        if killed_during == "replay":
            durable_redis.start()
            child.stdin.write("go\n")
            child.stdin.flush()
            wait_for(lambda: stream_length(durable_redis) > first + 100)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    if killed_during == "outage":
        durable_redis.start()
        assert stream_length(durable_redis) == first

    # The restarted daemon: a new pipeline and a new DiskSpool on the same state dir.
    metrics = Metrics()
    pipeline, spool = build_pipeline(durable_redis.url, state, metrics)
    left = spool.depth()
    assert 0 < left <= spooled_upto - first
    pipeline.start()
    emit = pipeline.emitter("alpha")
    for i in range(spooled_upto, n):
        emit(make_event("alpha", i))
    assert pipeline.wait_idle(30)
    assert pipeline.stop()
    spool.close()

    assert ids_by_producer(durable_redis) == {"alpha": [f"test:alpha:{i}" for i in range(n)]}
    assert metrics.total("replayed_events_total") == left
    assert list((state / "spool").glob("*.seg")) == []


def test_block_policy_holds_events_back_instead_of_dropping(
    durable_redis: RedisProcess, tmp_path: Path
) -> None:
    n = 3000
    spool = DiskSpool(tmp_path / "spool", max_bytes=32 * 1024, segment_bytes=8 * 1024,
                      policy="block", fsync="never")
    pipeline, _ = redis_pipeline(durable_redis.url, tmp_path / "seq.json", Metrics(),
                                 committed=nothing_committed, spool=spool, queue_size=200,
                                 batch_size=50, batch_latency_s=0.02)
    pipeline.start()
    durable_redis.stop()
    emit = pipeline.emitter("alpha")

    def run_source() -> None:
        for i in range(n):
            emit(make_event("alpha", i))

    source = threading.Thread(target=run_source, daemon=True)
    source.start()
    wait_for(lambda: spool.bytes_on_disk() > 24 * 1024)
    time.sleep(0.3)  # the spool is full and the source is held back by backpressure
    durable_redis.start()
    source.join(3)
    assert not source.is_alive()
    assert pipeline.wait_idle(3)
    assert pipeline.stop()
    spool.close()
    assert ids_by_producer(durable_redis) == {"alpha": [f"test:alpha:{i}" for i in range(n)]}
    assert spool.dropped_events == 0
