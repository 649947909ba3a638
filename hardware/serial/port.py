"""Line-oriented serial I/O on pyserial that survives unplug and replug.

`SerialLineReader.lines(stop)` yields decoded text lines from a port, for as
long as `stop` is not set, across any number of disconnects::

    open (exclusive) ──► settle: discard everything for settle_s (an Arduino
      ▲                  resets when the port opens and may print a half line)
      │                          │
      │                          ▼
      │                  sync: drop bytes up to the first LF unless the settle
      │                  ended quiet or on an LF (then we are at a line start)
      │                          │
      │                          ▼
      │                  lines: split on LF, strip CR, decode; a line longer than
      │                  max_line_bytes is dropped (memory stays bounded)
      │                          │ SerialException / OSError / idle too long
      └── backoff (exponential, ±50 % jitter, reset after a line) ◄──┘

pyserial reports an unplugged USB device as ``SerialException("device reports
readiness to read but returned no data …")`` or ``read failed: [Errno 5]``; both
end the connection. Reads block at most `read_timeout_s`, so `stop` is seen
within that time. Counts live in `ReaderStats`; every notable occurrence is
also passed to the optional `report(what, detail)` callback (``ready``,
``open_failed``, ``disconnected``, ``overlong_line``, ``partial_line``,
``decode_error``) so a caller can count them by reason.

`SerialLineWriter` writes lines to a port, reopening it after errors; the
reader's `write_line` writes through the reader's own open connection (a
device that both sends readings and shows status lines).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import serial

from hardware.backoff import Backoff

__all__ = [
    "PortSettings",
    "ReaderStats",
    "SerialLineReader",
    "SerialLineWriter",
    "StopFlag",
    "open_port",
]

Report = Callable[[str, str], None]
Opener = Callable[["PortSettings"], Any]
PORT_ERRORS = (serial.SerialException, OSError)


class StopFlag(Protocol):
    """What `lines` polls to know when to return (a `threading.Event` is one)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


@dataclass(frozen=True)
class PortSettings:
    """How to open and read one port.

    `path` is a device path (prefer ``/dev/serial/by-id/…``, stable across
    replugs) or a pyserial URL (``socket://host:port``, ``rfc2217://…``).
    """

    path: str
    baud: int = 9600
    read_timeout_s: float = 0.5
    write_timeout_s: float = 1.0
    exclusive: bool = True
    settle_s: float = 2.0
    max_line_bytes: int = 512
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    idle_reconnect_s: float = 0.0
    encoding: str = "ascii"


@dataclass
class ReaderStats:
    """Counters of one reader (all since it was created)."""

    opens: int = 0
    open_failures: int = 0
    disconnects: int = 0
    bytes_read: int = 0
    lines: int = 0
    overlong_lines: int = 0
    partial_lines: int = 0
    settle_discarded_bytes: int = 0
    decode_errors: int = 0
    ready: bool = False


def open_port(settings: PortSettings) -> serial.SerialBase:
    """Open `settings.path` with pyserial (exclusive lock, read and write timeouts)."""
    return serial.serial_for_url(
        settings.path,
        baudrate=settings.baud,
        timeout=settings.read_timeout_s,
        write_timeout=settings.write_timeout_s,
        exclusive=settings.exclusive,
    )


class _PortUser:
    """What the reader and the writer share: settings, counters, the open port (under
    `_lock`), how to open it (`opener`, injectable for tests) and the report callback."""

    def __init__(
        self,
        settings: PortSettings,
        report: Report | None = None,
        opener: Opener = open_port,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stats = ReaderStats()
        self._report = report
        self._opener = opener
        self._clock = clock
        self._lock = threading.Lock()
        self._port: Any = None

    def _note(self, what: str, detail: str) -> None:
        if self._report is not None:
            self._report(what, detail)

    def _detach_locked(self) -> Any:
        """Forget the open port (caller holds `_lock`); return it for closing."""
        port, self._port = self._port, None
        self.stats.ready = False
        return port

    @staticmethod
    def _close_quietly(port: Any) -> None:
        if port is not None:
            with contextlib.suppress(*PORT_ERRORS):  # already gone with the device
                port.close()


class SerialLineReader(_PortUser):
    """Reads text lines from one serial port, reconnecting forever (see the module doc)."""

    def lines(self, stop: StopFlag) -> Iterator[str]:
        """Decoded lines (no CR/LF) until `stop` is set; never raises on device errors."""
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s)
        while not stop.is_set():
            try:
                port = self._opener(self.settings)
            except PORT_ERRORS as exc:
                self.stats.open_failures += 1
                self._note("open_failed", str(exc))
                stop.wait(backoff.next_wait_s())
                continue
            with self._lock:
                self._port = port
            self.stats.opens += 1
            lines_before = self.stats.lines
            try:
                yield from self._read(port, stop)
            except PORT_ERRORS as exc:
                self.stats.disconnects += 1
                self._note("disconnected", str(exc))
            finally:
                self._close()
            if self.stats.lines > lines_before:
                backoff.reset()
            if not stop.is_set():
                stop.wait(backoff.next_wait_s())

    def _close(self) -> None:
        with self._lock:
            port = self._detach_locked()
        self._close_quietly(port)

    def _read(self, port: Any, stop: StopFlag) -> Iterator[str]:
        s = self.settings
        opened_s = self._clock()
        settle_until_s = opened_s + s.settle_s
        last_rx_s = opened_s
        settling = True
        settle_bytes = 0
        synced = False  # True once we know the next byte starts a line
        dropping = False  # inside an overlong line: drop up to the next LF
        partial = 0
        buf = bytearray()
        while not stop.is_set():
            chunk: bytes = port.read(1)
            if chunk:
                waiting = port.in_waiting
                if waiting:
                    chunk += port.read(waiting)
            now_s = self._clock()
            if settling and now_s >= settle_until_s:
                settling = False
                # Quiet for the whole settle time, or it ended on LF: at a line start.
                synced = synced or (settle_bytes == 0 and s.settle_s > 0)
                self.stats.ready = True
                self._note("ready", s.path)
            if not chunk:
                if s.idle_reconnect_s > 0 and now_s - last_rx_s > s.idle_reconnect_s:
                    raise serial.SerialException(
                        f"no data for {s.idle_reconnect_s:g} s; reopening the port")
                continue
            last_rx_s = now_s
            self.stats.bytes_read += len(chunk)
            if settling:
                settle_bytes += len(chunk)
                self.stats.settle_discarded_bytes += len(chunk)
                synced = chunk.endswith(b"\n")
                continue
            start = 0
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    rest = len(chunk) - start
                    if dropping:
                        pass
                    elif not synced:
                        partial += rest
                    else:
                        buf += chunk[start:]
                        if len(buf) > s.max_line_bytes:
                            self._overlong(len(buf))
                            buf.clear()
                            dropping = True
                    break
                piece = chunk[start:nl]
                start = nl + 1
                if dropping:
                    dropping = False
                    continue
                if not synced:
                    synced = True
                    if partial + len(piece):
                        self.stats.partial_lines += 1
                        self._note("partial_line",
                                   f"{partial + len(piece)} bytes before the first LF after open")
                    partial = 0
                    continue
                buf += piece
                if len(buf) > s.max_line_bytes:
                    self._overlong(len(buf))
                    buf.clear()
                    continue
                raw = bytes(buf).rstrip(b"\r")
                buf.clear()
                try:
                    text = raw.decode(s.encoding)
                except UnicodeDecodeError as exc:
                    self.stats.decode_errors += 1
                    self._note("decode_error", f"{exc.reason} at byte {exc.start}: {raw[:40]!r}")
                    continue
                self.stats.lines += 1
                yield text

    def _overlong(self, n_bytes: int) -> None:
        self.stats.overlong_lines += 1
        self._note("overlong_line",
                   f"no LF within {self.settings.max_line_bytes} bytes ({n_bytes} seen); dropped")

    def write_line(self, text: str) -> bool:
        """Write `text` + LF through the open connection; False when not connected."""
        data = (text + "\n").encode(self.settings.encoding, "replace")
        with self._lock:
            port = self._port
            if port is None or not self.stats.ready:
                return False
            try:
                port.write(data)
            except PORT_ERRORS:
                return False  # the reading side notices the disconnect and reconnects
        return True


class SerialLineWriter(_PortUser):
    """Writes lines to a port it opens on demand and reopens after errors (with backoff)."""

    def __init__(
        self,
        settings: PortSettings,
        report: Report | None = None,
        opener: Opener = open_port,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(settings, report, opener, clock)
        self._retry_at_s = 0.0
        self._backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)

    def write_line(self, text: str) -> bool:
        """Write `text` + LF; False (and a retry later) when the port is not usable."""
        data = (text + "\n").encode(self.settings.encoding, "replace")
        with self._lock:
            if self._port is None:
                now_s = self._clock()
                if now_s < self._retry_at_s:
                    return False
                try:
                    self._port = self._opener(self.settings)
                except PORT_ERRORS as exc:
                    self.stats.open_failures += 1
                    self._note("open_failed", str(exc))
                    self._retry_later(now_s)
                    return False
                self.stats.opens += 1
                self.stats.ready = True
                self._note("ready", self.settings.path)
            try:
                self._port.write(data)
                self._port.flush()
            except PORT_ERRORS as exc:
                self.stats.disconnects += 1
                self._note("disconnected", str(exc))
                self._close_locked()
                self._retry_later(self._clock())
                return False
            self._backoff.reset()
            self.stats.lines += 1
            return True

    def _retry_later(self, now_s: float) -> None:
        self._retry_at_s = now_s + self._backoff.next_wait_s()

    def _close_locked(self) -> None:
        self._close_quietly(self._detach_locked())

    def close(self) -> None:
        """Close the port (a later write reopens it)."""
        with self._lock:
            self._close_locked()
