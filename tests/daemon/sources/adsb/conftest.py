"""Fixtures for the adsb source tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from adsb_fixtures import FileDecode, decode_file


@pytest.fixture(scope="session")
def modes1_decode() -> FileDecode:
    """The reference decode of recordings/adsb/modes1.bin (computed once)."""
    return decode_file(Path(__file__).resolve().parents[4] / "recordings/adsb/modes1.bin")


@pytest.fixture
def modes1_path(shared_data: Path) -> Path:
    return shared_data / "adsb" / "modes1.bin"
