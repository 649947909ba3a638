"""Fixtures of the sonde source tests (helpers in sonde_fixtures.py; the RS41 signal
generator comes from the decoder's tests)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[2] / "hardware" / "rs41"))
