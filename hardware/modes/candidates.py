"""The demodulator's rows: every frame tried at a preamble (and phase), as arrays."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

__all__ = ["Candidates"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


@dataclass(frozen=True, slots=True)
class Candidates:
    """Demodulated frames, one row per preamble (and phase) tried.

    Attributes (arrays of one length N unless said):
        preamble: index into the magnitude array of the detected preamble start.
        phase: sub-sample offset of that row's bit grid, in samples; the first
            preamble pulse starts at ``preamble + phase``.
        msg: (N, 14) uint8, the sliced bits packed MSB first; a short frame uses
            the first 7 bytes.
        df: downlink format (first 5 bits).
        nbits: 56 or 112, from the DF.
        residual: CRC-24 of the data bits XOR the parity field (see crc.residual).
        margin: mean decision confidence over the frame's bits (about 0.5 for clean
            bits, 0 for coin tosses).
        signal: mean sampled pulse height (magnitude units, see magnitude.py), from
            the fitted amplitude and the pulse model at the row's phase.
        flipped: how many low-confidence bits the soft repair inverted (0 when the
            frame is as sliced); `msg` and `residual` are after the flips.
    """

    preamble: I64
    phase: F32
    msg: U8
    df: U8
    nbits: npt.NDArray[np.int16]
    residual: U32
    margin: F32
    signal: F32
    flipped: U8

    def __len__(self) -> int:
        return int(self.preamble.size)

    def frame(self, row: int) -> bytes:
        """Row `row` as a 7- or 14-byte Mode S frame."""
        return self.msg[row, : int(self.nbits[row]) // 8].tobytes()

    def take(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Candidates:
        """The subset of rows selected by an index or mask array."""
        return Candidates(*(getattr(self, f)[rows] for f in _FIELDS))

    def shifted(self, offset: int) -> Candidates:
        """The same rows with `offset` added to every preamble index."""
        return replace(self, preamble=self.preamble + offset)

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        """Rows of all `parts`, in order."""
        if not parts:
            return Candidates.empty()
        return Candidates(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))

    @staticmethod
    def empty() -> Candidates:
        """No rows."""
        return Candidates(
            np.zeros(0, np.int64),
            np.zeros(0, np.float32),
            np.zeros((0, 14), np.uint8),
            np.zeros(0, np.uint8),
            np.zeros(0, np.int16),
            np.zeros(0, np.uint32),
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.uint8),
        )


_FIELDS = ("preamble", "phase", "msg", "df", "nbits", "residual", "margin", "signal", "flipped")
