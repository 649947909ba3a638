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
                      what is left of the residual (the map is linear: the LRB
                      flips of the residual XOR those of the one or two others)
                  ──► cost = summed reliability of every flipped bit (LRB part:
                      per-byte subset sums, one matmul, 3 lookups); the
                      cheapest candidates per row win

A call costs a fixed number of numpy calls whatever the rows (24 elimination
steps and a few dozen array operations), so callers batch: one call for every
row and frame length (56 or 112 bits, per row) of a receiver batch.

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

from hardware.modes.crc import single_bit_syndromes

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


def _lookup(table: F32, value: U32) -> F32:
    """Per row r and column c: the sum over k of table[r, k, byte k of value[r, c]]."""
    rows = table.shape[0]
    flat = table.reshape(-1)
    byte = np.ascontiguousarray(value, "<u4").view(np.uint8).reshape(*value.shape, 4)
    base = (np.arange(rows, dtype=np.intp) * 768)[:, None]
    total = np.take(flat, base + byte[..., 0])
    total += np.take(flat, (base + 256) + byte[..., 1])
    total += np.take(flat, (base + 512) + byte[..., 2])
    return total


_SUBSETS = np.array([[(v >> j) & 1 for j in range(8)] for v in range(256)], np.float32).T
"""(8, 256): column v holds the bits of v, so a (.., 8) @ _SUBSETS gives all subset sums."""


@cache
def _padded_syndromes(nbits: int, width: int) -> U32:
    """`single_bit_syndromes(nbits)` padded with zeros to `width` positions."""
    out = np.zeros(width, np.uint32)
    out[:nbits] = single_bit_syndromes(nbits)
    out.flags.writeable = False
    return out


def osd_decode(
    bits: U8,
    reliability: F32,
    residual: U32,
    nbits: int | npt.NDArray[np.integer],
    flip_positions: int = 20,
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
    nbits: int | npt.NDArray[np.integer],
    flip_positions: int = 20,
    count: int = 2,
) -> OsdResult:
    """The `count` cheapest codewords near each row's hard decision, cheapest first
    (order-2 OSD, module docstring); `bits`, `flips` and `cost` of the result have
    an extra axis of length `count` after the rows (`runner_up` is the last cost).

    `bits` (rows, >= nbits) 0/1 hard decisions, `reliability` (rows, >= nbits) their
    |LLR| (any non-negative units), `residual` (rows,) the CRC residual of the hard
    decision read as an `nbits` frame (56 or 112; one for all rows or one per row,
    so that both readings of a batch cost one call). Bits past a row's `nbits` are
    ignored and returned unchanged.

    The cost is a fixed number of numpy calls per call (24 elimination steps and
    a few dozen array operations), whatever the number of rows: callers batch.
    """
    n = bits.shape[0]
    lengths = np.broadcast_to(np.asarray(nbits, np.intp), (n,))
    if n == 0:
        width = bits.shape[1]
        return OsdResult(
            np.zeros(0, np.intp),
            np.zeros((0, count, width), np.uint8),
            np.zeros((0, count), np.intp),
            np.zeros((0, count), np.float32),
            np.zeros(0, np.float32),
        )
    span = int(lengths.max())
    rel = np.array(reliability[:, :span], np.float32)
    row_syn = np.broadcast_to(_padded_syndromes(span, span), (n, span))
    shorter = lengths < span
    if shorter.any():
        # Positions past a short row's frame: never among its least reliable.
        rel[np.arange(span)[None, :] >= lengths[:, None]] = np.inf
        row_syn = row_syn.copy()
        for k in set(lengths[shorter].tolist()):  # the few frame lengths (56)
            row_syn[lengths == k] = _padded_syndromes(k, span)
    order = rel.argsort(axis=1)  # (ties: any order will do)
    # (row, column) picks by fancy indexing: np.take_along_axis costs ~10 us a call
    by_row = np.arange(n)[:, None]
    low = order[:, :_LOW]
    syn = row_syn[by_row, low].astype(np.uint64)  # (n, _LOW)
    # Bit row r of the system: bit c set when position low[c]'s syndrome has bit r;
    # bits _LOW + r: the identity that records the row operations.
    shifts = np.arange(PARITY_BITS, dtype=np.uint64)
    column_bit = np.uint64(1) << np.arange(_LOW, dtype=np.uint64)
    mat = np.bitwise_or.reduce(
        ((syn[:, None, :] >> shifts[None, :, None]) & np.uint64(1)) * column_bit, axis=2
    )
    mat |= np.uint64(1) << (shifts + _IDENTITY_SHIFT)
    # Pivot search key per row: lowest set column bit - 1 (so that an empty row
    # wraps to the largest value), OR `never` once the row is a pivot, which
    # also keeps the row's pivot bit (`blocked` & `_LOW_MASK`).
    # (The loop runs 24 times whatever the rows: ndarray methods and flat
    # indices, which cost less per call than np.argmin and (row, col) indexing.)
    blocked = np.zeros((n, PARITY_BITS), np.uint64)
    all_rows = np.arange(n)
    flat_mat, flat_blocked = mat.reshape(-1), blocked.reshape(-1)
    row_start = all_rows * PARITY_BITS
    never = np.uint64(1) << np.uint64(63)  # above every column bit
    one = np.uint64(1)
    for _ in range(PARITY_BITS):  # one pivot per parity bit
        part = mat & _LOW_MASK
        lowest = part & (-part.view(np.int64)).view(np.uint64)
        key = lowest - one
        key |= blocked
        at = key.argmin(axis=1) + row_start
        bit = lowest.reshape(-1)[at]
        pivot_row = flat_mat[at]
        flat_blocked[at] = bit | never  # the row owns column log2(bit)
        mat ^= (mat & bit[:, None]).astype(bool) * pivot_row[:, None]
        flat_mat[at] = pivot_row
    pivot_bit = blocked & _LOW_MASK
    ok = (pivot_bit != 0).all(axis=1)
    pivot_col = np.log2(np.maximum(pivot_bit, one)).astype(np.intp)
    # Row r (after elimination) says: flipping LRB position low[pivot_col[r]]
    # takes part in clearing target t iff parity(T_r & t) = 1, T_r = mat[r] >> _LOW;
    # column j of T (over rows r) is what target bit j adds to the flip set u,
    # and u is linear in t: the sets for the residual and for each flip
    # candidate's syndrome combine by XOR.
    bit_no = np.arange(PARITY_BITS, dtype=np.uint32)
    t_rows = (mat >> _IDENTITY_SHIFT).astype(np.uint32)  # (n, 24): T_r
    t_cols = np.bitwise_or.reduce(
        ((t_rows[:, None, :] >> bit_no[:, None]) & np.uint32(1)) << bit_no[None, None, :], axis=2
    )  # (n, 24): bit r of t_cols[:, j] = bit j of T_r
    lrb = low[by_row, pivot_col]  # position flipped by u bit r
    lrb_cost = rel[by_row, lrb]
    # Flip candidates: the least reliable positions outside the LRB set.
    in_lrb = np.zeros((n, span), bool)
    in_lrb[all_rows[:, None], lrb] = True
    outside = ~in_lrb[by_row, order]  # in reliability order; argsort puts the LRB set first
    rank = outside.argsort(axis=1, kind="stable")[:, PARITY_BITS:][:, :flip_positions]
    flip_pos = order[by_row, rank]  # (n, m)
    m = flip_pos.shape[1]
    # Targets: [each flip candidate's syndrome, none, the residual].
    targets = np.zeros((n, m + 2), np.uint32)
    targets[:, :m] = row_syn[by_row, flip_pos]
    targets[:, m + 1] = residual
    target_bits = ((targets[:, :, None] >> bit_no) & np.uint32(1)).astype(bool)
    u_part = np.bitwise_xor.reduce(
        np.where(target_bits, t_cols[:, None, :], np.uint32(0)), axis=2
    )  # (n, m + 2): the LRB flips that clear each target
    a, b = _pairs(m)
    u = u_part[:, a] ^ u_part[:, b] ^ u_part[:, m + 1 : m + 2]
    flip_cost = np.concatenate([rel[by_row, flip_pos], np.zeros((n, 1), np.float32)], axis=1)
    cost_table = np.matmul(lrb_cost.reshape(n, 3, 8), _SUBSETS)  # (n, 3, 256)
    cost = _lookup(cost_table, u)
    cost += flip_cost[:, a]
    cost += flip_cost[:, b]
    top = cost.argpartition(count - 1, axis=1)[:, :count]
    top = top[by_row, cost[by_row, top].argsort(axis=1)]
    # Apply (rows, count, positions): LRB flips from u, then the one or two others
    # (position `span` stands for "no flip").
    best_u = u[by_row, top]
    u_bits = ((best_u[:, :, None] >> bit_no) & np.uint32(1)).astype(np.uint8)
    mask = np.zeros((n, count, span + 1), np.uint8)
    rows_at = all_rows[:, None, None]
    cand_at = np.arange(count)[None, :, None]
    mask[rows_at, cand_at, lrb[:, None, :]] = u_bits
    flip_ext = np.concatenate([flip_pos, np.full((n, 1), span, np.intp)], axis=1)
    mask[rows_at, cand_at, flip_ext[by_row, a[top]][:, :, None]] = 1
    mask[rows_at, cand_at, flip_ext[by_row, b[top]][:, :, None]] = 1
    flips = mask[:, :, :span].sum(axis=2, dtype=np.intp)
    out = np.repeat(bits[:, None, :], count, axis=1)
    out[:, :, :span] ^= mask[:, :, :span]
    keep = np.flatnonzero(ok)
    costs = cost[by_row, top].astype(np.float32)[keep]
    return OsdResult(keep, out[keep], flips[keep], costs, costs[:, -1])
