"""CRC-24 over many demodulated frames at once (numpy), for the demodulator's rows.

The Mode S CRC (generator 0xFFF409, zero initial value) is linear over GF(2): the
residual of a frame (CRC of its data XOR its parity field) is the XOR of the
residuals of its set bits, so it is a table lookup per byte::

    residual(frame) = T[0][byte 0] ^ T[1][byte 1] ^ ... ^ T[n-1][byte n-1]

with T[i][v] the residual of byte value v alone at position i (`_byte_tables`). One
gather over every row's bytes and one XOR reduction give all rows' residuals.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

from hardware.modes import native
from hardware.modes.crc import single_bit_syndromes

__all__ = ["LONG_BITS", "SHORT_BITS", "frame_residuals", "mixed_residuals", "one_bit_away"]

SHORT_BITS = 56
LONG_BITS = 112

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


@cache
def _sorted_syndromes(nbits: int) -> U32:
    return np.sort(single_bit_syndromes(nbits))


def one_bit_away(residual: U32, nbits: int) -> npt.NDArray[np.bool_]:
    """Whether each residual is the syndrome of a single-bit error in an
    `nbits`-bit frame (so the frame is one flipped bit from a clean CRC)."""
    table = _sorted_syndromes(nbits)
    at = np.minimum(np.searchsorted(table, residual), table.size - 1)
    return np.asarray(table[at] == residual)


@cache
def _byte_tables(nbits: int) -> U32:
    """(nbytes, 256) table: the residual contribution of each byte value at each
    position. CRC-24 with zero init is linear, so a frame's residual is the XOR of
    its bytes' contributions."""
    syn = single_bit_syndromes(nbits).reshape(-1, 8)
    values = np.arange(256, dtype=np.uint32)
    table = np.zeros((nbits // 8, 256), dtype=np.uint32)
    for bit in range(8):
        has_bit = ((values >> (7 - bit)) & 1).astype(bool)
        table[:, has_bit] ^= syn[:, bit : bit + 1]
    table.flags.writeable = False
    return table


def frame_residuals(msgs: U8, nbits: int) -> U32:
    """CRC-24 residual of each row of `msgs` (bytes, at least nbits/8 columns)
    read as an `nbits`-bit frame: 0 for a clean DF17, the address for AP formats."""
    nbytes = nbits // 8
    table = _byte_tables(nbits).reshape(-1)
    # One gather of every byte's contribution (byte pos, value v at pos * 256 + v),
    # byte positions first so that the XOR runs along contiguous rows.
    flat = msgs.reshape(-1, msgs.shape[-1])
    index = flat.T[:nbytes] + _BYTE_OFFSETS[:nbytes]
    out: U32 = np.bitwise_xor.reduce(np.take(table, index), axis=0)
    return out.reshape(msgs.shape[:-1])


_BYTE_OFFSETS = (np.arange(14, dtype=np.intp) * 256)[:, None]


@cache
def _long_short_tables() -> U32:
    """(2, 14, 256): `_byte_tables` of 112-bit frames, then of 56-bit frames with
    bytes 7-13 contributing nothing, flattened for one gather over mixed rows."""
    table = np.zeros((2, 14, 256), np.uint32)
    table[0] = _byte_tables(LONG_BITS)
    table[1, : SHORT_BITS // 8] = _byte_tables(SHORT_BITS)
    out = table.reshape(-1)
    out.flags.writeable = False
    return out


def mixed_residuals(
    msgs: U8, long_rows: npt.NDArray[np.bool_], *, compiled: bool = True
) -> U32:
    """`frame_residuals` of each row of `msgs` (rows, 14) as a 112-bit frame where
    `long_rows`, as a 56-bit frame elsewhere, in one gather. `compiled`: in the
    compiled kernel where it is built (`native`), one row's 14 lookups at a time,
    where numpy gathers all rows' bytes and XORs them along a strided axis; XOR
    gives the same residuals in any order."""
    if compiled and native.KERNELS is not None:
        residuals = np.empty(msgs.shape[0], np.uint32)
        native.KERNELS.frame_residuals(
            np.ascontiguousarray(msgs, np.uint8),
            np.ascontiguousarray(long_rows, np.uint8),
            _long_short_tables(),
            residuals,
        )
        return residuals
    index = msgs.T + _BYTE_OFFSETS
    index += np.where(long_rows, 0, 14 * 256)
    out: U32 = np.bitwise_xor.reduce(np.take(_long_short_tables(), index), axis=0)
    return out
