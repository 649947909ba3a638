"""Mode A identity (squawk) from the 13-bit ID field of DF5/21 and ADS-B TC28.

ID13 occupies message bits 19..31 of DF5/21; most significant bit first::

    C1 A1 C2 A2 C4 A4  X B1 D1 B2 D2 B4 D4

The four octal digits of the squawk are A = A4 A2 A1, B = B4 B2 B1, C = C4 C2 C1,
D = D4 D2 D1. X is unused.
"""

from __future__ import annotations

from hardware.modes.errors import FieldError

__all__ = ["EMERGENCY_SQUAWKS", "decode_id13"]

#: Squawks with an assigned meaning: unlawful interference, radio failure, emergency.
EMERGENCY_SQUAWKS = {"7500": "hijack", "7600": "radio failure", "7700": "emergency"}


def _digit(id13: int, pos4: int, pos2: int, pos1: int) -> int:
    return (((id13 >> pos4) & 1) << 2) | (((id13 >> pos2) & 1) << 1) | ((id13 >> pos1) & 1)


def decode_id13(id13: int) -> str:
    """Squawk as four octal digits, e.g. '7700', from the 13-bit ID field."""
    if not 0 <= id13 < 1 << 13:
        raise FieldError("id13", id13, "not a 13-bit value")
    a = _digit(id13, 7, 9, 11)
    b = _digit(id13, 1, 3, 5)
    c = _digit(id13, 8, 10, 12)
    d = _digit(id13, 0, 2, 4)
    return f"{a}{b}{c}{d}"
