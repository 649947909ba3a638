"""Network feeds of an existing receiver (dump1090, readsb): Beast, raw hex, SBS.

One TCP client loop for all three::

    connect ──► recv ──► parser (beast / rawhex / sbs) ──► tracker ──► Emit
       ▲          │ server closed, or silent for timeout_s
       └─ backoff ┘ (0.5 s doubling to backoff_max_s; reset once data flowed)

With ``--once`` the pass ends when the server closes the connection, and a failed
connect fails the pass. Beast and raw frames go through check_frame (repair off) and
the same AircraftTable as the IQ input; SBS lines carry decoded positions.

Message times: Beast and ``@`` raw lines carry a 12 MHz receiver timestamp. It is
anchored to the host clock at the first frame of a connection and followed from
there, so the spacing of messages is the receiver's, not the network's; it is
re-anchored when it jumps back or drifts more than `max_drift_s` from the host
clock. Frames without a timestamp (``*`` lines, Beast zero) take the host clock.
SBS times come from the line (`time_zone` "utc" or "local") or the host clock
("receive", the default: dump1090 writes local time without saying which zone).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon.config import Field, between, non_empty, one_of
from daemon.pipeline import Emit
from daemon.sources.adsb.tracker import ModeSTracker, SbsTracker, source_publisher
from daemon.sources.base import Source, SourceContext
from hardware.backoff import Backoff
from hardware.modes.beast import BEAST_CLOCK_HZ, BeastParser
from hardware.modes.rawhex import RawHexParser
from hardware.modes.sbs import SbsError, parse_sbs_line

__all__ = ["BeastFeed", "FeedError", "FeedSource", "RawFeed", "SbsFeed", "TimestampClock",
           "feed_fields"]

_BACKOFF_INITIAL_S = 0.5
_RECV_BYTES = 65_536
_POLL_S = 0.25


class FeedError(ConnectionError):
    """A feed cannot be reached (raised only with --once; otherwise it is retried)."""


def feed_fields(default_port: int) -> dict[str, Field]:
    """The connection keys of a feed type (the tracker keys come from common_fields)."""
    return {
        "host": Field((str,), default="127.0.0.1", check=non_empty),
        "port": Field((int,), default=default_port, check=between(1, 65535)),
        "timeout_s": Field((float,), default=60.0, check=between(0.1, 3600),
                           doc="reconnect when the server sends nothing for this long"),
    }


def time_zone_field() -> Field:
    """The `time_zone` key of the sbs type."""
    return Field((str,), default="receive", check=one_of("receive", "utc", "local"),
                 doc="how to read SBS date/time fields")


class TimestampClock:
    """12 MHz receiver timestamps -> epoch seconds, anchored to the host clock."""

    def __init__(self, max_drift_s: float = 2.0) -> None:
        self.max_drift_s = max_drift_s
        self._anchor: tuple[int, float] | None = None
        self.reanchors = 0

    def reset(self) -> None:
        """Forget the anchor (a new connection may have a new clock origin)."""
        self._anchor = None

    def time_s(self, timestamp_12mhz: int | None, host_now_s: float) -> float:
        """The epoch time of a frame with this timestamp received at `host_now_s`."""
        if not timestamp_12mhz:
            return host_now_s
        anchor = self._anchor
        if anchor is not None:
            t_s = anchor[1] + (timestamp_12mhz - anchor[0]) / BEAST_CLOCK_HZ
            if timestamp_12mhz >= anchor[0] and abs(t_s - host_now_s) <= self.max_drift_s:
                return t_s
            self.reanchors += 1
        self._anchor = (timestamp_12mhz, host_now_s)
        return host_now_s


class FeedSource(Source):
    """The TCP client loop; subclasses turn received bytes into tracker updates."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name, cfg, ctx)
        self.clock = clock
        self.publisher = source_publisher(name, cfg, ctx.station)
        self.max_range_m = float(cfg["max_range_km"]) * 1000.0

    @property
    def address(self) -> str:
        return f"{self.cfg['host']}:{self.cfg['port']}"

    def connection_started(self) -> None:
        """Called after each connect (reset parsers and clocks)."""

    def handle(self, data: bytes) -> None:
        """Process bytes received from the server."""
        raise NotImplementedError

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Read the feed until `stop`; with `once`, until the server closes it."""
        self.publisher.emit = emit
        metrics, name = self.ctx.metrics, self.name
        backoff = Backoff(_BACKOFF_INITIAL_S, float(self.cfg["backoff_max_s"]))
        failing = False
        while not stop.is_set():
            got_data = False
            try:
                sock = socket.create_connection(
                    (str(self.cfg["host"]), int(self.cfg["port"])),
                    timeout=min(10.0, float(self.cfg["timeout_s"])),
                )
            except OSError as exc:
                metrics.inc("adsb_input_errors_total", source=name)
                reason = f"cannot connect to {self.address}: {exc.strerror or exc}"
                if once:
                    raise FeedError(reason) from None
                (self.log.warning if failing else self.log.error)("%s: %s", name, reason)
                failing = True
            else:
                if failing:
                    self.log.info("%s: connected to %s", name, self.address)
                failing = False
                metrics.set("adsb_input_up", 1, source=name)
                try:
                    got_data = self._read(sock, stop)
                finally:
                    metrics.set("adsb_input_up", 0, source=name)
                    sock.close()
                if once or stop.is_set():
                    return
                self.log.warning("%s: %s closed or went silent; reconnecting", name,
                                 self.address)
            if got_data:
                backoff.reset()
            if stop.wait(backoff.next_wait_s()):
                return

    def _read(self, sock: socket.socket, stop: threading.Event) -> bool:
        """Read until the server closes, goes silent, or `stop`; True if data came."""
        self.connection_started()
        sock.settimeout(_POLL_S)
        silent_s = 0.0
        got = False
        while not stop.is_set():
            try:
                data = sock.recv(_RECV_BYTES)
            except TimeoutError:
                silent_s += _POLL_S
                if silent_s >= float(self.cfg["timeout_s"]):
                    return got
                continue
            except OSError as exc:
                self.log.warning("%s: %s: %s", self.name, self.address, exc)
                return got
            if not data:
                return got
            silent_s = 0.0
            got = True
            self.ctx.metrics.inc("adsb_bytes_total", len(data), source=self.name)
            self.handle(data)
        return got


class _ModeSFeed(FeedSource):
    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name, cfg, ctx, clock)
        self.tracker = ModeSTracker(name, self.publisher, ctx.metrics,
                                    max_range_m=self.max_range_m)
        self.timestamps = TimestampClock()

    def _frame(self, msg: bytes, timestamp_12mhz: int | None, rssi_db: float | None,
               now_s: float) -> None:
        if len(msg) not in (7, 14):
            self.ctx.metrics.inc("adsb_mode_ac_total", source=self.name)
            return
        t_s = self.timestamps.time_s(timestamp_12mhz, now_s)
        self.tracker.handle_frame(msg, t_s, rssi_db, timestamp_12mhz or None)


class BeastFeed(_ModeSFeed):
    """`type = "beast"`: Beast binary frames (dump1090 --net-bo-port, 30005)."""

    def connection_started(self) -> None:
        self.parser = BeastParser()
        self.timestamps.reset()

    def handle(self, data: bytes) -> None:
        now_s = self.clock()
        before = self.parser.resyncs
        for frame in self.parser.feed(data):
            self._frame(frame.msg, frame.timestamp_12mhz, frame.signal_dbfs, now_s)
        if self.parser.resyncs > before:
            self.count_bad("beast_resync", f"{self.parser.resyncs - before} frames cut short")


class RawFeed(_ModeSFeed):
    """`type = "raw"`: raw hex lines (dump1090 --net-ro-port, 30002)."""

    def connection_started(self) -> None:
        self.parser = RawHexParser()
        self.timestamps.reset()

    def handle(self, data: bytes) -> None:
        now_s = self.clock()
        errors_before = sum(self.parser.errors.values())
        for frame in self.parser.feed(data):
            self._frame(frame.msg, frame.timestamp_12mhz, None, now_s)
        bad = sum(self.parser.errors.values()) - errors_before
        if bad:
            self.count_bad("raw_line", f"{bad} malformed lines")


class SbsFeed(FeedSource):
    """`type = "sbs"`: BaseStation CSV lines (dump1090 --net-sbs-port, 30003)."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name, cfg, ctx, clock)
        self.tracker = SbsTracker(name, self.publisher, ctx.metrics,
                                  max_range_m=self.max_range_m)
        mode = str(cfg["time_zone"])
        self.use_line_time = mode != "receive"
        self.tz = datetime.now().astimezone().tzinfo if mode == "local" else None
        self._pending = b""

    def connection_started(self) -> None:
        self._pending = b""

    def handle(self, data: bytes) -> None:
        from datetime import UTC

        now_s = self.clock()
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()[-4096:]
        for raw in lines:
            try:
                msg = parse_sbs_line(raw.decode("ascii", "replace"), self.tz or UTC)
            except SbsError as exc:
                self.count_bad(f"sbs_{exc.field}", str(exc))
                continue
            if msg is None:
                continue
            t_s = msg.t_ms / 1000.0 if self.use_line_time and msg.t_ms is not None else now_s
            self.tracker.handle(msg, t_s)
