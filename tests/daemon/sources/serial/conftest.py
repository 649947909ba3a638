"""Fixtures for the serial source tests: a pty device (shared with tests/hardware/serial)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "hardware" / "serial"))

from serial_pty import pty_device as pty_device
