"""Shared fixtures for the Mode S decoder tests."""

from __future__ import annotations

import pytest
from modes_reference import REFERENCE_PATH, ReferenceLine, load_reference


@pytest.fixture(scope="session")
def reference() -> list[ReferenceLine]:
    if not REFERENCE_PATH.exists():
        pytest.skip(f"{REFERENCE_PATH} is not available")
    return load_reference()
