"""The serial source's event sequence, kept across restarts without reuse.

Event ids are ``serial:<name>:<seq>``, so a number must never be given to two
readings. The floor is the larger of (a) the ``seq`` memo the sink recorded in
Redis atomically with the last written event and (b) a small file in the state
directory. Numbers are reserved in blocks in the file before use (one write per
`block` readings, to spare SD cards); a clean stop writes the exact last number
so the next run continues without a gap, and after a crash the next run starts
past the reservation (a gap, never a reuse — also for readings still spooled).

If neither is available (no state file, and Redis unreachable at start), the
sequence starts at the current time in microseconds, as the pipeline's
`daemon.sequence.SequenceStore` does: above anything an earlier life used, so
the sink never drops new readings as replays of old ones.

File (JSON, replaced atomically): ``{"seq": <highest number that may have been used>}``
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class SequenceFloor:
    """Hands out the next sequence numbers of one source, persisting a floor."""

    def __init__(self, path: Path, remembered: int | None = 0, block: int = 100) -> None:
        """`remembered` is the memo from Redis, None when it could not be read."""
        self.path = path
        self.block = block
        on_disk = self._read()
        if on_disk is None and remembered is None:
            self.last = time.time_ns() // 1000
        else:
            self.last = max(on_disk or 0, remembered or 0)
        self._reserved = self.last

    def _read(self) -> int | None:
        try:
            return int(json.loads(self.path.read_text())["seq"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, OSError):
            # A torn file after a power cut: the Redis memo still bounds reuse.
            return None

    def _write(self, seq: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seq": seq}))
        os.replace(tmp, self.path)

    def next(self) -> int:
        """The next number; reserves a new block on disk first when needed."""
        seq = self.last + 1
        if seq > self._reserved:
            self._reserved = seq + self.block - 1
            self._write(self._reserved)
        self.last = seq
        return seq

    def close(self) -> None:
        """Persist the exact last number (a clean stop: the next run has no gap)."""
        if self._reserved != self.last:
            self._write(self.last)
            self._reserved = self.last
