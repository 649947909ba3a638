"""Rate-limited logging for bad input: the first problem of a kind is logged, then
at most one summary line per interval, so a device spewing garbage cannot flood
the journal."""

from __future__ import annotations

import logging
import threading
import time


class RateLimitedLog:
    """Logs a warning per `key` at most once every `interval_s` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log `msg` unless `key` was logged within the interval; return True if logged."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += f" (and {suppressed} more like it since the last report)"
        self.logger.warning(msg, *args)
        return True
