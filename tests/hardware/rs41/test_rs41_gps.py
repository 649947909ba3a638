"""GPS time to UTC, ECEF to WGS84, ECEF velocity to local speed/heading/climb."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from hardware.rs41.gps import (
    WGS84_A_M,
    WGS84_E2,
    ecef_to_geodetic,
    ecef_velocity_to_local,
    gps_leap_seconds,
    gps_to_gps_datetime,
    gps_to_utc,
)


def _geodetic_to_ecef(lat_deg: float, lon_deg: float, h_m: float) -> tuple[float, float, float]:
    lat, lon = math.radians(lat_deg), math.radians(lon_deg)
    n = WGS84_A_M / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    return (
        (n + h_m) * math.cos(lat) * math.cos(lon),
        (n + h_m) * math.cos(lat) * math.sin(lon),
        (n * (1 - WGS84_E2) + h_m) * math.sin(lat),
    )


def test_gps_time_is_17_s_ahead_of_utc_in_2015_and_18_s_from_2017() -> None:
    # The wav's first frame: GPS 2015-08-02T11:59:26.
    assert gps_to_gps_datetime(1856, 43166000) == datetime(2015, 8, 2, 11, 59, 26, tzinfo=UTC)
    assert gps_to_utc(1856, 43166000) == datetime(2015, 8, 2, 11, 59, 9, tzinfo=UTC)
    assert gps_leap_seconds(datetime(2015, 6, 30, 12, tzinfo=UTC)) == 16
    assert gps_leap_seconds(datetime(2016, 12, 31, 12, tzinfo=UTC)) == 17
    assert gps_leap_seconds(datetime(2024, 5, 1, tzinfo=UTC)) == 18


def test_the_leap_second_switches_at_utc_midnight() -> None:
    # GPS 2017-01-01T00:00:17 is UTC 2016-12-31T23:59:60 (still 17 s); one second
    # later the offset is 18 s and UTC reads 2017-01-01T00:00:00.
    assert gps_leap_seconds(datetime(2017, 1, 1, 0, 0, 17, tzinfo=UTC)) == 17
    assert gps_leap_seconds(datetime(2017, 1, 1, 0, 0, 18, tzinfo=UTC)) == 18


@pytest.mark.parametrize(
    ("lat", "lon", "h"),
    [(46.0503, 16.1108, 28410.0), (-30.03, -51.23, 15.0), (89.9, 0.0, 1000.0), (0.0, 179.9, -20.0)],
)
def test_ecef_to_geodetic_round_trips_to_a_millimetre(lat: float, lon: float, h: float) -> None:
    geo = ecef_to_geodetic(*_geodetic_to_ecef(lat, lon, h))
    assert geo.lat_deg == pytest.approx(lat, abs=1e-8)
    assert geo.lon_deg == pytest.approx(lon, abs=1e-8)
    assert geo.alt_m == pytest.approx(h, abs=1e-3)


def test_local_velocity_north_east_and_up() -> None:
    lat, lon = 46.0, 16.0
    p0 = _geodetic_to_ecef(lat, lon, 1000.0)
    p_north = _geodetic_to_ecef(lat + 1e-5, lon, 1000.0)
    p_east = _geodetic_to_ecef(lat, lon + 1e-5, 1000.0)
    p_up = _geodetic_to_ecef(lat, lon, 1010.0)

    def towards(p: tuple[float, float, float], speed: float) -> tuple[float, float, float]:
        d = [b - a for a, b in zip(p0, p, strict=True)]
        norm = math.sqrt(sum(c * c for c in d))
        return d[0] / norm * speed, d[1] / norm * speed, d[2] / norm * speed

    north = ecef_velocity_to_local(lat, lon, *towards(p_north, 10.0))
    assert north.vel_h_mps == pytest.approx(10.0, abs=1e-3)
    assert north.heading_deg == pytest.approx(0.0, abs=0.01) or north.heading_deg > 359.99
    east = ecef_velocity_to_local(lat, lon, *towards(p_east, 5.0))
    assert east.heading_deg == pytest.approx(90.0, abs=0.01)
    assert east.vel_v_mps == pytest.approx(0.0, abs=1e-3)
    up = ecef_velocity_to_local(lat, lon, *towards(p_up, 3.0))
    assert up.vel_v_mps == pytest.approx(3.0, abs=1e-6)
    assert up.vel_h_mps == pytest.approx(0.0, abs=1e-6)
