"""systemd integration of the running service (in process, a real redis-server, a real
notify socket): the watchdog is fed only while the sink thread makes progress, and a
long drain on SIGTERM asks for more time (EXTEND_TIMEOUT_USEC) and still delivers
everything."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon_proc import wait_for, write_config, write_recording
from redis_proc import RedisProcess

from daemon.config import load_config
from daemon.event import Event
from daemon.pipeline import Pipeline
from daemon.service import run_service
from sinks.redis_streams import PreparedBatch, RedisStreamsSink


class NotifySocket:
    """A datagram socket standing in for systemd's; keeps (monotonic time, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def times(self, key: str, after: float = 0.0, before: float = float("inf")) -> list[float]:
        """Arrival times of messages carrying `key` (e.g. "WATCHDOG=1")."""
        return [t for t, m in self.messages if key in m.splitlines() and after <= t < before]

    def values(self, prefix: str) -> list[str]:
        return [line[len(prefix):] for _, m in self.messages for line in m.splitlines()
                if line.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(sock.path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # fed every 0.2 s while healthy
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield sock
    finally:
        sock.close()


def sigterm_self_when(condition: Any, timeout_s: float) -> threading.Thread:
    """SIGTERM this process (run_service's handler) once `condition()` holds."""
    def run() -> None:
        deadline = time.monotonic() + timeout_s
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_watchdog_stops_while_the_sink_is_wedged_and_resumes_after(
    redis_server: RedisProcess, tmp_path: Path, notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    recording = tmp_path / "events.jsonl"
    write_recording(recording, "live", 10)
    config = load_config(write_config(tmp_path, redis_server.url, {
        "live": {"type": "jsonl", "path": str(recording), "follow": True}}))
    # socket_timeout_s = 1.0 in the config: the sink may go 3 s without a step.
    wedged, release = threading.Event(), threading.Event()
    original = RedisStreamsSink.write_prepared  # what the pipeline's writer thread calls

    def write(self: RedisStreamsSink, batch: PreparedBatch) -> int:
        if wedged.is_set():
            release.wait(30)  # a write that hangs in one call (not a socket timeout)
        return original(self, batch)

    monkeypatch.setattr(RedisStreamsSink, "write_prepared", write)
    marks: dict[str, float] = {}

    def script() -> None:
        wait_for(lambda: len(notify.times("WATCHDOG=1")) >= 3, 20, "the watchdog fed")
        wedged.set()
        marks["wedged"] = time.monotonic()
        write_recording(recording, "live", 10, start=10)  # a batch for the sink to hang in
        time.sleep(5.0)
        marks["released"] = time.monotonic()
        release.set()
        wait_for(lambda: notify.times("WATCHDOG=1", after=marks["released"]), 10,
                 "the watchdog fed again")
        os.kill(os.getpid(), signal.SIGTERM)

    controller = threading.Thread(target=script, daemon=True)
    controller.start()
    assert run_service(config) == 0
    controller.join(5)
    assert "released" in marks

    before = notify.times("WATCHDOG=1", before=marks["wedged"])
    during = notify.times("WATCHDOG=1", after=marks["wedged"] + 3.5, before=marks["released"])
    after = notify.times("WATCHDOG=1", after=marks["released"])
    assert len(before) >= 3
    assert during == []  # ≥ 1.5 s of silence: systemd would restart a wedged daemon
    assert after
    assert "pipeline made no progress" in caplog.text
    assert notify.times("READY=1") and notify.times("STOPPING=1")


def test_a_long_drain_on_sigterm_extends_the_stop_timeout_and_delivers_everything(
    redis_server: RedisProcess, tmp_path: Path, notify: NotifySocket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recording = tmp_path / "events.jsonl"
    ids = write_recording(recording, "bulk", 1000)
    config = load_config(write_config(tmp_path, redis_server.url, {
        "bulk": {"type": "jsonl", "path": str(recording)}}, batch_size=50))
    original = RedisStreamsSink.write_prepared  # what the pipeline's writer thread calls
    written: list[int] = []

    def slow_write(self: RedisStreamsSink, batch: PreparedBatch) -> int:
        time.sleep(0.25)  # a slow link: 1000 events take ~5 s to drain
        n = original(self, batch)
        written.append(n)
        return n

    monkeypatch.setattr(RedisStreamsSink, "write_prepared", slow_write)
    # What the source handed over before SIGTERM must all arrive; on a loaded machine the
    # source may not have read the whole file by the first write, so record what it emitted.
    emitted: list[str] = []
    original_emitter = Pipeline.emitter

    def recording_emitter(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
        emit = original_emitter(self, *args, **kwargs)

        def wrapped(event: Event, **kw: Any) -> None:
            emit(event, **kw)
            emitted.append(event.id)

        return wrapped

    monkeypatch.setattr(Pipeline, "emitter", recording_emitter)
    sigterm_self_when(lambda: len(written) >= 1 and len(emitted) >= 600, 20)
    started = time.monotonic()
    assert run_service(config) == 0
    drain_s = time.monotonic() - started

    client: Any = redis_server.client()
    assert [f["id"] for _, f in client.xrange("geo:events")] == emitted == ids[: len(emitted)]
    client.close()
    stopping = notify.times("STOPPING=1")
    extends = notify.times("EXTEND_TIMEOUT_USEC=5000000")
    assert len(stopping) == 1
    assert len(extends) >= 2
    assert min(extends) > stopping[0]
    print(f"drain of {sum(written)} events took {drain_s:.1f} s; "
          f"{len(extends)} EXTEND_TIMEOUT_USEC messages")
