"""ADS-B airborne velocity (TC 19, BDS 0,9), subtypes 1..4.

ME field (56 bits), bit 0 first::

    0..4 TC=19 | 5..7 ST | 8 IC | 9 IFR | 10..12 NACv |
      ST 1/2 (ground):   13 Dew | 14..23 Vew | 24 Dns | 25..34 Vns
      ST 3/4 (air):      13 SH  | 14..23 HDG | 24 T   | 25..34 AS
    35 VrSrc | 36 Svr | 37..45 VR | 46..47 reserved | 48 SDif | 49..55 dAlt

- Vew/Vns: 0 = n/a, else speed = value - 1 kt (x4 in the supersonic subtypes 2, 4);
  Dew 1 = westward, Dns 1 = southward. Ground speed and track follow from the pair.
- HDG valid when SH = 1: heading = HDG * 360/1024 degrees (magnetic north in practice).
  AS: 0 = n/a, else value - 1 kt (x4 for ST 4); T: 0 = IAS, 1 = TAS.
- VR: 0 = n/a, else (value - 1) * 64 ft/min, Svr 1 = descending. VrSrc: 0 GNSS, 1 baro.
- dAlt: 0 = n/a, else (value - 1) * 25 ft, GNSS height minus baro altitude; SDif 1 =
  GNSS below baro.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.units import FPM_TO_MPS, KT_TO_MPS, fpm_to_mps, kt_to_mps

__all__ = ["FPM_TO_MPS", "KT_TO_MPS", "Velocity", "decode_velocity"]



def _field(me: int, start: int, length: int) -> int:
    return (me >> (56 - start - length)) & ((1 << length) - 1)


class Velocity(NamedTuple):
    """Decoded TC19. Ground subtypes fill speed/track, air subtypes airspeed/heading."""

    subtype: int
    nac_v: int
    speed_kt: float | None  # ground speed
    track_deg: float | None  # ground track, true, clockwise from north
    airspeed_kt: float | None
    airspeed_type: str | None  # "IAS" or "TAS"
    heading_deg: float | None
    vrate_fpm: int | None  # positive climbing
    vrate_source: str | None  # "gnss" or "baro"
    gnss_minus_baro_ft: int | None

    @property
    def speed_mps(self) -> float | None:
        return kt_to_mps(self.speed_kt)

    @property
    def airspeed_mps(self) -> float | None:
        return kt_to_mps(self.airspeed_kt)

    @property
    def vrate_mps(self) -> float | None:
        return fpm_to_mps(self.vrate_fpm)


def decode_velocity(me: int) -> Velocity:
    """Decode the ME of an airborne velocity message (TC 19, subtypes 1..4)."""
    tc = _field(me, 0, 5)
    subtype = _field(me, 5, 3)
    if tc != 19 or not 1 <= subtype <= 4:
        raise UnsupportedTypeCodeError(tc, subtype)
    scale = 4 if subtype in (2, 4) else 1

    speed_kt = track_deg = airspeed_kt = heading_deg = None
    airspeed_type = None
    if subtype <= 2:
        v_ew, v_ns = _field(me, 14, 10), _field(me, 25, 10)
        if v_ew and v_ns:
            east_kt = (v_ew - 1) * scale * (-1 if _field(me, 13, 1) else 1)
            north_kt = (v_ns - 1) * scale * (-1 if _field(me, 24, 1) else 1)
            speed_kt = math.hypot(east_kt, north_kt)
            track_deg = math.degrees(math.atan2(east_kt, north_kt)) % 360.0
    else:
        if _field(me, 13, 1):
            heading_deg = _field(me, 14, 10) * 360.0 / 1024.0
        airspeed = _field(me, 25, 10)
        if airspeed:
            airspeed_kt = float((airspeed - 1) * scale)
            airspeed_type = "TAS" if _field(me, 24, 1) else "IAS"

    vr = _field(me, 37, 9)
    vrate_fpm = None
    if vr:
        vrate_fpm = (vr - 1) * 64 * (-1 if _field(me, 36, 1) else 1)
    d_alt = _field(me, 49, 7)
    gnss_minus_baro_ft = None
    if d_alt:
        gnss_minus_baro_ft = (d_alt - 1) * 25 * (-1 if _field(me, 48, 1) else 1)
    return Velocity(
        subtype=subtype,
        nac_v=_field(me, 10, 3),
        speed_kt=speed_kt,
        track_deg=track_deg,
        airspeed_kt=airspeed_kt,
        airspeed_type=airspeed_type,
        heading_deg=heading_deg,
        vrate_fpm=vrate_fpm,
        vrate_source=None if vrate_fpm is None else ("baro" if _field(me, 35, 1) else "gnss"),
        gnss_minus_baro_ft=gnss_minus_baro_ft,
    )
