"""GPS time and WGS84 conversions for RS41 telemetry.

- GPS time runs ahead of UTC by the leap seconds inserted since 1980-01-06
  (17 s from 2015-07-01, 18 s from 2017-01-01; none since). UTC = GPS - offset.
- ECEF (m) to WGS84 geodetic latitude/longitude (deg) and ellipsoidal height (m):
  Bowring's closed form, refined by two fixed-point iterations (sub-mm at
  radiosonde altitudes).
- ECEF velocity (m/s) rotated into local east/north/up at the position gives the
  horizontal speed, the heading (deg clockwise from true north) and the vertical rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

GPS_EPOCH = datetime(1980, 1, 6, tzinfo=UTC)
SECONDS_PER_WEEK = 7 * 86400

# (first UTC instant of the new offset, GPS - UTC in seconds from then on)
LEAP_SECONDS: tuple[tuple[datetime, int], ...] = tuple(
    (datetime(y, m, 1, tzinfo=UTC), n)
    for (y, m), n in zip(
        [
            (1981, 7),
            (1982, 7),
            (1983, 7),
            (1985, 7),
            (1988, 1),
            (1990, 1),
            (1991, 1),
            (1992, 7),
            (1993, 7),
            (1994, 7),
            (1996, 1),
            (1997, 7),
            (1999, 1),
            (2006, 1),
            (2009, 1),
            (2012, 7),
            (2015, 7),
            (2017, 1),
        ],
        range(1, 19),
        strict=True,
    )
)

WGS84_A_M = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_B_M = WGS84_A_M * (1 - WGS84_F)
WGS84_E2 = WGS84_F * (2 - WGS84_F)
WGS84_EP2 = WGS84_E2 / (1 - WGS84_E2)


@dataclass(frozen=True, slots=True)
class Geodetic:
    """WGS84 latitude and longitude (deg) and ellipsoidal height (m)."""

    lat_deg: float
    lon_deg: float
    alt_m: float


@dataclass(frozen=True, slots=True)
class LocalVelocity:
    """Velocity in the local horizon: horizontal speed (m/s), heading (deg), climb (m/s)."""

    vel_h_mps: float
    heading_deg: float
    vel_v_mps: float


def gps_leap_seconds(gps_time: datetime) -> int:
    """GPS - UTC (s) in effect at a GPS-scale instant."""
    offset = 0
    for start_utc, n in LEAP_SECONDS:
        # The offset n applies once UTC (= GPS - n) has reached its start.
        if gps_time - timedelta(seconds=n) >= start_utc:
            offset = n
    return offset


def gps_to_utc(week: int, tow_ms: int) -> datetime:
    """UTC of a GPS week number (full, not mod 1024) and time of week (ms)."""
    gps_time = GPS_EPOCH + timedelta(weeks=week, milliseconds=tow_ms)
    return gps_time - timedelta(seconds=gps_leap_seconds(gps_time))


def gps_to_gps_datetime(week: int, tow_ms: int) -> datetime:
    """The GPS-scale calendar time (what rs41mod prints), no leap seconds applied."""
    return GPS_EPOCH + timedelta(weeks=week, milliseconds=tow_ms)


def ecef_to_geodetic(x_m: float, y_m: float, z_m: float) -> Geodetic:
    """WGS84 latitude/longitude (deg) and ellipsoidal height (m) of an ECEF point (m)."""
    p = math.hypot(x_m, y_m)
    lon = math.atan2(y_m, x_m)
    theta = math.atan2(z_m * WGS84_A_M, p * WGS84_B_M)
    lat = math.atan2(
        z_m + WGS84_EP2 * WGS84_B_M * math.sin(theta) ** 3,
        p - WGS84_E2 * WGS84_A_M * math.cos(theta) ** 3,
    )
    for _ in range(2):
        n = WGS84_A_M / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        lat = math.atan2(z_m + WGS84_E2 * n * math.sin(lat), p)
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    n = WGS84_A_M / math.sqrt(1 - WGS84_E2 * sin_lat**2)
    # At the poles p / cos(lat) is 0 / 0: use the polar radius instead.
    alt = p / cos_lat - n if abs(cos_lat) > 1e-9 else abs(z_m) - WGS84_B_M
    return Geodetic(math.degrees(lat), math.degrees(lon), alt)


def ecef_velocity_to_local(
    lat_deg: float, lon_deg: float, vx_mps: float, vy_mps: float, vz_mps: float
) -> LocalVelocity:
    """Horizontal speed, heading and vertical rate of an ECEF velocity at a position."""
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    sin_lat, cos_lat = math.sin(lat), math.cos(lat)
    sin_lon, cos_lon = math.sin(lon), math.cos(lon)
    v_east = -sin_lon * vx_mps + cos_lon * vy_mps
    v_north = -sin_lat * cos_lon * vx_mps - sin_lat * sin_lon * vy_mps + cos_lat * vz_mps
    v_up = cos_lat * cos_lon * vx_mps + cos_lat * sin_lon * vy_mps + sin_lat * vz_mps
    heading = math.degrees(math.atan2(v_east, v_north)) % 360.0
    return LocalVelocity(math.hypot(v_east, v_north), heading, v_up)
