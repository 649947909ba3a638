"""The status display writes well-formed status lines to a serial device (a pty)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from serial_pty import PtyDevice, wait_for

from daemon.config import parse_config
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station
from daemon.sources.serial import SerialSource
from daemon.status_display import (
    FIELDS,
    StatusSnapshot,
    build_status_display,
    status_rows,
    validate,
)
from hardware.serial import parse_status


class Snapshots:
    """Snapshots with counts advancing by a fixed number per call, 2 s apart."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> StatusSnapshot:
        self.n += 1
        return StatusSnapshot({"bench": 3.0 * self.n, "adsb": 240.0 * self.n},
                              redis_ok=self.n != 3, spool_depth=self.n - 1,
                              taken_s=2.0 * self.n)


def display_cfg(**values: Any) -> dict[str, Any]:
    """A `[status_display]` table checked against FIELDS, defaults filled in."""
    cfg = {key: spec.default for key, spec in FIELDS.items()}
    for key, value in values.items():
        spec = FIELDS[key]
        assert isinstance(value, spec.types)
        assert spec.check is None or spec.check(value) is None
        cfg[key] = value
    return cfg


def test_own_port_receives_one_well_formed_line_per_tick(pty_device: PtyDevice) -> None:
    snapshots = Snapshots()
    display = build_status_display(display_cfg(port=str(pty_device.link), interval_s=0.2),
                                   snapshots)
    assert display is not None
    try:
        lines = [display.tick() for _ in range(3)]
        received = pty_device.read_lines(3)
    finally:
        display.stop()
    assert [r.decode() for r in received] == lines
    rows = [parse_status(r.decode()) for r in received]
    assert rows[0] == ["redis up", "spool 0", "bench -", "adsb -"]
    assert rows[1] == ["redis up", "spool 1", "bench 1.5/s", "adsb 120/s"]
    assert rows[2][0] == "redis DOWN"
    assert display.metrics.get("status_lines_total") == 3


def test_background_thread_writes_every_interval(pty_device: PtyDevice) -> None:
    display = build_status_display(display_cfg(port=str(pty_device.link), interval_s=0.2),
                                   Snapshots())
    assert display is not None
    display.start()
    try:
        received = pty_device.read_lines(3, timeout_s=5.0)
    finally:
        display.stop()
    assert len(received) == 3
    assert all(parse_status(r.decode())[0].startswith("redis") for r in received)


def test_writer_reopens_the_port_after_a_replug(pty_device: PtyDevice) -> None:
    display = build_status_display(display_cfg(port=str(pty_device.link)), Snapshots())
    assert display is not None
    try:
        display.tick()
        assert pty_device.read_lines(1)
        pty_device.unplug()
        display.tick()  # fails: the device is gone
        pty_device.plug()

        def written_again() -> bool:
            display.tick()  # refused quickly while the writer backs off
            return display.metrics.get("status_lines_total") == 2

        assert wait_for(written_again, timeout_s=5.0)
        assert parse_status(pty_device.read_lines(1)[0].decode())[0].startswith("redis ")
    finally:
        display.stop()
    assert display.metrics.get("status_write_failures_total") >= 1


def test_status_goes_through_the_serial_source_port(tmp_path: Path,
                                                   pty_device: PtyDevice) -> None:
    text = (f'[station]\nid = "st"\nlat = 52.0\nlon = 4.0\n[sources.bench]\ntype = "serial"\n'
            f'port = "{pty_device.link}"\nsettle_s = 0.1\nread_timeout_s = 0.05\n')
    metrics = Metrics()
    ctx = SourceContext(station=Station("st", 52.0, 4.0), metrics=metrics,
                        state_dir=tmp_path / "state", config_dir=tmp_path, memo=lambda p: {})
    source = SerialSource("bench", parse_config(text).sources["bench"], ctx)
    display = build_status_display(display_cfg(source="bench"), Snapshots(), {"bench": source})
    assert display is not None
    assert display.tick() and display.metrics.get("status_write_failures_total") == 1
    stop = threading.Event()
    events: list[Any] = []
    thread = threading.Thread(target=source.run,
                              args=(lambda e, **kw: events.append(e), stop, False))
    thread.start()
    try:
        assert wait_for(lambda: metrics.get("serial_connected", source="bench") == 1)
        line = display.tick()
        assert pty_device.read_lines(1) == [line.encode()]
        pty_device.write(b"temp=1\n")  # and the same port still delivers readings
        assert wait_for(lambda: len(events) == 1)
    finally:
        stop.set()
        thread.join(2.0)


def test_both_or_a_non_serial_source_are_config_errors() -> None:
    with pytest.raises(ValueError, match="either port or source"):
        build_status_display(display_cfg(port="/dev/null", source="x"), Snapshots())
    with pytest.raises(ValueError, match=r"status_display\.source"):
        build_status_display(display_cfg(source="nope"), Snapshots(), {})
    assert build_status_display(display_cfg(), Snapshots()) is None


def test_load_time_validation_names_the_key_and_the_serial_sources() -> None:
    sources = {"bench": {"type": "serial"}, "quakes": {"type": "usgs"}}
    assert validate(display_cfg(source="bench"), sources) == []
    assert validate(display_cfg(port="/dev/ttyACM0"), sources) == []
    assert validate(display_cfg(source="quakes"), sources) == [
        ("status_display.source", "'quakes' is not a configured serial source "
                                  "(serial sources: bench)")]
    assert validate(display_cfg(port="/dev/x", source="bench"), sources)[0][0] == \
        "status_display.source"


def test_rows_fit_the_display() -> None:
    snap = StatusSnapshot({"a-very-long-source-name-indeed": 1e6}, True, 0, 1.0)
    later = StatusSnapshot({"a-very-long-source-name-indeed": 2e6}, True, 0, 2.0)
    rows = status_rows(snap, later)
    assert rows[2].endswith(" 1000000/s")
    assert all(len(r) <= 21 for r in rows)
