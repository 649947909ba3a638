"""A u8 IQ recording as an IQ source (``rtl_sdr -f 1090e6 -s 2e6 file.bin`` output).

Block times are deterministic: ``start_time_s + first_sample / sample_rate_hz``, so the
same file with the same start time always yields the same timestamps. With
`realtime`, a block is returned no earlier than its last sample would have arrived
from a live receiver (pacing against the monotonic clock). With `loop`, the file
starts over at its end, sample indices and times keep increasing, and the first
block of each new pass is marked as a discontinuity.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hardware.iq.base import DEFAULT_BLOCK_SAMPLES, IqBlock, IqSource

__all__ = ["IqFileSource"]


class IqFileSource(IqSource):
    """Reads blocks of u8 IQ from a file. `start_time_s` defaults to the file's mtime."""

    def __init__(
        self,
        path: str | Path,
        sample_rate_hz: int = 2_000_000,
        *,
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        realtime: bool = False,
        loop: bool = False,
        start_time_s: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.sample_rate_hz = sample_rate_hz
        self.block_bytes = 2 * block_samples
        self.realtime = realtime
        self.loop = loop
        self._fh: BinaryIO | None = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        self.start_time_s = (
            start_time_s if start_time_s is not None else self.path.stat().st_mtime
        )
        self.passes = 0
        """Completed passes over the file (loops)."""
        self._next_sample = 0
        self._started_mono: float | None = None
        self._wrapped = False

    def describe(self) -> str:
        return f"file://{self.path}"

    def read_block(self) -> IqBlock | None:
        if self._fh is None:
            return None
        raw = self._fh.read(self.block_bytes)
        if len(raw) < 2 and self.loop and self._next_sample > 0:
            self._fh.seek(0)
            self.passes += 1
            self._wrapped = True
            raw = self._fh.read(self.block_bytes)
        usable = len(raw) - len(raw) % 2
        if usable == 0:
            self.passes += 1
            return None
        n = usable // 2
        first = self._next_sample
        self._next_sample += n
        if self.realtime:
            if self._started_mono is None:
                self._started_mono = time.monotonic()
            delay = self._started_mono + self._next_sample / self.sample_rate_hz - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        iq = np.frombuffer(raw, np.uint8, count=usable)
        block = IqBlock(iq, first, self.start_time_s + first / self.sample_rate_hz,
                        discontinuity=self._wrapped)
        self._wrapped = False
        return block

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()
