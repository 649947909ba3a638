"""A JSON-lines sink: one event record per line, for debugging and recording.

Its output is exactly what the `jsonl` replay source reads back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from sinks.base import SinkUnavailable
from sinks.entry import StreamEntry


class JsonlSink:
    """Appends each entry's record to a file (``-`` for standard output)."""

    def __init__(self, name: str, path: Path | str, fsync: bool = False) -> None:
        self.name = name
        self.path = str(path)
        self.fsync = fsync
        self._fh: IO[str] | None = None

    def open(self) -> None:
        """Open the file for appending (creating its folder)."""
        if self.path == "-":
            import sys

            self._fh = sys.stdout
            return
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open across batches
        except OSError as exc:
            raise SinkUnavailable(f"{self.path}: {exc.strerror}") from exc

    def write(self, batch: Sequence[StreamEntry]) -> int:
        """Append the batch's records as one write."""
        if self._fh is None:
            self.open()
        assert self._fh is not None
        text = "".join(json.dumps(e.record, separators=(",", ":")) + "\n" for e in batch)
        try:
            self._fh.write(text)
        except OSError as exc:
            raise SinkUnavailable(f"{self.path}: {exc.strerror}") from exc
        return len(batch)

    def flush(self) -> None:
        """Flush (and fsync when configured)."""
        if self._fh is not None:
            self._fh.flush()
            if self.fsync and self.path != "-":
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Flush and close the file."""
        if self._fh is not None:
            self.flush()
            if self.path != "-":
                self._fh.close()
            self._fh = None
