"""Fixtures for the serial tests: a pty device behind a by-id style symlink."""

from serial_pty import pty_device as pty_device
