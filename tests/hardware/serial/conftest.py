"""Fixtures for the serial tests: a pty device behind a by-id style symlink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serial_pty import PtyDevice


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
