"""SerialLineReader over real pseudo-terminals: framing, settle, limits, replug."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from serial_pty import PtyDevice, wait_for

from hardware.serial import PortSettings, SerialLineReader


@dataclass
class Running:
    """A reader consumed in a background thread, collecting lines and reports."""

    reader: SerialLineReader
    stop: threading.Event
    lines: list[str] = field(default_factory=list)
    reports: list[tuple[str, str]] = field(default_factory=list)
    thread: threading.Thread | None = None

    def reasons(self) -> list[str]:
        return [what for what, _ in self.reports]


def start_reader(path: str, **overrides: float | int | str) -> Running:
    settings = PortSettings(path=path, baud=115200, read_timeout_s=0.05, settle_s=0.0,
                            reconnect_initial_s=0.02, reconnect_max_s=0.1)
    settings = PortSettings(**{**settings.__dict__, **overrides})
    run = Running(reader=SerialLineReader(settings), stop=threading.Event())
    run.reader._report = lambda what, detail: run.reports.append((what, detail))

    def consume() -> None:
        for line in run.reader.lines(run.stop):
            run.lines.append(line)

    run.thread = threading.Thread(target=consume, daemon=True)
    run.thread.start()
    return run


@pytest.fixture
def running() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for run in started:
        run.stop.set()
        assert run.thread is not None
        run.thread.join(2.0)


def test_lines_are_split_on_lf_and_cr_is_stripped(pty_device: PtyDevice,
                                                  running: list[Running]) -> None:
    run = start_reader(str(pty_device.link))
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    pty_device.write(b"\n")  # the sync LF: without a settle time the first line is unknown
    pty_device.write(b"temp=21.5 hum=40\r\na0=5")
    pty_device.write(b"12\n\n")
    assert wait_for(lambda: len(run.lines) == 3)
    assert run.lines == ["temp=21.5 hum=40", "a0=512", ""]


def test_partial_first_line_after_open_is_discarded(pty_device: PtyDevice,
                                                    running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), settle_s=0.3)
    running.append(run)
    assert wait_for(lambda: run.reader.stats.opens == 1)
    # The device is mid-line while the port opens (and keeps talking through the settle).
    pty_device.write(b"mp=21.5 hu")
    time.sleep(0.4)
    pty_device.write(b"m=40\ntemp=21.6 hum=41\n")
    assert wait_for(lambda: run.lines == ["temp=21.6 hum=41"])
    assert run.reader.stats.partial_lines == 1
    assert run.reader.stats.settle_discarded_bytes == len(b"mp=21.5 hu")
    assert "partial_line" in run.reasons()


def test_quiet_settle_means_the_first_line_is_complete(pty_device: PtyDevice,
                                                       running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), settle_s=0.1)
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    pty_device.write(b"temp=20\n")
    assert wait_for(lambda: run.lines == ["temp=20"])
    assert run.reader.stats.partial_lines == 0


def test_lines_complete_during_settle_are_discarded(pty_device: PtyDevice,
                                                    running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), settle_s=0.3)
    running.append(run)
    assert wait_for(lambda: run.reader.stats.opens == 1)
    pty_device.write(b"# booting\ngarbage\n")
    assert wait_for(lambda: run.reader.stats.ready, 2.0)
    pty_device.write(b"temp=1\n")
    assert wait_for(lambda: run.lines == ["temp=1"])
    assert run.reader.stats.partial_lines == 0  # settle ended on LF: in sync


def test_overlong_line_is_dropped_and_reading_continues(pty_device: PtyDevice,
                                                        running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), max_line_bytes=64)
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    pty_device.write(b"\n")
    # 100 kB of garbage without a newline, in pieces, then a good line.
    for _ in range(25):
        pty_device.write(b"\xaa" * 4000)
    pty_device.write(b"tail of the garbage\ntemp=3\n")
    assert wait_for(lambda: run.lines == ["temp=3"])
    assert run.reader.stats.overlong_lines == 1
    assert "overlong_line" in run.reasons()


def test_undecodable_line_is_counted_and_skipped(pty_device: PtyDevice,
                                                 running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), encoding="ascii")
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    pty_device.write(b"\ntemp=\xff\xfe\ntemp=4\n")
    assert wait_for(lambda: run.lines == ["temp=4"])
    assert run.reader.stats.decode_errors == 1


def test_replug_at_the_same_path_resumes_reading(pty_device: PtyDevice,
                                                 running: list[Running]) -> None:
    run = start_reader(str(pty_device.link))
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    pty_device.write(b"\ntemp=1\n")
    assert wait_for(lambda: run.lines == ["temp=1"])
    pty_device.unplug()
    assert wait_for(lambda: run.reader.stats.disconnects == 1)
    # Reopen attempts fail while the device is away.
    assert wait_for(lambda: run.reader.stats.open_failures >= 2)
    pty_device.plug()
    assert wait_for(lambda: run.reader.stats.opens == 2 and run.reader.stats.ready)
    pty_device.write(b"\ntemp=2\n")
    assert wait_for(lambda: run.lines == ["temp=1", "temp=2"])
    assert run.reader.stats.disconnects == 1


def test_idle_port_is_reopened(pty_device: PtyDevice, running: list[Running]) -> None:
    run = start_reader(str(pty_device.link), idle_reconnect_s=0.15)
    running.append(run)
    assert wait_for(lambda: run.reader.stats.opens >= 2, 3.0)
    assert run.reader.stats.disconnects >= 1


def test_stop_is_noticed_within_a_second(pty_device: PtyDevice) -> None:
    run = start_reader(str(pty_device.link), read_timeout_s=0.5)
    assert wait_for(lambda: run.reader.stats.ready)
    t0 = time.monotonic()
    run.stop.set()
    assert run.thread is not None
    run.thread.join(2.0)
    assert not run.thread.is_alive()
    assert time.monotonic() - t0 < 1.0


def test_exclusive_open_keeps_a_second_reader_out(pty_device: PtyDevice,
                                                  running: list[Running]) -> None:
    first = start_reader(str(pty_device.link))
    running.append(first)
    assert wait_for(lambda: first.reader.stats.ready)
    second = start_reader(str(pty_device.link))
    running.append(second)
    assert wait_for(lambda: second.reader.stats.open_failures >= 1)
    assert second.reader.stats.opens == 0


def test_write_line_goes_through_the_open_connection(pty_device: PtyDevice,
                                                     running: list[Running]) -> None:
    run = start_reader(str(pty_device.link))
    running.append(run)
    assert wait_for(lambda: run.reader.stats.ready)
    assert run.reader.write_line(">hello*00")
    assert pty_device.read_lines(1) == [b">hello*00"]
