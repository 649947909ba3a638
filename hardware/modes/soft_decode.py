"""Ordered-statistics soft decoding of Mode S frames against their CRC-24 (numpy).

A Mode S frame with a zero CRC residual is a codeword of a (112, 88) (or (56, 32))
binary linear code: the residual of a frame is the XOR of the syndromes of its
error bits, so finding the likeliest error pattern given per-bit reliabilities
(|LLR| from the sequence detector) is soft-decision decoding of that code.

Order-2 ordered-statistics decoding (OSD), per row, all rows at once::

    reliabilities ──► the `_LOW` least reliable bit positions, least first
                  ──► Gauss-Jordan on their syndromes (24 x _LOW over GF(2), as
                      uint64 bit rows with a 24-bit identity alongside): the first
                      24 independent positions are the LRB set, their solution map
                      ``t -> e`` (which LRB bits to flip so that their syndromes
                      XOR to t) ends up in the identity's place
                  ──► candidates: flip none, one or two of the `flip_positions`
                      least reliable other bits, and the LRB bits that clear
                      what is left of the residual (byte tables: 3 lookups)
                  ──► cost = summed reliability of every flipped bit; the
                      cheapest candidate per row wins

Every error pattern confined to the LRB set plus at most two other low-reliability
bits is among the candidates, whatever the number of flips inside the LRB set (a
Chase search over the k least reliable bits covers only patterns inside those k).
The winner is always a codeword: whether to trust it is the caller's decision
(its cost against the frame's reliabilities, and the address rules of frame_check).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from hardware.modes.crc import crc24

__all__ = ["OsdResult", "osd_decode"]

PARITY_BITS = 24
_LOW = 40  # positions entering the elimination: 40 + the 24-bit identity = 64 bits
_IDENTITY_SHIFT = np.uint64(_LOW)
_LOW_MASK = np.uint64((1 << _LOW) - 1)

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
IDX = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class OsdResult:
    """Decoded rows: `rows` indices into the input of the rows decoded (rank-deficient
    ones are left out), `bits` (len(rows), input width) their codewords, `flips`
    how many bits differ from the hard decision, `cost` the summed reliability
    of those bits (the input's units) and `runner_up` the cost of the next
    cheapest candidate (another codeword)."""

    rows: IDX
    bits: U8
    flips: npt.NDArray[np.intp]
    cost: F32
    runner_up: F32


@cache
def _bit_syndromes(nbits: int) -> U32:
    """Residual that a lone error at each bit of an `nbits` frame produces (bit 0 = MSB)."""
    nbytes = nbits // 8
    out = np.zeros(nbits, np.uint32)
    for bit in range(nbits):
        frame = bytearray(nbytes)
        frame[bit // 8] = 0x80 >> (bit % 8)
        out[bit] = crc24(bytes(frame[:-3])) ^ int.from_bytes(frame[-3:], "big")
    out.flags.writeable = False
    return out


@cache
def _pairs(count: int) -> tuple[IDX, IDX]:
    """Flip candidates over `count` positions: none, each one, each pair; as two
    index arrays into the positions where `count` means "no flip"."""
    first = [count, *range(count)]
    second = [count] * (count + 1)
    for a in range(count):
        for b in range(a + 1, count):
            first.append(a)
            second.append(b)
    return np.array(first, np.intp), np.array(second, np.intp)


def _byte_tables(columns: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """(rows, 3, 256) subset sums per byte of a (rows, 24) column array: entry
    [row, k, v] combines the columns 8k + j for the set bits j of v (XOR for
    integer columns, + for float ones)."""
    rows = columns.shape[0]
    cols = columns.reshape(rows, 3, 8)
    xor = np.issubdtype(columns.dtype, np.integer)
    table = np.zeros((rows, 3, 1), columns.dtype)
    for j in range(8):
        add = cols[:, :, j : j + 1]
        table = np.concatenate([table, table ^ add if xor else table + add], axis=2)
    return table


def _lookup(table: npt.NDArray[np.generic], value: U32) -> npt.NDArray[np.generic]:
    """Per row r and column c: combine table[r, k, byte k of value[r, c]] over k."""
    rows = table.shape[0]
    flat = table.reshape(-1)
    base = (np.arange(rows, dtype=np.intp) * 768)[:, None]
    parts = [
        np.take(flat, base + k * 256 + ((value >> np.uint32(8 * k)) & np.uint32(0xFF)))
        for k in range(3)
    ]
    if np.issubdtype(table.dtype, np.integer):
        return parts[0] ^ parts[1] ^ parts[2]
    return parts[0] + parts[1] + parts[2]


def osd_decode(
    bits: U8, reliability: F32, residual: U32, nbits: int, flip_positions: int = 20
) -> OsdResult:
    """Cheapest codeword near each row's hard decision (order-2 OSD, module docstring)."""
    found = osd_candidates(bits, reliability, residual, nbits, flip_positions, 2)
    return OsdResult(
        found.rows, found.bits[:, 0], found.flips[:, 0], found.cost[:, 0], found.cost[:, 1]
    )


def osd_candidates(
    bits: U8,
    reliability: F32,
    residual: U32,
    nbits: int,
    flip_positions: int = 20,
    count: int = 2,
) -> OsdResult:
    """The `count` cheapest codewords near each row's hard decision, cheapest first
    (order-2 OSD, module docstring); `bits`, `flips` and `cost` of the result have
    an extra axis of length `count` after the rows (`runner_up` is the last cost).

    `bits` (rows, >= nbits) 0/1 hard decisions, `reliability` (rows, >= nbits) their
    |LLR| (any non-negative units), `residual` (rows,) the CRC residual of the hard
    decision read as an `nbits` frame (56 or 112). Bits past `nbits` are ignored
    and returned unchanged.
    """
    n = bits.shape[0]
    rel = np.ascontiguousarray(reliability[:, :nbits], np.float32)
    order = np.argsort(rel, axis=1, kind="stable")
    low = order[:, :_LOW]
    syn = _bit_syndromes(nbits)[low].astype(np.uint64)  # (n, _LOW)
    # Bit row r of the system: bit c set when position low[c]'s syndrome has bit r;
    # bits _LOW + r: the identity that records the row operations.
    shifts = np.arange(PARITY_BITS, dtype=np.uint64)
    column_bit = np.uint64(1) << np.arange(_LOW, dtype=np.uint64)
    mat = np.bitwise_or.reduce(
        ((syn[:, None, :] >> shifts[None, :, None]) & np.uint64(1)) * column_bit, axis=2
    )
    mat |= np.uint64(1) << (shifts + _IDENTITY_SHIFT)
    # Pivot search key per row: lowest set column bit - 1 (so that an empty row
    # wraps to the largest value), OR `never` once the row is a pivot.
    blocked = np.zeros((n, PARITY_BITS), np.uint64)
    pivot_bit = np.zeros((n, PARITY_BITS), np.uint64)
    all_rows = np.arange(n)
    never = np.uint64(1) << np.uint64(63)  # above every column bit
    one = np.uint64(1)
    for _ in range(PARITY_BITS):  # one pivot per parity bit
        part = mat & _LOW_MASK
        lowest = part & (~part + one)
        key = lowest - one
        key |= blocked
        pr = np.argmin(key, axis=1)
        bit = lowest[all_rows, pr]
        pivot_row = mat[all_rows, pr]
        blocked[all_rows, pr] = never
        pivot_bit[all_rows, pr] = bit  # row pr owns column log2(bit)
        mat ^= np.where((mat & bit[:, None]) != 0, pivot_row[:, None], np.uint64(0))
        mat[all_rows, pr] = pivot_row
    ok = (pivot_bit != 0).all(axis=1)
    pivot_col = np.log2(np.maximum(pivot_bit, one)).astype(np.intp)
    # Row r (after elimination) says: flipping LRB position low[pivot_col[r]]
    # takes part in clearing target t iff parity(T_r & t) = 1, T_r = mat[r] >> _LOW.
    # Column j of T (over rows r) is what target bit j contributes to the flip set u.
    t_rows = (mat >> _IDENTITY_SHIFT).astype(np.uint32)  # (n, 24): T_r
    t_cols = np.bitwise_or.reduce(
        ((t_rows[:, None, :] >> np.arange(PARITY_BITS, dtype=np.uint32)[:, None]) & 1).astype(
            np.uint32
        )
        << np.arange(PARITY_BITS, dtype=np.uint32)[None, None, :],
        axis=2,
    )  # (n, 24): bit r of t_cols[:, j] = bit j of T_r
    solve = _byte_tables(t_cols)
    lrb = np.take_along_axis(low, pivot_col, axis=1)  # position flipped by u bit r
    lrb_cost = np.take_along_axis(rel, lrb, axis=1)
    cost_table = _byte_tables(lrb_cost)
    # Flip candidates: the least reliable positions outside the LRB set.
    in_lrb = np.zeros((n, nbits), bool)
    in_lrb[all_rows[:, None], lrb] = True
    outside = np.take_along_axis(in_lrb, order, axis=1)
    rank = np.argsort(outside, axis=1, kind="stable")[:, PARITY_BITS:][:, :flip_positions]
    flip_pos = np.take_along_axis(order, rank, axis=1)  # (n, m)
    m = flip_pos.shape[1]
    flip_syn = np.concatenate(
        [_bit_syndromes(nbits)[flip_pos], np.zeros((n, 1), np.uint32)], axis=1
    )
    flip_cost = np.concatenate(
        [np.take_along_axis(rel, flip_pos, axis=1), np.zeros((n, 1), np.float32)], axis=1
    )
    a, b = _pairs(m)
    target = residual.astype(np.uint32)[:, None] ^ flip_syn[:, a] ^ flip_syn[:, b]
    u = np.asarray(_lookup(solve, target), np.uint32)
    cost = _lookup(cost_table, u) + flip_cost[:, a] + flip_cost[:, b]
    top = np.argpartition(cost, count - 1, axis=1)[:, :count]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(cost, top, axis=1), axis=1), 1)
    outs, all_flips = [], []
    for k in range(count):
        pick = top[:, k]
        best_u = u[all_rows, pick].astype(np.uint32)
        # Apply: LRB flips from u, then the one or two other flips.
        out = bits.copy()
        u_bits = ((best_u[:, None] >> np.arange(PARITY_BITS, dtype=np.uint32)) & 1).astype(bool)
        r_idx, c_idx = np.nonzero(u_bits)
        out[r_idx, lrb[r_idx, c_idx]] ^= 1
        flips = u_bits.sum(axis=1)
        for which in (a, b):
            w = which[pick]
            has_flip = w < m
            rows_f = np.flatnonzero(has_flip)
            out[rows_f, flip_pos[rows_f, w[has_flip]]] ^= 1
            flips = flips + has_flip
        outs.append(out)
        all_flips.append(flips)
    keep = np.flatnonzero(ok)
    costs = np.take_along_axis(cost, top, axis=1).astype(np.float32)[keep]
    return OsdResult(
        keep,
        np.stack(outs, axis=1)[keep],
        np.stack(all_flips, axis=1)[keep],
        costs,
        costs[:, -1],
    )
