"""S2 leaf cells and tokens for whole batches of points in numpy, bit-exact with s2sphere.

s2sphere (pure Python) manages about 57k points/s for a leaf and three tokens; this
module does the same arithmetic over arrays (design §3, issue 8). s2sphere stays the
reference: the tests compare every id bit for bit, and coverings still use it.

The steps are S2's own (s2geometry ``s2coords.h``, ``s2cell_id.cc``), in the same
floating-point operations and order, so every rounding matches::

    lat, lon (deg) --x·(π/180)--> φ, λ (rad)
    φ, λ  --> xyz = (cos λ · cos φ,  sin λ · cos φ,  sin φ)
    xyz   --> face = axis of the largest |component| (ties go to the later axis),
              +3 when that component is negative: faces 0..5 = +x +y +z -x -y -z
    xyz   --> (u, v) = the two other components over the face's one (see _FACE_UV)
    u     --> s = ½·√(1 + 3u) for u ≥ 0, 1 - ½·√(1 - 3u) for u < 0   (quadratic projection)
    s     --> i = clamp(⌊2³⁰ · s⌋, 0, 2³⁰ - 1);   v -> t -> j likewise
    face, i, j --> Hilbert position, 4 bits of i and j per step through LOOKUP_POS

Cell id (uint64)::

    bit 63    61 60                                              0
        [ face ][ pos: 2 bits per level, level 1 first … level 30 ][1]
    a level-L cell keeps face and the first 2L bits of pos, then a single 1 bit at
    position 2(30 - L), then zeros (its "lsb").

Token: the id in 16 lower-case hex digits without trailing zeros. A level-L cell's
lsb sits in hex digit (30 - L)//2 from the right and is never zero, so its token is
always its first 16 - (30 - L)//2 digits: a fixed width per level.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "BatchCells",
    "batch_cells",
    "leaf_ids",
    "parent_ids",
    "token_width",
    "tokens",
]

MAX_LEVEL = 30
MAX_SIZE = 1 << MAX_LEVEL  # leaf cells along one edge of a face
LOOKUP_BITS = 4
SWAP_MASK = 0x01
INVERT_MASK = 0x02

F64 = npt.NDArray[np.float64]
U64 = npt.NDArray[np.uint64]

# Hilbert sub-cell order per orientation, and how each sub-cell turns the curve.
_POS_TO_IJ = ((0, 1, 3, 2), (0, 2, 3, 1), (3, 2, 0, 1), (3, 1, 0, 2))
_POS_TO_ORIENTATION = (SWAP_MASK, 0, 0, INVERT_MASK | SWAP_MASK)


def _lookup_pos() -> npt.NDArray[np.int64]:
    """S2's LOOKUP_POS: (i4 << 6 | j4 << 2 | orientation) -> (pos8 << 2 | new orientation).

    Built like s2cell_id.cc's InitLookupCell, by walking the curve 4 levels deep
    from each of the 4 orientations (1024 entries, once at import).
    """
    table = np.zeros(1 << (2 * LOOKUP_BITS + 2), dtype=np.int64)

    def walk(level: int, i: int, j: int, orig: int, pos: int, orientation: int) -> None:
        if level == LOOKUP_BITS:
            table[(((i << LOOKUP_BITS) + j) << 2) + orig] = (pos << 2) + orientation
            return
        r = _POS_TO_IJ[orientation]
        for index in range(4):
            walk(
                level + 1,
                (i << 1) + (r[index] >> 1),
                (j << 1) + (r[index] & 1),
                orig,
                (pos << 2) + index,
                orientation ^ _POS_TO_ORIENTATION[index],
            )

    for orientation in (0, SWAP_MASK, INVERT_MASK, SWAP_MASK | INVERT_MASK):
        walk(0, 0, 0, orientation, 0, orientation)
    return table


LOOKUP_POS = _lookup_pos()

# Per face: (axis of u's numerator, its sign), (axis of v's numerator, its sign); the
# denominator is the face's own axis (face % 3). From S2's ValidFaceXYZtoUV:
#   0: ( y/x,  z/x)  1: (-x/y,  z/y)  2: (-x/z, -y/z)
#   3: ( z/x,  y/x)  4: ( z/y, -x/y)  5: (-y/z, -x/z)
# Negating a numerator is exact, so (-x)/y rounds exactly like S2's -p[0]/p[1].
_FACE_UV = np.array(
    [
        [[1, 1], [2, 1]],
        [[0, -1], [2, 1]],
        [[0, -1], [1, -1]],
        [[2, 1], [1, 1]],
        [[2, 1], [0, -1]],
        [[1, -1], [0, -1]],
    ],
    dtype=np.int64,
)

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _libm_trig() -> tuple[Callable[[F64], F64], Callable[[F64], F64]]:
    """cos and sin over arrays that round exactly like Python's `math` (libm).

    s2sphere uses `math.cos`/`math.sin`. numpy's own float64 kernels match libm on
    common builds, but SIMD builds (e.g. AVX-512 SVML) may differ by an ulp, which
    would move points on face and cell edges. Probe once; if they differ, map the
    libm functions over the array (slower, still no Python-level loop per event).
    """
    # 4096 spread angles (an irrational step, so no grid artefacts) plus the face
    # diagonals; numpy.random is not imported for this (it costs ~3 MB of RSS).
    spread = (np.arange(4096) * (math.sqrt(5.0) - 1.0)) % (2.0 * math.pi) - math.pi
    probe = np.concatenate(
        [spread, np.array([0.0, math.pi / 4, math.pi / 2, math.pi, -math.pi / 4, 1e-300])]
    )
    numpy_ok = bool(
        np.array_equal(np.cos(probe), [math.cos(x) for x in probe.tolist()])
        and np.array_equal(np.sin(probe), [math.sin(x) for x in probe.tolist()])
    )
    if numpy_ok:
        return np.cos, np.sin

    def libm(fn: Callable[[float], float]) -> Callable[[F64], F64]:
        def apply(x: F64) -> F64:
            return np.fromiter(map(fn, x.tolist()), dtype=np.float64, count=x.size)

        return apply

    return libm(math.cos), libm(math.sin)


_cos, _sin = _libm_trig()
_DEG_TO_RAD = math.pi / 180.0  # what math.radians multiplies by


def leaf_ids(lat_deg: npt.ArrayLike, lon_deg: npt.ArrayLike) -> U64:
    """Leaf (level-30) cell ids of points given in WGS84 degrees, as uint64.

    Equal bit for bit to ``CellId.from_lat_lng(LatLng.from_degrees(lat, lon)).id()``.
    Inputs must be finite (Event validation guarantees it).
    """
    phi = np.asarray(lat_deg, dtype=np.float64).ravel() * _DEG_TO_RAD
    theta = np.asarray(lon_deg, dtype=np.float64).ravel() * _DEG_TO_RAD
    cos_phi = _cos(phi)
    xyz = np.stack([_cos(theta) * cos_phi, _sin(theta) * cos_phi, _sin(phi)])
    mag = np.abs(xyz)
    # S2's LargestAbsComponent: strict comparisons, so a tie goes to the later axis.
    axis = np.where(
        mag[0] > mag[1], np.where(mag[0] > mag[2], 0, 2), np.where(mag[1] > mag[2], 1, 2)
    )
    cols = np.arange(axis.size)
    own = xyz[axis, cols]
    face = axis + 3 * (own < 0)  # -0.0 < 0 is False, as in S2
    uv_spec = _FACE_UV[face]  # (n, 2, 2): [u|v][axis, sign]
    u = (uv_spec[:, 0, 1] * xyz[uv_spec[:, 0, 0], cols]) / own
    v = (uv_spec[:, 1, 1] * xyz[uv_spec[:, 1, 0], cols]) / own
    i = _st_to_ij(_uv_to_st(u))
    j = _st_to_ij(_uv_to_st(v))
    return _from_face_ij(face, i, j)


def _uv_to_st(u: F64) -> F64:
    """Quadratic projection; for u < 0, 1 - 3u equals 1 + 3|u| exactly."""
    root = np.sqrt(1.0 + 3.0 * np.abs(u))
    return np.where(u >= 0, 0.5 * root, 1.0 - 0.5 * root)


def _st_to_ij(s: F64) -> npt.NDArray[np.int64]:
    """Leaf coordinate along a face edge, clamped to [0, 2^30 - 1]."""
    return np.clip(np.floor(float(MAX_SIZE) * s), 0, MAX_SIZE - 1).astype(np.int64)


def _from_face_ij(
    face: npt.NDArray[np.int64], i: npt.NDArray[np.int64], j: npt.NDArray[np.int64]
) -> U64:
    """Cell ids from face and leaf coordinates: the Hilbert walk, 8 table steps of 4 bits."""
    mask = (1 << LOOKUP_BITS) - 1
    n = face.astype(np.uint64) << np.uint64(2 * MAX_LEVEL)
    bits = face & SWAP_MASK
    for k in range(7, -1, -1):
        shift = k * LOOKUP_BITS
        bits = LOOKUP_POS[
            bits + (((i >> shift) & mask) << (LOOKUP_BITS + 2)) + (((j >> shift) & mask) << 2)
        ]
        n |= (bits >> 2).astype(np.uint64) << np.uint64(2 * shift)
        bits &= SWAP_MASK | INVERT_MASK
    result: U64 = (n << np.uint64(1)) | np.uint64(1)
    return result


def _check_level(level: int) -> None:
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"S2 level {level} outside 0..{MAX_LEVEL}")


def parent_ids(ids: U64, level: int) -> U64:
    """The ancestors at `level` of cells (at `level` or finer), as uint64."""
    _check_level(level)
    lsb = np.uint64(1 << (2 * (MAX_LEVEL - level)))
    # S2: (id & -lsb) | lsb; -lsb in two's complement is ~(lsb - 1).
    result: U64 = (ids & ~(lsb - np.uint64(1))) | lsb
    return result


def token_width(level: int) -> int:
    """Number of hex digits in the token of every level-`level` cell."""
    _check_level(level)
    return 16 - (MAX_LEVEL - level) // 2


def tokens(ids: U64, level: int) -> list[str]:
    """Tokens of cells that are all at `level` (as s2sphere's ``CellId.to_token``)."""
    width = token_width(level)
    shifts = np.arange(60, 60 - 4 * width, -4, dtype=np.uint64)
    nibbles = (ids.astype(np.uint64)[:, None] >> shifts[None, :]) & np.uint64(0xF)
    digits = np.ascontiguousarray(_HEX_DIGITS[nibbles])
    # Fixed width, so the digit rows are fixed-size byte strings; numpy makes the str
    # objects in C (about half the cost of slicing one decoded string in Python).
    out: list[str] = digits.view(f"S{width}").ravel().astype(f"U{width}").tolist()
    return out


@dataclass(frozen=True, slots=True)
class BatchCells:
    """Tokens of a batch of points: leaf, each index level, and the stream cell."""

    leaf: list[str]
    levels: tuple[list[str], ...]
    stream: list[str]


def batch_cells(
    lat_deg: npt.ArrayLike,
    lon_deg: npt.ArrayLike,
    index_levels: Sequence[int],
    cell_stream_level: int,
) -> BatchCells:
    """Leaf, index-level and stream-cell tokens of every point (columns, batch order)."""
    leaf = leaf_ids(lat_deg, lon_deg)
    memo: dict[int, list[str]] = {}

    def at(level: int) -> list[str]:
        if level not in memo:
            memo[level] = tokens(parent_ids(leaf, level), level)
        return memo[level]

    return BatchCells(
        leaf=tokens(leaf, MAX_LEVEL),
        levels=tuple(at(level) for level in index_levels),
        stream=at(cell_stream_level),
    )
