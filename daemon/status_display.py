"""A status line for a small display on a serial device (the Arduino + OLED idea).

Every `interval_s` the daemon writes one line to the device, in the format of
`hardware.serial.status` (the sketch in ``hardware/arduino/geosensor`` shows
each ``|``-separated row on one line of an SSD1306)::

    >redis up|spool 0|bench 0.5/s|adsb 118/s*14\\n

Rows: Redis state, spool depth (batches waiting on disk), then events/s per
source over the last interval. The line goes either to its own port or
through the open connection of a configured serial source (one Arduino that
sends readings and shows the status).

Config (a top-level table; absent or both keys empty = no display)::

    [status_display]
    port = "/dev/serial/by-id/usb-…-if00"   # its own port, or:
    source = "bench"                        # write through this serial source's port
    baud = 115200
    interval_s = 5.0
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from daemon.config import Field, between
from daemon.metrics import Metrics
from hardware.serial import PortSettings, SerialLineWriter, format_status

if TYPE_CHECKING:
    from daemon.runtime import Runtime
    from daemon.sources.base import Source

__all__ = [
    "FIELDS",
    "LineWriter",
    "StatusDisplay",
    "StatusSnapshot",
    "build_status_display",
    "runtime_snapshot",
    "status_rows",
    "validate",
]

log = logging.getLogger(__name__)

FIELDS: dict[str, Field] = {
    "port": Field((str,), default="", doc="the display's own port ('' = none)"),
    "source": Field((str,), default="", doc="a serial source to write through ('' = none)"),
    "baud": Field((int,), default=115200, check=between(300, 4_000_000)),
    "interval_s": Field((float,), default=5.0, check=between(0.2, 3600)),
    "exclusive": Field((bool,), default=True),
}


class LineWriter(Protocol):
    """Anything that writes one text line and says whether it could."""

    def write_line(self, text: str) -> bool: ...


@dataclass(frozen=True)
class StatusSnapshot:
    """What the display shows, taken at monotonic time `taken_s`.

    `events_by_source` are cumulative event counts (the rates are differences).
    """

    events_by_source: Mapping[str, float]
    redis_ok: bool
    spool_depth: int
    taken_s: float


def _rate(per_s: float) -> str:
    return f"{per_s:.1f}/s" if per_s < 10 else f"{per_s:.0f}/s"


def status_rows(previous: StatusSnapshot | None, current: StatusSnapshot) -> list[str]:
    """The display rows for `current`; rates over the time since `previous`."""
    rows = [f"redis {'up' if current.redis_ok else 'DOWN'}", f"spool {current.spool_depth}"]
    for name, total in current.events_by_source.items():
        if previous is None or current.taken_s <= previous.taken_s:
            rate = "-"
        else:
            before = previous.events_by_source.get(name, total)
            rate = _rate(max(0.0, total - before) / (current.taken_s - previous.taken_s))
        rows.append(f"{name[:21 - len(rate) - 1]} {rate}")
    return rows


def runtime_snapshot(rt: Runtime, source_names: Sequence[str]) -> Callable[[], StatusSnapshot]:
    """A snapshot function over a running daemon's metrics, pipeline and spool."""

    def take() -> StatusSnapshot:
        spool = rt.pipeline.spool
        return StatusSnapshot(
            events_by_source={n: rt.metrics.get("events_in_total", source=n)
                              for n in source_names},
            redis_ok=rt.pipeline.primary_ok,
            spool_depth=spool.depth() if spool is not None else 0,
            taken_s=time.monotonic(),
        )

    return take


class StatusDisplay:
    """Writes a status line every `interval_s` from its own thread."""

    def __init__(
        self,
        writer: LineWriter,
        snapshot: Callable[[], StatusSnapshot],
        interval_s: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.writer = writer
        self.snapshot = snapshot
        self.interval_s = interval_s
        self.metrics = metrics or Metrics()
        self._previous: StatusSnapshot | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> str:
        """Take a snapshot and write one status line now; return the line."""
        current = self.snapshot()
        line = format_status(status_rows(self._previous, current))
        self._previous = current
        if self.writer.write_line(line):
            self.metrics.inc("status_lines_total")
        else:
            self.metrics.inc("status_write_failures_total")
        return line

    def start(self) -> None:
        """Write status lines from a background thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="status-display", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the display must never take the daemon down
                log.exception("status display")

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop the thread (and close the display's own port, if it has one)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        close = getattr(self.writer, "close", None)
        if callable(close):
            close()


class _ThroughSource:
    """Writes through a serial source's current connection (none while it reconnects)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def write_line(self, text: str) -> bool:
        writer: LineWriter | None = self.source.line_writer
        return writer is not None and writer.write_line(text)


def validate(cfg: Mapping[str, Any],
             sources: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Cross-key problems of a `[status_display]` table as (dotted key, message).

    `sources` are the validated ``[sources.*]`` tables: a `source` must name one of
    type "serial". Meant for load-time validation (check-config) as well as `build`.
    """
    port, source_name = str(cfg.get("port", "")), str(cfg.get("source", ""))
    if port and source_name:
        return [("status_display.source", "set either port or source, not both")]
    if source_name:
        src = sources.get(source_name)
        if src is None or src.get("type") != "serial":
            serial = sorted(n for n, c in sources.items() if c.get("type") == "serial")
            hint = f" (serial sources: {', '.join(serial)})" if serial else ""
            return [("status_display.source",
                     f"{source_name!r} is not a configured serial source{hint}")]
    return []


def build_status_display(
    cfg: Mapping[str, Any],
    snapshot: Callable[[], StatusSnapshot],
    sources: Mapping[str, Source] | None = None,
    metrics: Metrics | None = None,
) -> StatusDisplay | None:
    """The display configured by a validated `[status_display]` table (None if off).

    Raises ValueError when both or a wrong `source` is given (name the key).
    """
    port, source_name = str(cfg.get("port", "")), str(cfg.get("source", ""))
    if not port and not source_name:
        return None
    if port and source_name:
        raise ValueError("status_display.source: set either port or source, not both")
    writer: LineWriter
    if source_name:
        source = (sources or {}).get(source_name)
        if source is None or not hasattr(source, "line_writer"):
            raise ValueError(f"status_display.source: {source_name!r} is not a serial source")
        writer = _ThroughSource(source)
    else:
        writer = SerialLineWriter(PortSettings(
            path=port, baud=int(cfg["baud"]), exclusive=bool(cfg["exclusive"]),
            reconnect_initial_s=1.0, reconnect_max_s=60.0,
        ))
    return StatusDisplay(writer, snapshot, float(cfg["interval_s"]), metrics)
