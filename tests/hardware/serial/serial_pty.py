"""A pseudo-terminal standing in for a USB serial device, for tests.

The code under test opens `link` (a symlink, like ``/dev/serial/by-id/…``) which
points at the pty's slave side; the test plays the device on the master side.
`unplug()` closes the pty (the reader sees EIO / "readiness to read but returned
no data"), `plug()` creates a new one and re-points the symlink at it. The
`pty_device` fixture (used by the hardware and the daemon serial tests through their
conftest.py) gives each test one.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


class PtyDevice:
    """One simulated serial device behind a stable symlink."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None
        self.plug()

    def plug(self) -> None:
        """Create a fresh pty and point the symlink at its slave."""
        master, slave = os.openpty()
        # Raw from the start: no echo back into the master, no CR/LF translation.
        tty.setraw(slave)
        tty.setraw(master)
        self.master, self.slave = master, slave
        tmp = self.link.with_name(self.link.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave))
        os.replace(tmp, self.link)

    def unplug(self) -> None:
        """Close both sides: the device is gone (the symlink now dangles)."""
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> None:
        """Send bytes as the device."""
        assert self.master is not None
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def read_lines(self, count: int, timeout_s: float = 5.0) -> list[bytes]:
        """Lines the code under test wrote to the device (up to `count`)."""
        assert self.master is not None
        buf = b""
        deadline = time.monotonic() + timeout_s
        while buf.count(b"\n") < count and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                buf += os.read(self.master, 4096)
        return buf.split(b"\n")[:count] if buf.count(b"\n") >= count else buf.split(b"\n")[:-1]

    def close(self) -> None:
        """Release the pty and the symlink."""
        self.unplug()
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll `predicate` until it holds or `timeout_s` passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def pty_device(tmp_path: Path) -> Iterator[PtyDevice]:
    """A simulated USB serial device at ``tmp_path/by-id/usb-Arduino…-if00``."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    device = PtyDevice(by_id / "usb-Arduino_Uno_85736323430351F0E1A1-if00")
    try:
        yield device
    finally:
        device.close()
