"""Fixtures of the USGS tests: the fake USGS server and the bundled feeds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_http import serving
from usgs_fake_server import FakeUsgsServer


@pytest.fixture
def usgs_http() -> Iterator[FakeUsgsServer]:
    """A FakeUsgsServer listening on a free loopback port."""
    server = FakeUsgsServer()
    with serving(server):
        yield server


@pytest.fixture
def usgs_dir(shared_data: Path) -> Path:
    """The bundled USGS feeds."""
    return shared_data / "usgs"
