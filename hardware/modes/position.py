"""ADS-B position messages: airborne (TC 9..18 baro, 20..22 GNSS) and surface (TC 5..8).

ME field (56 bits), bit 0 first::

    airborne  0..4 TC | 5..6 SS | 7 NIC-B | 8..19 ALT | 20 T | 21 F | 22..38 LAT | 39..55 LON
    surface   0..4 TC | 5..11 MOV | 12 S | 13..19 TRK | 20 T | 21 F | 22..38 LAT | 39..55 LON

- ALT: TC 9..18 barometric altitude as AC12 (see altitude.py); TC 20..22 GNSS height
  above the WGS84 ellipsoid as a plain 12-bit count of metres. 0 = not available.
- SS surveillance status: 0 none, 1 permanent alert, 2 temporary alert, 3 SPI.
- F: CPR format (0 even, 1 odd); LAT/LON: CPR fields, see cpr.py.
- MOV ground speed, non-linear (knots): 0 n/a; 1 stopped; 2..8 step 0.125 from 0.125;
  9..12 step 0.25 from 1; 13..38 step 0.5 from 2; 39..93 step 1 from 15; 94..108
  step 2 from 70; 109..123 step 5 from 100; 124 >= 175; 125..127 reserved (n/a).
- S = 1: TRK valid, ground track = TRK * 360/128 degrees clockwise from true north.
"""

from __future__ import annotations

from typing import NamedTuple

from hardware.modes.altitude import decode_ac12
from hardware.modes.cpr import CprFrame
from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.units import FT_TO_M, KT_TO_MPS, kt_to_mps

__all__ = [
    "KT_TO_MPS",
    "AirbornePosition",
    "SurfacePosition",
    "decode_airborne_position",
    "decode_movement_kt",
    "decode_surface_position",
]


# (first code, speed at first code in kt, step in kt) for the movement field.
_MOVEMENT_STEPS = (
    (2, 0.125, 0.125),
    (9, 1.0, 0.25),
    (13, 2.0, 0.5),
    (39, 15.0, 1.0),
    (94, 70.0, 2.0),
    (109, 100.0, 5.0),
)


def _field(me: int, start: int, length: int) -> int:
    return (me >> (56 - start - length)) & ((1 << length) - 1)


def _cpr(me: int, surface: bool) -> CprFrame:
    return CprFrame(
        odd=bool(_field(me, 21, 1)),
        lat_cpr=_field(me, 22, 17),
        lon_cpr=_field(me, 39, 17),
        surface=surface,
    )


class AirbornePosition(NamedTuple):
    """Decoded airborne position ME: altitude and the CPR frame (position needs cpr.py)."""

    tc: int
    surveillance_status: int
    altitude_ft: int | None  # barometric (TC 9..18), else None
    gnss_height_m: int | None  # GNSS height above the ellipsoid (TC 20..22), else None
    utc_sync: bool
    cpr: CprFrame

    @property
    def alt_m(self) -> float | None:
        """Altitude in metres: baro converted from feet, or the GNSS height."""
        if self.altitude_ft is not None:
            return self.altitude_ft * FT_TO_M
        return None if self.gnss_height_m is None else float(self.gnss_height_m)


class SurfacePosition(NamedTuple):
    """Decoded surface position ME."""

    tc: int
    speed_kt: float | None
    track_deg: float | None
    utc_sync: bool
    cpr: CprFrame

    @property
    def speed_mps(self) -> float | None:
        return kt_to_mps(self.speed_kt)


def decode_airborne_position(me: int) -> AirbornePosition:
    """Decode the ME of TC 9..18 (baro altitude) or 20..22 (GNSS height)."""
    tc = _field(me, 0, 5)
    alt_code = _field(me, 8, 12)
    if 9 <= tc <= 18:
        altitude_ft, gnss_m = decode_ac12(alt_code), None
    elif 20 <= tc <= 22:
        altitude_ft, gnss_m = None, (alt_code or None)
    else:
        raise UnsupportedTypeCodeError(tc)
    return AirbornePosition(
        tc=tc,
        surveillance_status=_field(me, 5, 2),
        altitude_ft=altitude_ft,
        gnss_height_m=gnss_m,
        utc_sync=bool(_field(me, 20, 1)),
        cpr=_cpr(me, surface=False),
    )


def decode_movement_kt(movement: int) -> float | None:
    """Ground speed in knots from the 7-bit surface movement code, None if unavailable."""
    if movement == 1:
        return 0.0
    if movement == 124:
        return 175.0
    for first, base_kt, step_kt in reversed(_MOVEMENT_STEPS):
        if first <= movement < 124:
            return base_kt + (movement - first) * step_kt
    return None  # 0 (no information) and the reserved codes 125..127


def decode_surface_position(me: int) -> SurfacePosition:
    """Decode the ME of TC 5..8 (surface position, ground speed and track)."""
    tc = _field(me, 0, 5)
    if not 5 <= tc <= 8:
        raise UnsupportedTypeCodeError(tc)
    track_valid = _field(me, 12, 1)
    return SurfacePosition(
        tc=tc,
        speed_kt=decode_movement_kt(_field(me, 5, 7)),
        track_deg=_field(me, 13, 7) * 360.0 / 128.0 if track_valid else None,
        utc_sync=bool(_field(me, 20, 1)),
        cpr=_cpr(me, surface=True),
    )
