"""Reed-Solomon correction of an RS41 frame.

Two interleaved RS(255,231) codewords over GF(2^8), primitive polynomial 0x11D,
generator roots alpha^0 .. alpha^23 (fcr 0), each correcting up to 12 byte errors::

    frame offset   0..7     8..31       32..55      56  57  58  59 ...  517
                   header   parity cw1  parity cw2  m1  m2  m1  m2 ...
    cw1 = parity frame[8..31]  + message frame[56], frame[58], ... (231 bytes)
    cw2 = parity frame[32..55] + message frame[57], frame[59], ...

A 320-byte frame is a shortened code: message bytes beyond the frame end are zero.
rs1729's rs41mod builds each codeword as coefficients c[0..254] = parity[0..23],
message[0..230], c[i] the coefficient of x^i. `reedsolo` wants the highest power
first, so both halves are reversed on the way in and out. The zero padding is the
highest powers, so it is simply left off (reedsolo then decodes a shortened word,
and an error can never be "corrected" into the padding).

Syndromes are computed here with numpy first: a clean codeword (the usual case)
never reaches the slower pure-Python decoder. Erasures (byte positions the
demodulator marks as unreliable) double what a codeword can repair: e errors and
f erasures while 2e + f <= 24.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import reedsolo
from numpy.typing import NDArray

from hardware.rs41.errors import FrameLengthError, UncorrectableError

N_PARITY = 24
N_MESSAGE = 231
PARITY_OFFSET = 8
MESSAGE_OFFSET = 56
FRAME_LEN_STANDARD = 320
FRAME_LEN_EXTENDED = 518
MAX_CORRECTABLE = N_PARITY // 2

# GF(2^8) tables for poly 0x11D, generator alpha = 2.
_EXP = np.zeros(512, dtype=np.int64)
_LOG = np.zeros(256, dtype=np.int64)
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
_EXP[255:510] = _EXP[:255]


@dataclass(frozen=True, slots=True)
class EccResult:
    """A frame after Reed-Solomon correction and the byte errors fixed per codeword."""

    frame: bytes
    errors: tuple[int, int]


def _codec() -> reedsolo.RSCodec:
    # A fresh codec per call: RSCodec swaps reedsolo's module-level tables in and
    # out around each call, so two threads decoding at once could race there; the
    # decoder is meant to run in one thread per process (or guard this call).
    return reedsolo.RSCodec(N_PARITY, nsize=255, fcr=0, prim=0x11D, c_exp=8)


def split_codewords(frame: bytes) -> tuple[bytes, bytes]:
    """The two codewords of a plain frame as c[0..n-1] (parity first, then message)."""
    if len(frame) not in (FRAME_LEN_STANDARD, FRAME_LEN_EXTENDED):
        raise FrameLengthError(len(frame))
    cw1 = frame[PARITY_OFFSET : PARITY_OFFSET + N_PARITY] + frame[MESSAGE_OFFSET::2]
    cw2 = frame[PARITY_OFFSET + N_PARITY : MESSAGE_OFFSET] + frame[MESSAGE_OFFSET + 1 :: 2]
    return cw1, cw2


def syndromes(codeword: bytes) -> NDArray[np.int64]:
    """The 24 syndromes S_j = c(alpha^j), j = 0..23, of c[0..n-1] (c[i] the x^i term)."""
    c = np.frombuffer(codeword, dtype=np.uint8).astype(np.int64)
    pos = np.nonzero(c)[0]
    if pos.size == 0:
        return np.zeros(N_PARITY, dtype=np.int64)
    j = np.arange(N_PARITY, dtype=np.int64)[:, None]
    terms = _EXP[(_LOG[c[pos]][None, :] + j * pos[None, :]) % 255]
    out: NDArray[np.int64] = np.bitwise_xor.reduce(terms, axis=1)
    return out


def _correct_codeword(codeword: bytes, index: int, erasures: list[int]) -> tuple[bytes, int]:
    """Correct c[0..n-1]; ``erasures`` are positions p (of x^p) believed unreliable."""
    if not syndromes(codeword).any():
        return codeword, 0
    n = len(codeword)
    try:
        _, corrected, _ = _codec().decode(
            codeword[::-1], erase_pos=[n - 1 - p for p in erasures] or None
        )
    except reedsolo.ReedSolomonError as exc:
        raise UncorrectableError(index, str(exc)) from exc
    fixed = bytes(corrected[::-1])
    # reedsolo can return a "correction" that is no codeword when errors exceed t.
    if syndromes(fixed).any():
        raise UncorrectableError(index, "correction does not yield a codeword")
    n_fixed = sum(a != b for a, b in zip(codeword, fixed, strict=True))
    if n_fixed > MAX_CORRECTABLE and not erasures:
        raise UncorrectableError(index, f"{n_fixed} corrections exceed {MAX_CORRECTABLE}")
    return fixed, n_fixed


def _codeword_positions(frame_len: int, erasures: Sequence[int]) -> tuple[list[int], list[int]]:
    """Frame byte positions mapped to (codeword 1, codeword 2) coefficient positions."""
    cw1: list[int] = []
    cw2: list[int] = []
    for pos in erasures:
        if PARITY_OFFSET <= pos < PARITY_OFFSET + N_PARITY:
            cw1.append(pos - PARITY_OFFSET)
        elif PARITY_OFFSET + N_PARITY <= pos < MESSAGE_OFFSET:
            cw2.append(pos - PARITY_OFFSET - N_PARITY)
        elif MESSAGE_OFFSET <= pos < frame_len:
            k = pos - MESSAGE_OFFSET
            (cw1 if k % 2 == 0 else cw2).append(N_PARITY + k // 2)
    return cw1, cw2


def correct_frame(frame: bytes, erasures: Sequence[int] = ()) -> EccResult:
    """Correct both codewords of a plain (descrambled) 320- or 518-byte frame.

    ``erasures``: frame byte positions to treat as unknown (e.g. the least reliable
    bytes from the demodulator); each codeword corrects e errors and f erasures
    while 2e + f <= 24. Without erasures a codeword corrects up to 12 errors.
    Raises `UncorrectableError` (with `.codeword` 1 or 2) beyond that,
    `FrameLengthError` for other lengths.
    """
    cw1, cw2 = split_codewords(frame)
    er1, er2 = _codeword_positions(len(frame), erasures)
    fixed1, n1 = _correct_codeword(cw1, 1, er1)
    fixed2, n2 = _correct_codeword(cw2, 2, er2)
    if n1 == 0 and n2 == 0:
        return EccResult(frame, (0, 0))
    out = bytearray(frame)
    out[PARITY_OFFSET : PARITY_OFFSET + N_PARITY] = fixed1[:N_PARITY]
    out[PARITY_OFFSET + N_PARITY : MESSAGE_OFFSET] = fixed2[:N_PARITY]
    out[MESSAGE_OFFSET::2] = fixed1[N_PARITY:]
    out[MESSAGE_OFFSET + 1 :: 2] = fixed2[N_PARITY:]
    return EccResult(bytes(out), (n1, n2))


def encode_parity(frame: bytes) -> bytes:
    """The frame with its 48 parity bytes recomputed from its message bytes.

    For synthesizing test signals and for tests of `correct_frame`.
    """
    cw1, cw2 = split_codewords(frame)
    codec = _codec()
    out = bytearray(frame)
    for cw, offset in ((cw1, PARITY_OFFSET), (cw2, PARITY_OFFSET + N_PARITY)):
        encoded = codec.encode(cw[N_PARITY:][::-1])
        out[offset : offset + N_PARITY] = bytes(encoded[-N_PARITY:][::-1])
    return bytes(out)
