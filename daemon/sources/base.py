"""The lifecycle every source shares: start -> run until stopped (or one pass) -> stop."""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from daemon.metrics import Metrics
from daemon.pipeline import Emit
from daemon.ratelog import RateLimitedLog
from sinks.base import SinkError

_T = TypeVar("_T")

#: Retry delays while the memo cannot be read: 1 s doubling up to this.
MEMO_RETRY_MAX_S = 60.0
#: Attempts of a ``--once`` run before it gives up (1 + 2 + 4 s of waiting).
MEMO_ATTEMPTS_ONCE = 4


@dataclass(frozen=True)
class Station:
    """The receiving station: its id and location (WGS84 degrees, metres MSL)."""

    id: str
    lat: float
    lon: float
    alt: float = 0.0


@dataclass
class SourceContext:
    """What the daemon gives every source."""

    station: Station
    metrics: Metrics
    state_dir: Path
    config_dir: Path
    memo: Callable[[str], dict[str, str]]
    extra: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: str) -> Path:
        """A configured path; relative paths are taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.config_dir / p


class Source(ABC):
    """A configured source instance. Subclasses implement `run`."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext) -> None:
        self.name = name
        self.cfg = cfg
        self.ctx = ctx
        self.log = logging.getLogger(f"geosensord.source.{name}")
        self.bad_input = RateLimitedLog(self.log)

    @property
    def producer(self) -> str:
        """The key under which this source's sequence and memo are kept."""
        return f"{self.ctx.station.id}:{self.name}"

    @abstractmethod
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Publish events until `stop` is set; with `once`, do one pass and return."""

    def load_memo(self, load: Callable[[], _T], wait: Callable[[float], bool], once: bool,
                  what: str) -> _T | None:
        """`load()` (a read of memo hashes in Redis), retried while Redis is unreachable.

        Publishing without the memo would publish again what was published before a
        restart, so the source waits for Redis (1 s doubling to MEMO_RETRY_MAX_S,
        logging that it cannot load `what`); None when `wait(seconds)` reports a
        stop. With `once` it raises the SinkError after MEMO_ATTEMPTS_ONCE failures.
        """
        attempts = MEMO_ATTEMPTS_ONCE if once else None
        delay_s = 1.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return load()
            except SinkError as exc:
                if attempts is not None and attempt >= attempts:
                    raise
                self.log.warning("%s: cannot load %s (%s); retry in %.0f s",
                                 self.name, what, exc, delay_s)
            if wait(delay_s):
                return None
            delay_s = min(delay_s * 2, MEMO_RETRY_MAX_S)

    def count_bad(self, reason: str, detail: str) -> None:
        """Count a malformed input item by reason and log it at a rate-limited level."""
        self.ctx.metrics.inc("bad_input_total", source=self.name, reason=reason)
        self.bad_input.warning(reason, "%s: skipped %s: %s", self.name, reason, detail)
