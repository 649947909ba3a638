"""The IQ sample source interface: blocks of interleaved u8 IQ with their timing.

A block is ``I0 Q0 I1 Q1 …`` as unsigned bytes (zero is about 127.5), exactly what
RTL-SDR dongles, rtl_tcp and ``rtl_sdr`` recordings carry. Each block knows

- ``first_sample``: the absolute index of its first complex sample, counted from the
  first sample the source produced at ``sample_rate_hz``. Indices keep counting over
  samples a consumer drops, so a gap is visible as a jump.
- ``host_time_s``: the UTC epoch time (seconds) of that first sample. Live sources take
  the host clock when the block arrives, minus the block's duration; file sources use
  a start time plus ``first_sample / sample_rate_hz`` (deterministic).
- ``discontinuity``: True when the samples before this block are not the ones just
  before it on air (a reconnect, a file that looped): a demodulator should not join a
  frame across it.

Sources are synchronous (`read_block` blocks until a block or the end); the daemon
runs them in a reader thread. `read_block` returns None at the end of the stream
(end of file, server closed the connection) and raises `IqSourceError` subclasses
(see errors.py) for failures.
"""

from __future__ import annotations

import types
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_BLOCK_SAMPLES", "IqBlock", "IqSource", "TunerSettings"]

#: 128 Ki complex samples = 256 KiB of IQ, 65.5 ms at 2 MS/s.
DEFAULT_BLOCK_SAMPLES = 131_072


@dataclass(frozen=True, slots=True)
class IqBlock:
    """Interleaved u8 IQ samples with their absolute index and time (module doc)."""

    iq: npt.NDArray[np.uint8]
    first_sample: int
    host_time_s: float
    discontinuity: bool = False

    @property
    def n_samples(self) -> int:
        """Complex samples in the block."""
        return int(self.iq.size // 2)


@dataclass(frozen=True, slots=True)
class TunerSettings:
    """What to tune a receiver to. `gain_db` None means automatic (tuner AGC)."""

    frequency_hz: int = 1_090_000_000
    sample_rate_hz: int = 2_000_000
    gain_db: float | None = None
    ppm: int = 0
    rtl_agc: bool = False
    bias_tee: bool = False


class IqSource(ABC):
    """A producer of IqBlocks. Use as a context manager or call `close`."""

    sample_rate_hz: int

    @abstractmethod
    def read_block(self) -> IqBlock | None:
        """The next block, or None at the end of the stream; raises IqSourceError."""

    @abstractmethod
    def close(self) -> None:
        """Release the device, socket or file (idempotent)."""

    def describe(self) -> str:
        """A short human-readable name for logs."""
        return type(self).__name__

    def __enter__(self) -> IqSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()
