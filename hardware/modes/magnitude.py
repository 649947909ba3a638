"""Magnitude of RTL-SDR u8 IQ samples through a 256 x 256 lookup table.

Wire format of the input (what rtl_sdr, rtl_tcp and pyrtlsdr's raw reads give)::

    byte   0    1    2    3    4    5   ...
          I0   Q0   I1   Q1   I2   Q2   ...     unsigned 8 bit, zero at 127.5

Read as little-endian uint16, sample k is ``I_k | Q_k << 8``; that value indexes a
65 536-entry table holding ``hypot(I - 127.5, Q - 127.5)``. The magnitude is linear
amplitude in ADC units: 0 dBFS is a full-scale complex tone, ``|IQ| = 127.5``
(`FULL_SCALE`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from hardware.modes import native

__all__ = ["FULL_SCALE", "magnitude", "magnitude_table"]

FULL_SCALE = 127.5
"""Magnitude of a full-scale complex tone: the 0 dBFS reference, in ADC units."""


def magnitude_table() -> npt.NDArray[np.float32]:
    """The 65 536-entry table: entry ``i | q << 8`` is ``|(i - 127.5) + j(q - 127.5)|``."""
    axis = np.arange(256, dtype=np.float64) - 127.5
    # Row index is Q (high byte), column index is I (low byte).
    table = np.hypot(axis[None, :], axis[:, None]).astype(np.float32)
    return table.reshape(-1)


_TABLE = magnitude_table()
_TABLE.flags.writeable = False
_PIECE_SAMPLES = 65_536  # samples per table lookup (see `magnitude`)


def magnitude(
    iq_u8: npt.NDArray[np.uint8],
    out: npt.NDArray[np.float32] | None = None,
    *,
    compiled: bool = True,
) -> npt.NDArray[np.float32]:
    """Magnitude per complex sample (ADC units) of interleaved u8 IQ of even length.

    Returns a new float32 array of ``len(iq_u8) // 2`` samples, or fills and returns
    `out` (a float32 array of that length; reusing one saves the page faults of a
    fresh large array per block). Where the compiled kernels are built (`native`) and
    `compiled` is True, the kernel computes the table's values (~4x less CPU).
    """
    if iq_u8.dtype != np.uint8:
        raise TypeError(f"expected uint8 IQ, got {iq_u8.dtype}")
    if iq_u8.size % 2:
        raise ValueError("interleaved IQ needs an even number of bytes")
    iq_u8 = np.ascontiguousarray(iq_u8)
    pairs = iq_u8.view("<u2")
    if out is None:
        out = np.empty(pairs.size, np.float32)
    elif out.dtype != np.float32 or out.shape != (pairs.size,) or not out.flags.c_contiguous:
        raise ValueError(f"out must be {pairs.size} contiguous float32")
    if compiled and native.KERNELS is not None:
        native.KERNELS.magnitude(iq_u8, out)
        return out
    # take(mode="clip") skips the bounds check: every uint16 is a valid index.
    # In pieces: take converts its indices to a temporary intp array, 8 bytes a
    # sample, which stays in cache this way (65 536 samples: ~10 % less CPU than
    # 32 768, as fast as 131 072).
    for lo in range(0, pairs.size, _PIECE_SAMPLES):
        hi = lo + _PIECE_SAMPLES
        np.take(_TABLE, pairs[lo:hi], out=out[lo:hi], mode="clip")
    return out
