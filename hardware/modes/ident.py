"""ADS-B aircraft identification and category (type codes 1..4, BDS 0,8).

ME field (56 bits), most significant bit first::

    bits  0..4   5..7   8..13  14..19  ...  50..55
          TC     CA     C1     C2           C8         (8 characters of 6 bits)

Characters use the ICAO 6-bit subset of IA-5: 1..26 = A..Z, 32 = space, 48..57 =
digits; other values are illegal and decode to '#'. The emitter category is a set
chosen by TC (4 = A, 3 = B, 2 = C, 1 = D) and the 3-bit CA within it (0 = no info).
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.modes.errors import UnsupportedTypeCodeError

__all__ = ["CATEGORY_NAMES", "Identification", "decode_callsign", "decode_identification"]

_CHARSET = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"

#: Emitter category names (DO-260B 2.2.3.2.5.2) keyed by set letter + CA, e.g. "A3".
CATEGORY_NAMES = {
    "A1": "light (< 15500 lb)",
    "A2": "small (15500 to 75000 lb)",
    "A3": "large (75000 to 300000 lb)",
    "A4": "high vortex large",
    "A5": "heavy (> 300000 lb)",
    "A6": "high performance (> 5 g, > 400 kt)",
    "A7": "rotorcraft",
    "B1": "glider / sailplane",
    "B2": "lighter than air",
    "B3": "parachutist / skydiver",
    "B4": "ultralight / hang glider / paraglider",
    "B6": "unmanned aerial vehicle",
    "B7": "space / trans-atmospheric vehicle",
    "C1": "surface vehicle - emergency",
    "C2": "surface vehicle - service",
    "C3": "point obstacle",
    "C4": "cluster obstacle",
    "C5": "line obstacle",
}


@dataclass(frozen=True, slots=True)
class Identification:
    """Decoded TC1..4: callsign (spaces stripped) and emitter category."""

    tc: int
    callsign: str
    category: str  # set letter + CA, e.g. "A3"; "A0" etc. mean "no category information"
    category_name: str | None  # human-readable, None when there is no information


def decode_callsign(chars48: int) -> str:
    """Eight 6-bit characters (48 bits, first character most significant), spaces stripped."""
    chars = [_CHARSET[(chars48 >> (42 - 6 * i)) & 0x3F] for i in range(8)]
    return "".join(chars).strip(" ")


def decode_identification(me: int) -> Identification:
    """Decode the 56-bit ME field of an identification message (TC 1..4)."""
    tc = me >> 51
    if not 1 <= tc <= 4:
        raise UnsupportedTypeCodeError(tc)
    ca = (me >> 48) & 0x7
    category = f"{'DCBA'[tc - 1]}{ca}"
    return Identification(
        tc=tc,
        callsign=decode_callsign(me & ((1 << 48) - 1)),
        category=category,
        category_name=CATEGORY_NAMES.get(category),
    )
