"""Runs each source in its own thread and restarts it with backoff when it fails.

A source that raises is restarted after an exponential delay with jitter
(`backoff_initial_s` doubling up to `backoff_max_s`); the failure is counted and
the last error kept for health reporting. A source that returns while the daemon
is still running (it has nothing more to do, e.g. a finished recording) is left
stopped. With `once`, each source gets exactly one pass and is not restarted.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from daemon.metrics import Metrics
from daemon.pipeline import Emit, PipelineClosed
from daemon.sources.base import Source

log = logging.getLogger(__name__)


@dataclass
class SourceState:
    """What health reporting shows of one supervised source."""

    name: str
    running: bool = False
    restarts: int = 0
    failures: int = 0
    last_error: str = ""
    finished: bool = False
    thread: threading.Thread | None = field(default=None, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)


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

    def start(self, source: Source, emit: Emit, once: bool = False) -> SourceState:
        """Start `source` in a supervised thread."""
        state = SourceState(source.name)
        self.states[source.name] = state
        thread = threading.Thread(
            target=self._loop,
            args=(source, emit, once, state),
            name=f"source-{source.name}",
            daemon=True,
        )
        state.thread = thread
        thread.start()
        return state

    def _loop(self, source: Source, emit: Emit, once: bool, state: SourceState) -> None:
        delay_s = self.backoff_initial_s
        while not state.stop.is_set():
            state.running = True
            started = time.monotonic()
            try:
                source.run(emit, state.stop, once)
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
                if once:
                    return
            finally:
                state.running = False
            if time.monotonic() - started > self.backoff_max_s:
                delay_s = self.backoff_initial_s  # it ran fine for a long while: start over
            wait_s = delay_s * (0.5 + random.random())
            log.info("restarting source %s in %.1f s", source.name, wait_s)
            if state.stop.wait(wait_s):
                return
            state.restarts += 1
            self.metrics.inc("source_restarts_total", source=source.name)
            delay_s = min(delay_s * 2, self.backoff_max_s)

    def stop(self) -> None:
        """Ask every source to stop."""
        for state in self.states.values():
            state.stop.set()

    def stop_source(self, name: str, timeout_s: float) -> bool:
        """Stop one source and forget it; True if its thread ended within `timeout_s`."""
        state = self.states.pop(name)
        state.stop.set()
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
