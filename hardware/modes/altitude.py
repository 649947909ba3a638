"""Mode S altitude codes: AC13 (DF0/4/16/20) and AC12 (ADS-B airborne position).

AC13 sits in message bits 19..31 of DF0/4/16/20; AC12 in ME bits 8..19 of the ADS-B
airborne position (message bits 40..51). Field layout, most significant bit first::

    AC13:  C1 A1 C2 A2 C4 A4  M B1  Q B2 D2 B4 D4
    AC12:  C1 A1 C2 A2 C4 A4    B1  Q B2 D2 B4 D4      (no M bit)

- all zero: altitude not available (None).
- M = 1: metric altitude. Not used in practice and its coding is left open by the
  standard: rejected with FieldError.
- Q = 1: 25 ft steps. The 11 bits left after removing M and Q are N, and
  altitude_ft = 25 * N - 1000 (range -1000 .. 50175 ft).
- Q = 0: Gillham code (Mode C, 100 ft steps), with D1 in the Q position. The nine
  bits D1 D2 D4 A1 A2 A4 B1 B2 B4 are a reflected Gray code counting 500 ft steps,
  C1 C2 C4 a Gray code of the 100 ft step within them, running backwards when the
  500 ft count is odd; altitude_ft = 500 * n500 + 100 * n100 - 1300.

Altitudes are barometric (pressure altitude referenced to 1013.25 hPa), in feet.
"""

from __future__ import annotations

from hardware.modes.errors import FieldError
from hardware.modes.units import FT_TO_M

__all__ = ["FT_TO_M", "decode_ac12", "decode_ac13", "gillham_to_ft", "gray_to_binary"]


_M_BIT = 1 << 6
_Q_BIT = 1 << 4

# Bit positions inside the 13-bit AC13/ID13 layout (12 = first on air).
_C1, _A1, _C2, _A2, _C4, _A4, _B1, _D1, _B2, _D2, _B4, _D4 = 12, 11, 10, 9, 8, 7, 5, 4, 3, 2, 1, 0


def gray_to_binary(gray: int) -> int:
    """Convert a reflected binary Gray code (up to 16 bits) to its binary value."""
    value = gray
    value ^= value >> 1
    value ^= value >> 2
    value ^= value >> 4
    value ^= value >> 8
    return value


def _bit(code: int, pos: int) -> int:
    return (code >> pos) & 1


def gillham_to_ft(code13: int) -> int:
    """Altitude in feet from a Gillham (Mode C) code in the 13-bit AC13 layout.

    The M and Q positions are ignored except that Q is D1. Raises FieldError for codes
    no encoder produces (100 ft part 0, 5 or 6 after Gray decoding).
    """
    gray500 = 0
    for pos in (_D1, _D2, _D4, _A1, _A2, _A4, _B1, _B2, _B4):
        gray500 = (gray500 << 1) | _bit(code13, pos)
    gray100 = (_bit(code13, _C1) << 2) | (_bit(code13, _C2) << 1) | _bit(code13, _C4)
    n500 = gray_to_binary(gray500)
    n100 = gray_to_binary(gray100)
    if n100 in (0, 5, 6):
        raise FieldError("gillham", code13, "illegal C-bit pattern")
    if n100 == 7:
        n100 = 5
    if n500 & 1:
        n100 = 6 - n100
    return n500 * 500 + n100 * 100 - 1300


def decode_ac13(ac13: int) -> int | None:
    """Barometric altitude in feet from the 13-bit AC field, None when not available."""
    if not 0 <= ac13 < 1 << 13:
        raise FieldError("ac13", ac13, "not a 13-bit value")
    if ac13 == 0:
        return None
    if ac13 & _M_BIT:
        raise FieldError("ac13", ac13, "metric altitude not supported")
    if ac13 & _Q_BIT:
        n = ((ac13 >> 7) << 5) | (((ac13 >> 5) & 1) << 4) | (ac13 & 0xF)
        return 25 * n - 1000
    return gillham_to_ft(ac13)


def decode_ac12(ac12: int) -> int | None:
    """Barometric altitude in feet from the 12-bit ADS-B altitude field, None if absent."""
    if not 0 <= ac12 < 1 << 12:
        raise FieldError("ac12", ac12, "not a 12-bit value")
    # Re-insert M = 0 above B1 to get the AC13 layout.
    return decode_ac13(((ac12 & 0xFC0) << 1) | (ac12 & 0x3F))
