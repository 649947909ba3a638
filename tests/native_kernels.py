"""Test helper: the compiled kernels (`hardware.modes.native`) are there, or the test
skips with the reason; CI, which builds them, sets GEOSENSORD_REQUIRE_NATIVE=1 so
that a broken build fails instead of skipping."""

from __future__ import annotations

import os

import pytest

from hardware.modes import native


def require_native() -> None:
    """Skip (or, under GEOSENSORD_REQUIRE_NATIVE=1, fail) unless the kernels are built."""
    if native.available():
        return
    if os.environ.get("GEOSENSORD_REQUIRE_NATIVE") == "1":
        pytest.fail(f"GEOSENSORD_REQUIRE_NATIVE=1 but {native.UNAVAILABLE_REASON}")
    pytest.skip(native.UNAVAILABLE_REASON)
