"""Mode S CRC-24 (ICAO Annex 10 Vol IV, generator polynomial 0x1FFF409).

Wire format: the last 24 bits of every Mode S frame (56 or 112 bits) are the
parity field PI/AP. For DF11/17/18 the parity equals the CRC of the preceding
bits (DF11 may have the interrogator id overlaid on the low 7 bits); for
DF0/4/5/16/20/21 the parity is the CRC XORed with the aircraft address (AP).
`residual` returns CRC(data) XOR parity, so it is 0 for a clean DF17, the IID
for a DF11 reply, and the ICAO address for an address/parity format.

::

    bit  0                                         n-24        n-1
        +------------------------------------------+------------+
        | data (32 or 88 bits), DF in bits 0..4    | parity (24)|
        +------------------------------------------+------------+

Error correction rests on linearity: residual(msg ^ e) == residual(msg) ^ residual(e),
so the residual of a damaged clean frame is the "syndrome" residual(e) of the error
pattern alone. `syndrome_table` maps syndromes of all 1-bit (and optionally 2-bit)
patterns to the XOR mask that undoes them. Bit numbering everywhere in this package is
the Mode S one: bit 0 is the most significant bit of byte 0 (the first bit on air).
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np
import numpy.typing as npt

POLY = 0xFFF409

#: Bits 0..4 carry the downlink format; repairs never touch them, so a correction can
#: never turn one format into another (the DF decides which parity rule applies).
DF_FIELD_BITS = 5


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        c = byte << 16
        for _ in range(8):
            c = ((c << 1) ^ POLY) if c & 0x800000 else (c << 1)
        table.append(c & 0xFFFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc24(data: bytes) -> int:
    """CRC-24 of `data` (the message bits before the parity field), as a 24-bit int."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _TABLE[((crc >> 16) ^ b) & 0xFF]
    return crc


def residual(msg: bytes) -> int:
    """CRC of the data bits XOR the transmitted 24-bit parity field (7 or 14 byte frames)."""
    return crc24(msg[:-3]) ^ int.from_bytes(msg[-3:], "big")


def with_parity(data: bytes, overlay: int = 0) -> bytes:
    """Append the 24-bit parity to `data` (4 or 11 bytes): CRC XOR `overlay`.

    `overlay` is the ICAO address for address/parity formats, the IID for DF11, else 0.
    Used to build test frames and by encoders; the inverse of `residual`.
    """
    return bytes(data) + ((crc24(data) ^ overlay) & 0xFFFFFF).to_bytes(3, "big")


def bit_mask(n_bits: int, *bits: int) -> int:
    """Integer XOR mask over an `n_bits` frame with the given Mode S bit numbers set."""
    mask = 0
    for bit in bits:
        mask |= 1 << (n_bits - 1 - bit)
    return mask


def flip_bits(msg: bytes, *bits: int) -> bytes:
    """Return `msg` with the given Mode S bit numbers (0 = first bit on air) inverted."""
    n_bits = len(msg) * 8
    value = int.from_bytes(msg, "big") ^ bit_mask(n_bits, *bits)
    return value.to_bytes(len(msg), "big")


@cache
def syndrome_table(n_bits: int, max_bits: int) -> dict[int, tuple[int, int]]:
    """Syndrome -> (XOR mask, number of bits) for all error patterns of 1..`max_bits` bits.

    `n_bits` is 56 or 112. Bits 0..4 (the DF field) are excluded. A syndrome produced by
    two different patterns cannot be repaired unambiguously and is left out, as is any
    2-bit pattern whose syndrome equals a 1-bit one. Built once per (n_bits, max_bits)
    and cached: 107 entries for 1 bit, 5778 for 2 bits on 112-bit frames (no
    two patterns of at most 2 bits share a syndrome at either length).
    """
    if n_bits not in (56, 112):
        raise ValueError(f"Mode S frames are 56 or 112 bits, not {n_bits}")
    if max_bits not in (1, 2):
        raise ValueError(f"only 1- and 2-bit repair is supported, not {max_bits}")
    n_bytes = n_bits // 8
    positions = range(DF_FIELD_BITS, n_bits)
    table: dict[int, tuple[int, int]] = {}
    ambiguous: set[int] = set()
    for count in range(1, max_bits + 1):
        for bits in combinations(positions, count):
            mask = bit_mask(n_bits, *bits)
            syndrome = residual(mask.to_bytes(n_bytes, "big"))
            if syndrome in table:
                if table[syndrome][1] == count:
                    ambiguous.add(syndrome)
                # A shorter pattern with this syndrome already exists: it is the likelier one.
                continue
            table[syndrome] = (mask, count)
    for syndrome in ambiguous:
        del table[syndrome]
    return table


@cache
def single_bit_syndromes(nbits: int) -> npt.NDArray[np.uint32]:
    """Residual (CRC of data XOR parity) that a lone error at each bit of an
    `nbits`-bit frame produces, as a read-only array; entry i is for bit i (bit 0 =
    MSB of byte 0). The CRC is linear: a pattern's residual is the XOR of its bits'."""
    out = np.array(
        [residual(bit_mask(nbits, bit).to_bytes(nbits // 8, "big")) for bit in range(nbits)],
        dtype=np.uint32,
    )
    out.flags.writeable = False
    return out
