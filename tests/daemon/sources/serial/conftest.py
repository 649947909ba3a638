"""Fixtures for the serial source tests: a pty device (shared with tests/hardware/serial)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hardware" / "serial"))

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
