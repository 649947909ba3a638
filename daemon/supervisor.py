"""Runs each source in its own thread and restarts it with backoff when it fails or stalls.

A source that raises is restarted after an exponential delay with jitter
(`backoff_initial_s` doubling up to `backoff_max_s`, times a factor drawn from
[0.5, 1.5)); the failure is counted and the last error kept for health reporting.
A source that returns while the daemon is still running (it has nothing more to
do, e.g. a finished recording) is left stopped. With `once`, each source gets
exactly one pass and is not restarted.

Stalls: a source started with ``stall_timeout_s > 0`` (the generic per-source
config key) must show progress at least that often. Progress is any call of the
emit it was given (time spent inside emit, waiting on a full queue, counts as
progress: backpressure is the pipeline's problem, not the source's), or a call of
that emit's ``progress()`` method, which a source that is alive but has nothing
to publish (a poller between polls, a quiet serial line) may call as a heartbeat::

    heartbeat = getattr(emit, "progress", None)   # absent outside the supervisor
    if heartbeat is not None:
        heartbeat()

When the deadline passes, a monitor thread counts a stall, records it as the last
error and sets the stop event of that run. Python cannot kill a thread, so the
restart happens once the run returns (every source checks its stop event between
reads); the new run gets a fresh stop event, and two runs of one source never
overlap (their sequences would interleave). A run that does not return is
reported (`SourceState.wedged`, /healthz not ok) until it does.

Metrics (label ``source``): source_failures_total, source_restarts_total,
source_stalls_total, and gauges source_up, source_restart_delay_seconds (the
delay before the pending restart, 0 when none), source_last_event_age_seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from daemon.event import Event
from daemon.metrics import Metrics
from daemon.pipeline import Emit, PipelineClosed
from daemon.sources.base import Source
from hardware.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass
class SourceState:
    """What health reporting shows of one supervised source."""

    name: str
    running: bool = False
    restarts: int = 0
    failures: int = 0
    stalls: int = 0
    last_error: str = ""
    finished: bool = False
    wedged: bool = False
    stall_timeout_s: float = 0.0
    last_progress_s: float = field(default_factory=time.monotonic)  # monotonic seconds
    last_event_s: float | None = None  # monotonic seconds of the last emitted event
    emitting: int = 0  # emit calls in progress (waiting on backpressure is not a stall)
    thread: threading.Thread | None = field(default=None, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    run_stop: threading.Event = field(default_factory=threading.Event, repr=False)
    stalled: bool = field(default=False, repr=False)  # the current run was stopped as stalled
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class ProgressEmit:
    """The Emit a supervised source gets: forwards to the pipeline and records progress."""

    def __init__(self, emit: Emit, state: SourceState) -> None:
        self._emit = emit
        self._state = state

    def __call__(
        self,
        event: Event,
        *,
        seq: int | None = None,
        memo: tuple[str, str] | None = None,
        producer: str | None = None,
    ) -> None:
        state = self._state
        with state.lock:
            state.emitting += 1
        try:
            self._emit(event, seq=seq, memo=memo, producer=producer)
        finally:
            now_s = time.monotonic()
            with state.lock:
                state.emitting -= 1
                state.last_progress_s = now_s
                state.last_event_s = now_s

    def progress(self) -> None:
        """A heartbeat: the source is alive even though it publishes nothing now."""
        self._state.last_progress_s = time.monotonic()


class Supervisor:
    """Owns the source threads."""

    def __init__(
        self,
        metrics: Metrics,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 300.0,
    ) -> None:
        self.metrics = metrics
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.states: dict[str, SourceState] = {}
        self._closing = threading.Event()
        self._monitor: threading.Thread | None = None
        self._monitor_interval_s = 1.0
        metrics.add_collector(self._collect)

    def start(
        self, source: Source, emit: Emit, once: bool = False, stall_timeout_s: float = 0.0
    ) -> SourceState:
        """Start `source` in a supervised thread (stall checks when `stall_timeout_s` > 0)."""
        state = SourceState(source.name, stall_timeout_s=stall_timeout_s)
        self.states[source.name] = state
        thread = threading.Thread(
            target=self._loop,
            args=(source, ProgressEmit(emit, state), once, state),
            name=f"source-{source.name}",
            daemon=True,
        )
        state.thread = thread
        thread.start()
        if stall_timeout_s > 0:
            self._start_monitor(stall_timeout_s)
        return state

    def _loop(self, source: Source, emit: Emit, once: bool, state: SourceState) -> None:
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        self.metrics.set("source_restart_delay_seconds", 0, source=source.name)
        while not state.stop.is_set():
            state.run_stop = threading.Event()
            if state.stop.is_set():  # stop() ran before the new event existed
                state.run_stop.set()
            state.stalled = False
            state.last_progress_s = time.monotonic()
            state.running = True
            started = time.monotonic()
            try:
                source.run(emit, state.run_stop, once)
                if not state.stalled or state.stop.is_set():
                    state.finished = True
                    return
            except PipelineClosed:
                return
            except Exception as exc:  # a source must never take the daemon down
                state.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                self.metrics.inc("source_failures_total", source=source.name)
                log.error(
                    "source %s failed: %s",
                    source.name,
                    state.last_error,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            finally:
                state.running = False
                state.wedged = False
            if once:
                return
            if time.monotonic() - started > self.backoff_max_s:
                backoff.reset()  # it ran fine for a long while: start over
            wait_s = backoff.next_wait_s()
            self.metrics.set("source_restart_delay_seconds", wait_s, source=source.name)
            log.info("restarting source %s in %.2f s", source.name, wait_s)
            if state.stop.wait(wait_s):
                return
            self.metrics.set("source_restart_delay_seconds", 0, source=source.name)
            state.restarts += 1
            self.metrics.inc("source_restarts_total", source=source.name)

    # -- stall monitor -------------------------------------------------------
    def _start_monitor(self, stall_timeout_s: float) -> None:
        # Check often enough that a stall is seen within about a quarter of its deadline.
        self._monitor_interval_s = min(self._monitor_interval_s, max(0.05, stall_timeout_s / 4))
        if self._monitor is None:
            self._monitor = threading.Thread(
                target=self._watch, name="source-monitor", daemon=True
            )
            self._monitor.start()

    def _watch(self) -> None:
        while not self._closing.wait(self._monitor_interval_s):
            self.check_stalls()

    def check_stalls(self) -> list[str]:
        """Stop the runs that made no progress within their deadline; return their names."""
        now_s = time.monotonic()
        stalled = []
        for state in list(self.states.values()):
            if state.stall_timeout_s <= 0 or not state.running or state.stop.is_set():
                continue
            if state.stalled:
                if not state.wedged and now_s - state.last_progress_s > 2 * state.stall_timeout_s:
                    state.wedged = True
                    log.error("source %s does not stop after its stall; still waiting", state.name)
                continue
            with state.lock:
                idle_s = now_s - state.last_progress_s
                if state.emitting or idle_s <= state.stall_timeout_s:
                    continue
                state.stalled = True
            state.stalls += 1
            state.last_error = f"stalled: no progress for {idle_s:.1f} s"
            self.metrics.inc("source_stalls_total", source=state.name)
            log.error("source %s %s; restarting it", state.name, state.last_error)
            state.run_stop.set()
            stalled.append(state.name)
        return stalled

    def _collect(self, metrics: Metrics) -> None:
        now_s = time.monotonic()
        for state in list(self.states.values()):
            metrics.set("source_up", 1 if state.running else 0, source=state.name)
            if state.last_event_s is not None:
                metrics.set(
                    "source_last_event_age_seconds", now_s - state.last_event_s, source=state.name
                )

    # -- stopping ------------------------------------------------------------
    def stop(self) -> None:
        """Ask every source to stop."""
        self._closing.set()
        for state in self.states.values():
            state.stop.set()
            state.run_stop.set()

    def stop_source(self, name: str, timeout_s: float) -> bool:
        """Stop one source and forget it; True if its thread ended within `timeout_s`."""
        state = self.states.pop(name)
        state.stop.set()
        state.run_stop.set()
        if state.thread is not None:
            state.thread.join(timeout_s)
            return not state.thread.is_alive()
        return True

    def join(self, timeout_s: float) -> list[str]:
        """Wait for the source threads; return the names still running after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        for state in self.states.values():
            if state.thread is not None:
                state.thread.join(max(0.0, deadline - time.monotonic()))
        return [
            s.name for s in self.states.values() if s.thread is not None and s.thread.is_alive()
        ]

    def all_done(self) -> bool:
        """True when no source thread is alive."""
        return all(s.thread is None or not s.thread.is_alive() for s in self.states.values())
