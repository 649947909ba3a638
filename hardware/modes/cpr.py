"""Compact Position Reporting (CPR): ADS-B latitude/longitude in 17+17 bits.

ME bits 21..55 of an airborne (TC 9..18, 20..22) or surface (TC 5..8) position::

    bit 21   22 ............ 38   39 ............ 55
        F    YZ (lat, 17 bits)     XZ (lon, 17 bits)       F: 0 = even, 1 = odd

Each format divides the sphere into latitude zones of size Dlat = A / (60 - i)
(i = 0 even, 1 odd; A = 360 degrees airborne, 90 degrees surface), and each latitude
band into NL(lat) - i longitude zones (at least 1); YZ/2^17 and XZ/2^17 are the
position within a zone. NL(lat) is the number of even longitude zones at a
latitude (59 at the equator, 1 poleward of 87 degrees), from the closed form of
DO-260B A.1.7.2 evaluated once into a table of transition latitudes.

- Global decoding combines one even and one odd frame (received within 10 s of each
  other for airborne, 50 s for slow surface traffic: the caller enforces that); both
  latitudes must fall in the same NL zone, and the newest frame's format sets the
  longitude zone count. Surface frames cover only a quarter of the globe per zone
  cycle, so a reference position picks the hemisphere and the 90-degree quadrant.
- Local decoding needs one frame and a reference within half a zone: about 333 km
  airborne (``AIRBORNE_HALF_ZONE_M``), 83 km on the surface (``SURFACE_HALF_ZONE_M``).
  Beyond that it silently yields an alias one zone away, so callers must guarantee the
  bound (see aircraft.py).

Latitudes are degrees north in [-90, 90], longitudes degrees east in [-180, 180).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import NamedTuple

from hardware.modes.errors import CprError

__all__ = [
    "AIRBORNE_HALF_ZONE_M",
    "CPR_SCALE",
    "NL_TRANSITIONS_DEG",
    "NZ",
    "SURFACE_HALF_ZONE_M",
    "CprFrame",
    "global_airborne",
    "global_surface",
    "local_airborne",
    "local_decode",
    "local_surface",
    "nl",
]

NZ = 15  # latitude zones per hemisphere quarter (4 * NZ = 60 even zones)
CPR_SCALE = float(1 << 17)

_M_PER_DEG_LAT = 111_195.0  # mean Earth radius 6371 km
#: Half an even latitude zone: a local-decode reference must be closer than this.
AIRBORNE_HALF_ZONE_M = 3.0 * _M_PER_DEG_LAT
SURFACE_HALF_ZONE_M = 0.75 * _M_PER_DEG_LAT


def _transition_deg(n: int) -> float:
    """Latitude (degrees) up to which NL >= n, from NL's closed form."""
    a = 1.0 - math.cos(math.pi / (2 * NZ))
    return math.degrees(math.acos(math.sqrt(a / (1.0 - math.cos(2.0 * math.pi / n)))))


#: Transition latitudes for NL = 59, 58, ..., 2 (ascending): NL(lat) >= n iff
#: |lat| <= NL_TRANSITIONS_DEG[59 - n]. The last one is exactly 87 by definition.
NL_TRANSITIONS_DEG: tuple[float, ...] = (*(_transition_deg(n) for n in range(59, 2, -1)), 87.0)


def nl(lat_deg: float) -> int:
    """Number of even longitude zones at `lat_deg`: 59 at the equator .. 2 at 87, 1 beyond."""
    return 59 - bisect_left(NL_TRANSITIONS_DEG, abs(lat_deg))


class CprFrame(NamedTuple):
    """One CPR-encoded position as sent: format, the two 17-bit fields, surface or not.
    (A named tuple, like the other records built per message: a frozen dataclass
    takes ~0.2 us a field to build.)"""

    odd: bool
    lat_cpr: int
    lon_cpr: int
    surface: bool = False


def _wrap_lon(lon_deg: float) -> float:
    return (lon_deg + 180.0) % 360.0 - 180.0


def _zone_lats(lat_even_cpr: int, lat_odd_cpr: int, span_deg: float) -> tuple[float, float]:
    """Both candidate latitudes of a global decode, in [0, span_deg)."""
    y_even = lat_even_cpr / CPR_SCALE
    y_odd = lat_odd_cpr / CPR_SCALE
    j = math.floor(59.0 * y_even - 60.0 * y_odd + 0.5)
    lat_even = span_deg / 60.0 * (j % 60 + y_even)
    lat_odd = span_deg / 59.0 * (j % 59 + y_odd)
    return lat_even, lat_odd


def _global_lon(
    lon_even_cpr: int, lon_odd_cpr: int, odd_newer: bool, lat_deg: float, span_deg: float
) -> float:
    zones = nl(lat_deg)
    i = 1 if odd_newer else 0
    ni = max(zones - i, 1)
    x_even = lon_even_cpr / CPR_SCALE
    x_odd = lon_odd_cpr / CPR_SCALE
    m = math.floor(x_even * (zones - 1) - x_odd * zones + 0.5)
    return span_deg / ni * (m % ni + (x_odd if odd_newer else x_even))


def global_airborne(
    lat_even_cpr: int, lon_even_cpr: int, lat_odd_cpr: int, lon_odd_cpr: int, odd_newer: bool
) -> tuple[float, float]:
    """Airborne position (lat_deg, lon_deg) from an even/odd pair; the newer one's fix.

    Raises CprError when the two latitudes straddle an NL transition (the aircraft
    crossed it between the frames, or the frames belong to different positions).
    """
    lat_even, lat_odd = _zone_lats(lat_even_cpr, lat_odd_cpr, 360.0)
    if lat_even >= 270.0:
        lat_even -= 360.0
    if lat_odd >= 270.0:
        lat_odd -= 360.0
    if abs(lat_even) > 90.0 or abs(lat_odd) > 90.0:
        raise CprError("latitude out of range")
    if nl(lat_even) != nl(lat_odd):
        raise CprError("latitude zones differ")
    lat = lat_odd if odd_newer else lat_even
    lon = _global_lon(lon_even_cpr, lon_odd_cpr, odd_newer, lat, 360.0)
    return lat, _wrap_lon(lon)


def _angle_between_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def global_surface(
    lat_even_cpr: int,
    lon_even_cpr: int,
    lat_odd_cpr: int,
    lon_odd_cpr: int,
    odd_newer: bool,
    ref_lat_deg: float,
    ref_lon_deg: float,
) -> tuple[float, float]:
    """Surface position from an even/odd pair; the reference (receiver) resolves the
    hemisphere and the 90-degree longitude quadrant. Raises CprError on zone mismatch.
    """
    lat_even, lat_odd = _zone_lats(lat_even_cpr, lat_odd_cpr, 90.0)
    # Northern solutions are in [0, 90); the southern ones are 90 degrees lower.
    if abs(lat_even - 90.0 - ref_lat_deg) < abs(lat_even - ref_lat_deg):
        lat_even -= 90.0
        lat_odd -= 90.0
    if nl(lat_even) != nl(lat_odd):
        raise CprError("latitude zones differ")
    lat = lat_odd if odd_newer else lat_even
    lon0 = _global_lon(lon_even_cpr, lon_odd_cpr, odd_newer, lat, 90.0)
    lon = min(
        (_wrap_lon(lon0 + 90.0 * k) for k in range(4)),
        key=lambda cand: _angle_between_deg(cand, ref_lon_deg),
    )
    return lat, lon


def _zone_index(ref_zones: float, frac: float) -> int:
    """Index of the zone whose position `frac` lies nearest the reference.

    `ref_zones` is the reference in units of zones. The fraction is taken from the same
    quotient: computing it with a separate float modulo can disagree with the floor by a
    whole zone when the reference sits on a zone edge.
    """
    whole = math.floor(ref_zones)
    return whole + math.floor(0.5 + (ref_zones - whole) - frac)


def _local(
    odd: bool,
    lat_cpr: int,
    lon_cpr: int,
    ref_lat_deg: float,
    ref_lon_deg: float,
    span_deg: float,
) -> tuple[float, float]:
    i = 1 if odd else 0
    y = lat_cpr / CPR_SCALE
    x = lon_cpr / CPR_SCALE
    dlat = span_deg / (60 - i)
    lat = dlat * (_zone_index(ref_lat_deg / dlat, y) + y)
    if abs(lat) > 90.0:
        raise CprError("latitude out of range")
    dlon = span_deg / max(nl(lat) - i, 1)
    return lat, _wrap_lon(dlon * (_zone_index(ref_lon_deg / dlon, x) + x))


def local_airborne(
    odd: bool, lat_cpr: int, lon_cpr: int, ref_lat_deg: float, ref_lon_deg: float
) -> tuple[float, float]:
    """Airborne position from one frame and a reference less than half a zone away."""
    return _local(odd, lat_cpr, lon_cpr, ref_lat_deg, ref_lon_deg, 360.0)


def local_surface(
    odd: bool, lat_cpr: int, lon_cpr: int, ref_lat_deg: float, ref_lon_deg: float
) -> tuple[float, float]:
    """Surface position from one frame and a reference within about 83 km."""
    return _local(odd, lat_cpr, lon_cpr, ref_lat_deg, ref_lon_deg, 90.0)


def local_decode(frame: CprFrame, ref_lat_deg: float, ref_lon_deg: float) -> tuple[float, float]:
    """Local decode of `frame` (airborne or surface) against a reference position."""
    decode = local_surface if frame.surface else local_airborne
    return decode(frame.odd, frame.lat_cpr, frame.lon_cpr, ref_lat_deg, ref_lon_deg)
