"""The serial source: lines from a device -> parsed readings -> located events.

Per line (after `hardware.serial.SerialLineReader` framed and decoded it)::

    ""  or  "# …"           ignored (blank, or a comment the sketch prints at boot)
    "$…*HH"                 NMEA when gps = true or protocol = "nmea": updates the fix
                            (protocol "nmea": each GGA fix — each RMC fix when the GPS
                            sends no GGA — is itself published as a reading)
    anything else           checksum (per `checksum`), then the kv/csv/json parser

A reading passes the gate (min_interval_s, deadband, max_interval_s), is located
at the latest GPS fix younger than gps_max_age_s (data gets ``fix``) or at the
station, and is emitted as ``sensor.reading`` with id ``serial:<name>:<seq>``.
Malformed lines are counted in ``bad_input_total{reason}`` and skipped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from daemon.event import Event, now_ms
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext
from daemon.sources.serial.gate import ReadingGate
from daemon.sources.serial.sequence import SequenceFloor
from hardware.serial import (
    CsvParser,
    Fix,
    GpsTracker,
    JsonParser,
    KvParser,
    LineError,
    LineParser,
    PortSettings,
    SerialLineReader,
    StopFlag,
    parse_sentence,
    verify_checksum,
)

KIND = "sensor.reading"


class _StopOrDeadline:
    """`stop`, also set once a deadline passes (for --once runs)."""

    def __init__(self, stop: threading.Event, deadline_s: float) -> None:
        self.stop = stop
        self.deadline_s = deadline_s

    def is_set(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.deadline_s

    def wait(self, timeout: float | None = None) -> bool:
        remaining = max(0.0, self.deadline_s - time.monotonic())
        self.stop.wait(remaining if timeout is None else min(timeout, remaining))
        return self.is_set()


def make_parser(cfg: dict[str, Any]) -> LineParser | None:
    """The line parser for `protocol` (None for "nmea": no sensor lines)."""
    protocol = cfg["protocol"]
    if protocol == "kv":
        return KvParser()
    if protocol == "csv":
        return CsvParser(tuple(cfg["columns"]), cfg["csv_delimiter"])
    if protocol == "json":
        return JsonParser()
    return None


def port_settings(cfg: dict[str, Any]) -> PortSettings:
    """Reader settings from the source's config table."""
    return PortSettings(
        path=str(cfg["port"]),
        baud=int(cfg["baud"]),
        read_timeout_s=float(cfg["read_timeout_s"]),
        exclusive=bool(cfg["exclusive"]),
        settle_s=float(cfg["settle_s"]),
        max_line_bytes=int(cfg["max_line_bytes"]),
        reconnect_initial_s=float(cfg["reconnect_initial_s"]),
        reconnect_max_s=float(cfg["reconnect_max_s"]),
        idle_reconnect_s=float(cfg["idle_reconnect_s"]),
        encoding=str(cfg["encoding"]),
    )


class SerialSource(Source):
    """Readings from one serial device (see the module docstring)."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name, cfg, ctx)
        self.clock = clock
        self.parser = make_parser(cfg)
        self.nmea = cfg["protocol"] == "nmea" or bool(cfg["gps"])
        self.tracker = GpsTracker()
        self.gate = ReadingGate(cfg["deadband"], float(cfg["min_interval_s"]),
                                float(cfg["max_interval_s"]))
        self.units: dict[str, str] = dict(cfg["units"])
        self.sequence: SequenceFloor | None = None
        self.reader: SerialLineReader | None = None
        self._seen_rmc = False
        self._gga_since_rmc = False
        self._rmc_only = False

    # -- lifecycle ------------------------------------------------------------
    def _load_sequence(self) -> SequenceFloor:
        remembered: int | None = None
        try:
            remembered = int(self.ctx.memo(self.producer).get("seq", 0))
        except Exception as exc:  # Redis down at start: the local floor still holds
            self.log.warning("%s: cannot read the remembered sequence (%s); using the "
                             "local state file", self.name, exc)
        path = self.ctx.state_dir / "serial" / f"{self.name}.seq.json"
        return SequenceFloor(path, remembered)

    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Read lines until `stop`; with `once`, until the first published reading
        (or `once_timeout_s`)."""
        if self.sequence is None:
            self.sequence = self._load_sequence()
        reader = self.reader = SerialLineReader(port_settings(self.cfg), report=self._on_port)
        flag: StopFlag = stop
        if once:
            flag = _StopOrDeadline(stop, time.monotonic() + float(self.cfg["once_timeout_s"]))
        published = self.sequence.last
        try:
            for line in reader.lines(flag):
                self.handle_line(line, emit)
                if once and self.sequence.last > published:
                    break
        finally:
            self.sequence.close()
            self.ctx.metrics.set("serial_connected", 0, source=self.name)

    @property
    def line_writer(self) -> SerialLineReader | None:
        """The open connection, for a status display on the same device."""
        return self.reader

    def _on_port(self, what: str, detail: str) -> None:
        m, name = self.ctx.metrics, self.name
        if what == "ready":
            m.set("serial_connected", 1, source=name)
            self.log.info("%s: reading %s", name, detail)
        elif what == "disconnected":
            m.set("serial_connected", 0, source=name)
            m.inc("serial_disconnects_total", source=name)
            self.log.warning("%s: device disconnected (%s); reconnecting", name, detail)
        elif what == "open_failed":
            m.inc("serial_open_failures_total", source=name)
            self.bad_input.warning("open_failed", "%s: cannot open %s: %s", name,
                                   self.cfg["port"], detail)
        elif what == "partial_line":
            # Expected after every open (the Arduino resets): counted, logged quietly.
            m.inc("bad_input_total", source=name, reason=what)
            self.log.debug("%s: %s", name, detail)
        else:
            self.count_bad(what, detail)

    # -- per line -------------------------------------------------------------
    def handle_line(self, line: str, emit: Emit) -> None:
        """Parse one line and publish what it carries; count and skip it when malformed."""
        text = line.strip()
        if not text or text.startswith("#"):
            return
        rx_ms = now_ms()
        now_s = self.clock()
        if self.nmea and text.startswith("$"):
            self._handle_nmea(text, rx_ms, now_s, emit)
            return
        if self.parser is None:
            self.count_bad("not_nmea", repr(text[:60]))
            return
        try:
            mode = self.cfg["checksum"]
            body = text if mode == "none" else verify_checksum(text, required=mode == "xor")
            reading = self.parser.parse(body)
        except LineError as exc:
            self.count_bad(exc.reason, f"{exc}: {text[:60]!r}")
            return
        if reading is not None:
            self._publish(reading, rx_ms, now_s, emit)

    def _handle_nmea(self, text: str, rx_ms: int, now_s: float, emit: Emit) -> None:
        try:
            sentence = parse_sentence(text)
            fix = self.tracker.feed(sentence, rx_ms, now_s)
        except LineError as exc:
            self.count_bad(exc.reason, f"{exc}: {text[:60]!r}")
            return
        if sentence.kind == "GGA":
            self._rmc_only, self._gga_since_rmc = False, True
        elif sentence.kind == "RMC":
            # Two RMCs without a GGA between them: this GPS sends no GGA, so each
            # RMC is a fix epoch of its own. Otherwise the GGA publishes the epoch.
            self._rmc_only = self._seen_rmc and not self._gga_since_rmc
            self._seen_rmc, self._gga_since_rmc = True, False
        if self.parser is None and fix is not None and (
                sentence.kind == "GGA" or (sentence.kind == "RMC" and self._rmc_only)):
            self._publish({}, rx_ms, now_s, emit, t_ms=fix.t_ms)

    def _publish(self, reading: dict[str, Any], rx_ms: int, now_s: float, emit: Emit,
                 t_ms: int | None = None) -> None:
        if not self.gate.admit(reading, now_s):
            self.ctx.metrics.inc("readings_suppressed_total", source=self.name)
            return
        data: dict[str, Any] = dict(reading)
        units = {k: u for k, u in self.units.items() if k in reading}
        if units:
            data["units"] = units
        fix: Fix | None = None
        if self.nmea:
            fix = self.tracker.current(now_s, float(self.cfg["gps_max_age_s"]))
        if fix is not None:
            lat, lon, alt = fix.lat, fix.lon, fix.alt_m
            age_s = self.tracker.age_s(now_s) or 0.0
            data["fix"] = {**fix.to_data(), "age_s": round(age_s, 3)}
        else:
            st = self.ctx.station
            lat, lon, alt = st.lat, st.lon, st.alt
        assert self.sequence is not None
        seq = self.sequence.next()
        event = Event(
            id=f"serial:{self.name}:{seq}",
            src=self.name,
            kind=KIND,
            t=t_ms if t_ms is not None else rx_ms,
            rx=rx_ms,
            lat=lat,
            lon=lon,
            alt=alt,
            station=self.ctx.station.id,
            data=data,
            alt_ref="msl",
        )
        emit(event, seq=seq, memo=("seq", str(seq)))
        self.gate.published(reading, now_s)
