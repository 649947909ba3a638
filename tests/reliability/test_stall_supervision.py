"""Stall detection in the supervisor: a run without progress past `stall_timeout_s` is
stopped and restarted; heartbeats and time blocked in emit (backpressure) are progress;
a run that ignores its stop is reported wedged and never overlapped by a second run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from daemon_proc import wait_for

from daemon.event import Event
from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext, Station
from daemon.supervisor import Supervisor


def discard(event: Event, *, seq: int | None = None, memo: tuple[str, str] | None = None,
            producer: str | None = None) -> None:
    """An Emit that drops what it is given."""


def context(tmp_path: Path, metrics: Metrics) -> SourceContext:
    return SourceContext(station=Station("s", 0.0, 0.0), metrics=metrics, state_dir=tmp_path,
                         config_dir=tmp_path, memo=lambda producer: {})


def event(i: int) -> Event:
    return Event(id=f"x:{i}", src="x", kind="test", t=i, rx=i, lat=0.0, lon=0.0, alt=None,
                 station="s")


class Scripted(Source):
    """Emits `first` events, then does what `mode` says; counts concurrent runs."""

    def __init__(self, ctx: SourceContext, mode: str, first: int = 1) -> None:
        super().__init__("scripted", {}, ctx)
        self.mode = mode
        self.first = first
        self.runs = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        with self.lock:
            self.runs += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i in range(self.first):
                emit(event(i))
            if self.mode == "stuck":  # alive, responsive to stop, but no progress
                stop.wait()
            elif self.mode == "heartbeat":
                while not stop.wait(0.05):
                    emit.progress()  # type: ignore[attr-defined]
            elif self.mode == "deaf":  # ignores stop for a while (a blocking read)
                time.sleep(1.0)
        finally:
            with self.lock:
                self.active -= 1


def test_a_stuck_source_is_stopped_and_restarted_after_its_stall_timeout(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01, backoff_max_s=0.05)
    source = Scripted(context(tmp_path, metrics), "stuck")
    started = time.monotonic()
    state = sup.start(source, discard, stall_timeout_s=0.3)
    wait_for(lambda: source.runs >= 3, 10, "two restarts")
    elapsed_s = time.monotonic() - started
    sup.stop()
    assert sup.join(2) == []
    assert state.stalls >= 2 and state.restarts >= 2
    assert state.failures == 0
    assert state.last_error.startswith("stalled: no progress for 0.")
    assert metrics.get("source_stalls_total", source="scripted") == state.stalls
    assert elapsed_s >= 0.6  # not before the deadline, twice
    assert source.max_active == 1


def test_heartbeats_keep_a_quiet_source_running(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01)
    source = Scripted(context(tmp_path, metrics), "heartbeat")
    state = sup.start(source, discard, stall_timeout_s=0.2)
    time.sleep(1.0)
    sup.stop()
    assert sup.join(2) == []
    assert (state.stalls, source.runs) == (0, 1)


def test_waiting_on_a_full_queue_is_not_a_stall(tmp_path: Path) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01)
    source = Scripted(context(tmp_path, metrics), "done", first=2)
    blocked = threading.Event()

    def backpressured_emit(event: Event, *, seq: int | None = None,
                           memo: tuple[str, str] | None = None,
                           producer: str | None = None) -> None:
        if event.id == "x:1":
            blocked.set()
            time.sleep(1.0)  # the pipeline holds the source back for 5 stall timeouts

    state = sup.start(source, backpressured_emit, stall_timeout_s=0.2)
    assert sup.join(5) == []
    assert blocked.is_set()
    assert (state.stalls, source.runs, state.finished) == (0, 1, True)


def test_a_run_that_ignores_its_stop_is_reported_wedged_and_not_overlapped(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    sup = Supervisor(metrics, backoff_initial_s=0.01)
    source = Scripted(context(tmp_path, metrics), "deaf")
    state = sup.start(source, discard, stall_timeout_s=0.1)
    wait_for(lambda: state.wedged, 5, "the run reported wedged")
    assert source.runs == 1  # no second run while the first has not returned
    wait_for(lambda: source.runs >= 2, 5, "the restart once the run returned")
    assert not state.wedged or source.active == 1
    sup.stop()
    assert sup.join(3) == []
    assert source.max_active == 1
