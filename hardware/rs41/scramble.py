"""RS41 data whitening.

On air every byte of a frame, header included, is XORed with a 64-byte mask,
repeating (``on_air[i] = frame[i] ^ MASK[i % 64]``); bytes go out LSB first. The
mask is the one published in rs1729/RS ``demod/mod/rs41mod.c``; it is the output of
a linear feedback register: ``m[i+16] = m[i] ^ m[i+2] ^ m[i+4] ^ m[i+6]`` for
i = 8..55 (indices mod 64), which `tests/hardware/rs41/test_scramble.py` checks.

::

    on air    10 B6 CA 11 22 96 12 F8 | ...
    mask      96 83 3E 51 B1 49 08 98 | ...
    frame     86 35 F4 40 93 DF 1A 60 | RS parity (48) | 0F/F0 | blocks ...
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

MASK = bytes.fromhex(
    "96833E51B1490898"
    "3205590EF944C626"
    "2160C2EA795D6DA1"
    "5469470CDCE85CF1"
    "F776827F0799A22C"
    "937C3063F5102E61"
    "D0BCB4B606AAF423"
    "786E3BAEBF7B4CC1"
)

HEADER_ON_AIR = bytes.fromhex("10B6CA11229612F8")
HEADER_PLAIN = bytes(a ^ b for a, b in zip(HEADER_ON_AIR, MASK, strict=False))

_MASK_U8: NDArray[np.uint8] = np.frombuffer(MASK, dtype=np.uint8)


def descramble(on_air: bytes) -> bytes:
    """The plain frame from its on-air bytes (XOR with the repeating mask)."""
    return _xor_mask(on_air)


def scramble(frame: bytes) -> bytes:
    """The on-air bytes of a plain frame (the same XOR: the mask is its own inverse)."""
    return _xor_mask(frame)


def _xor_mask(data: bytes) -> bytes:
    buf = np.frombuffer(data, dtype=np.uint8)
    mask = np.resize(_MASK_U8, buf.size)
    return (buf ^ mask).tobytes()
