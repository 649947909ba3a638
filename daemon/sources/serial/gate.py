"""Flood control for sensor readings: minimum interval, per-field deadband, heartbeat.

A reading is published when all of these allow it, compared with the last
*published* reading:

- at least `min_interval_s` has passed (0: no minimum);
- with a `deadband` table: some listed field moved by at least its threshold
  (a number field) or changed (any other value), appeared or disappeared;
  unlisted fields do not count. Without a table every reading passes;
- `max_interval_s` (0: never) forces a reading through the deadband after that
  long, so a steady value is still reported now and then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ReadingGate:
    """Decides which readings are worth publishing (see the module docstring)."""

    def __init__(
        self,
        deadband: Mapping[str, float] | None = None,
        min_interval_s: float = 0.0,
        max_interval_s: float = 0.0,
    ) -> None:
        self.deadband = dict(deadband or {})
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self._last: Mapping[str, Any] | None = None
        self._last_s = 0.0

    def admit(self, reading: Mapping[str, Any], now_s: float) -> bool:
        """Whether `reading`, taken at monotonic `now_s`, should be published."""
        if self._last is None:
            return True
        elapsed_s = now_s - self._last_s
        if elapsed_s < self.min_interval_s:
            return False
        if not self.deadband or (self.max_interval_s > 0 and elapsed_s >= self.max_interval_s):
            return True
        return any(self._moved(reading.get(name), self._last.get(name), threshold)
                   for name, threshold in self.deadband.items())

    @staticmethod
    def _moved(new: Any, old: Any, threshold: float) -> bool:
        if (new is None) != (old is None):
            return True
        numeric = (int, float)
        if isinstance(new, numeric) and isinstance(old, numeric) \
                and not isinstance(new, bool) and not isinstance(old, bool):
            return abs(new - old) >= threshold and new != old
        return bool(new != old)

    def published(self, reading: Mapping[str, Any], now_s: float) -> None:
        """Record that `reading` was published at monotonic `now_s`."""
        self._last = dict(reading)
        self._last_s = now_s
