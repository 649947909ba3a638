"""Per-producer monotonic sequence numbers that survive restarts.

The sink writes an event only when its sequence is above the producer's committed
offset, so a number must never be reused for a different event. Numbers are
reserved in blocks and the reservation is written to a small JSON file before any
number of the block is handed out; after a crash the next run starts past the
reservation (gaps are harmless, reuse is not). Writing once per block rather
than once per event keeps SD-card wear negligible.

A producer seen for the first time while Redis cannot be asked for its committed
offset starts at the current time in microseconds: larger than anything an
earlier life could have reserved, and still exact in the Lua script's doubles.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path


class SequenceStore:
    """Hands out strictly increasing sequence numbers per producer."""

    def __init__(
        self, path: Path, committed: Callable[[str], int | None], block: int = 1000
    ) -> None:
        self.path = path
        self.committed = committed
        self.block = block
        self._lock = threading.Lock()
        self._next: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        try:
            self._persisted: dict[str, int] = json.loads(path.read_text())
        except FileNotFoundError:
            self._persisted = {}
        except (ValueError, OSError):
            # A torn file after a power cut: the committed offset in Redis still bounds reuse.
            self._persisted = {}

    def next(self, producer: str) -> int:
        """The next sequence for `producer` (may call `committed` the first time)."""
        with self._lock:
            n = self._next.get(producer)
            if n is None:
                committed = self.committed(producer)
                if committed is None and producer not in self._persisted:
                    committed = time.time_ns() // 1000
                n = max(self._persisted.get(producer, 0), committed or 0) + 1
            if n > self._reserved.get(producer, 0):
                self._reserve(producer, n + self.block - 1)
            self._next[producer] = n + 1
            return n

    def observe(self, producer: str, seq: int) -> None:
        """Note an explicit sequence a source chose, so later automatic ones stay above it."""
        with self._lock:
            if seq >= self._next.get(producer, 0):
                self._next[producer] = seq + 1

    def _reserve(self, producer: str, upto: int) -> None:
        self._reserved[producer] = upto
        self._persisted[producer] = upto
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._persisted, sort_keys=True))
        os.replace(tmp, self.path)
