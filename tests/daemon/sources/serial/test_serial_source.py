"""The serial source over a pty with a recording emit: location, bad input, flood control."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from serial_pty import PtyDevice, wait_for

from daemon.config import ConfigErrors, parse_config
from daemon.event import Event
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station
from daemon.sources.serial import SerialSource
from daemon.sources.serial.gate import ReadingGate
from daemon.sources.serial.sequence import SequenceFloor
from hardware.serial import append_checksum

STATION = Station("st", 52.0, 4.0, 10.0)
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
GGA_LAT = 48 + 7.038 / 60


def serial_cfg(port: Path, **overrides: Any) -> dict[str, Any]:
    """A validated config table for source `bench` (defaults filled in by the loader)."""
    text = (f'[station]\nid = "st"\nlat = 52.0\nlon = 4.0\n'
            f'[sources.bench]\ntype = "serial"\nport = "{port}"\nsettle_s = 0.1\n'
            f'read_timeout_s = 0.05\nreconnect_initial_s = 0.02\n')
    cfg = parse_config(text).sources["bench"]
    cfg.update(overrides)
    return cfg


@dataclass
class Emitted:
    events: list[Event] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    memos: list[tuple[str, str] | None] = field(default_factory=list)

    def __call__(self, event: Event, *, seq: int | None = None,
                 memo: tuple[str, str] | None = None, producer: str | None = None) -> None:
        assert seq is not None
        self.events.append(event)
        self.seqs.append(seq)
        self.memos.append(memo)


@dataclass
class Harness:
    source: SerialSource
    emitted: Emitted
    metrics: Metrics
    stop: threading.Event
    thread: threading.Thread

    def bad(self, reason: str) -> float:
        return self.metrics.get("bad_input_total", source="bench", reason=reason)


@pytest.fixture
def start(tmp_path: Path, pty_device: PtyDevice) -> Iterator[Any]:
    harnesses: list[Harness] = []

    def _start(**overrides: Any) -> Harness:
        metrics = Metrics()
        ctx = SourceContext(station=STATION, metrics=metrics, state_dir=tmp_path / "state",
                            config_dir=tmp_path, memo=lambda producer: {})
        source = SerialSource("bench", serial_cfg(pty_device.link, **overrides), ctx)
        emitted, stop = Emitted(), threading.Event()
        thread = threading.Thread(target=source.run, args=(emitted, stop, False), daemon=True)
        thread.start()
        h = Harness(source, emitted, metrics, stop, thread)
        harnesses.append(h)
        assert wait_for(lambda: metrics.get("serial_connected", source="bench") == 1)
        return h

    yield _start
    for h in harnesses:
        h.stop.set()
        h.thread.join(2.0)
        assert not h.thread.is_alive()


def test_readings_are_located_at_a_fresh_fix_and_fall_back_when_it_is_stale(
    start: Any, pty_device: PtyDevice,
) -> None:
    h = start(gps=True, gps_max_age_s=0.3)
    pty_device.write(b"temp=1\n")  # no fix yet: the station
    assert wait_for(lambda: len(h.emitted.events) == 1)
    pty_device.write(f"{GGA}\r\ntemp=2\r\n".encode())
    assert wait_for(lambda: len(h.emitted.events) == 2)
    time.sleep(0.4)
    pty_device.write(b"temp=3\n")
    assert wait_for(lambda: len(h.emitted.events) == 3)
    at_station, at_fix, stale = h.emitted.events
    assert (at_station.lat, at_station.lon, at_station.alt) == (52.0, 4.0, 10.0)
    assert "fix" not in at_station.data
    assert at_fix.lat == pytest.approx(GGA_LAT)
    assert at_fix.alt == 545.4
    assert at_fix.alt_ref == "msl"
    assert at_fix.data["fix"]["quality"] == 1
    assert at_fix.data["fix"]["sats"] == 8
    assert (stale.lat, stale.lon, stale.alt) == (52.0, 4.0, 10.0)
    assert "fix" not in stale.data


def test_bad_input_is_counted_by_reason_and_never_stops_the_source(
    start: Any, pty_device: PtyDevice,
) -> None:
    h = start(gps=True, checksum="xor", max_line_bytes=100)
    good = append_checksum("temp=21.5")
    bad_nmea = GGA[:-2] + "00"
    pty_device.write(b"".join([
        b"temp=1*11\n",                                 # wrong line checksum (is *00)
        b"temp=1\n",                                    # checksum required but missing
        b"\x00\x13garbage\xff\xfe\n",                   # undecodable bytes
        b"x" * 200 + b"\n",                             # longer than max_line_bytes
        bad_nmea.encode() + b"\r\n",                    # NMEA with a bad checksum
        append_checksum("just words").encode() + b"\n",  # not key=value
        b"# a comment from the sketch\n",               # ignored, not counted
        good.encode() + b"\n",
    ]))
    assert wait_for(lambda: len(h.emitted.events) == 1)
    assert h.emitted.events[0].data == {"temp": 21.5}
    assert h.bad("bad_checksum") == 2  # the sensor line and the NMEA sentence
    assert h.bad("missing_checksum") == 1
    assert h.bad("decode_error") == 1
    assert h.bad("overlong_line") == 1
    assert h.bad("bad_token") == 1
    assert h.thread.is_alive()


def test_deadband_and_min_interval_suppress_flooding(start: Any, pty_device: PtyDevice) -> None:
    h = start(deadband={"temp": 0.5}, min_interval_s=0.0)
    for value in ("20.0", "20.2", "20.4", "20.6", "20.7", "19.9"):
        pty_device.write(f"temp={value} hum=40\n".encode())
    assert wait_for(lambda: h.metrics.get("readings_suppressed_total", source="bench") == 3)
    assert [e.data["temp"] for e in h.emitted.events] == [20.0, 20.6, 19.9]


def test_sequence_is_explicit_and_remembered_with_each_event(start: Any,
                                                            pty_device: PtyDevice) -> None:
    h = start()
    pty_device.write(b"a=1\na=2\n")
    assert wait_for(lambda: len(h.emitted.events) == 2)
    assert h.emitted.seqs == [1, 2]
    assert [e.id for e in h.emitted.events] == ["serial:bench:1", "serial:bench:2"]
    assert h.emitted.memos == [("seq", "1"), ("seq", "2")]


def test_once_returns_after_the_first_reading(tmp_path: Path, pty_device: PtyDevice) -> None:
    metrics = Metrics()
    ctx = SourceContext(station=STATION, metrics=metrics, state_dir=tmp_path / "state",
                        config_dir=tmp_path, memo=lambda producer: {"seq": "41"})
    source = SerialSource("bench", serial_cfg(pty_device.link, once_timeout_s=5.0), ctx)
    emitted = Emitted()
    thread = threading.Thread(target=source.run, args=(emitted, threading.Event(), True))
    thread.start()
    assert wait_for(lambda: metrics.get("serial_connected", source="bench") == 1)
    pty_device.write(b"a=1\na=2\n")
    thread.join(3.0)
    assert not thread.is_alive()
    assert [e.id for e in emitted.events] == ["serial:bench:42"]


def test_gate_min_interval_and_heartbeat() -> None:
    gate = ReadingGate({"t": 1.0}, min_interval_s=1.0, max_interval_s=10.0)
    assert gate.admit({"t": 1}, 0.0)
    gate.published({"t": 1}, 0.0)
    assert not gate.admit({"t": 5}, 0.5)      # too soon, however large the change
    assert gate.admit({"t": 5}, 1.0)
    assert not gate.admit({"t": 1.5}, 5.0)    # within the deadband
    assert gate.admit({"t": 1.5}, 10.0)       # heartbeat
    assert gate.admit({}, 5.0)                # the field disappeared


def test_sequence_floor_never_reuses_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "serial" / "bench.seq.json"
    first = SequenceFloor(path, block=100)
    assert [first.next() for _ in range(3)] == [1, 2, 3]
    # Crash: no close(). The next life starts past the whole reserved block.
    second = SequenceFloor(path, block=100)
    assert second.next() == 101
    second.close()  # a clean stop persists the exact last number: no gap
    assert SequenceFloor(path, block=100).next() == 102
    # A larger number remembered in Redis (state dir restored from an old backup) wins.
    assert SequenceFloor(path, remembered=500).next() == 501


def test_sequence_without_any_memory_starts_above_all_earlier_lives(tmp_path: Path) -> None:
    before_us = time.time_ns() // 1000
    # No state file and Redis unreachable: numbers from the clock, never 1 again.
    fresh = SequenceFloor(tmp_path / "none.seq.json", remembered=None)
    assert fresh.next() > before_us
    # With Redis reachable but nothing remembered, a fresh source starts at 1.
    assert SequenceFloor(tmp_path / "other.seq.json", remembered=0).next() == 1


@pytest.mark.parametrize(("line", "key"), [
    ('protocol = "xml"', "sources.bench.protocol"),
    ("baud = 12345", "sources.bench.baud"),
    ('deadband = { temp = "a lot" }', "sources.bench.deadband"),
    ('columns = ["ok", "9bad"]', "sources.bench.columns"),
    ('checksum = "crc"', "sources.bench.checksum"),
    ("bauds = 9600", "sources.bench.bauds"),
])
def test_config_errors_name_the_key(line: str, key: str) -> None:
    text = (f'[station]\nid = "st"\nlat = 52.0\nlon = 4.0\n'
            f'[sources.bench]\ntype = "serial"\nport = "/dev/ttyACM0"\n{line}\n')
    with pytest.raises(ConfigErrors) as err:
        parse_config(text, "geosensord.toml")
    assert [e.key for e in err.value.errors] == [key]
    assert err.value.errors[0].line == 8


def test_readme_sample_config_block_validates_and_documents_every_key() -> None:
    from daemon.sources.serial import FIELDS

    readme = (Path(__file__).resolve().parents[4] / "daemon/sources/serial/README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = parse_config('[station]\nid = "st"\nlat = 52.0\nlon = 4.0\n' + block).sources["bench"]
    assert set(cfg) - {"type"} == set(FIELDS)
    assert cfg["units"]["temp"] == "degC"
    for key in FIELDS:
        assert f"`{key}`" in readme


def test_public_surface_is_deliberate() -> None:
    import daemon.sources.serial as serial_source

    assert sorted(serial_source.__all__) == ["FIELDS", "SerialSource", "build"]
    assert all(hasattr(serial_source, name) for name in serial_source.__all__)
