"""Airborne (baro / GNSS) and surface position ME fields."""

from __future__ import annotations

import pytest

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.position import (
    KT_TO_MPS,
    decode_airborne_position,
    decode_movement_kt,
    decode_surface_position,
)


def me_of(hex_msg: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_msg)[4:11], "big")


def test_airborne_baro_position_fields() -> None:
    pos = decode_airborne_position(me_of("8D40058B58C901375147EFD09357"))
    assert (pos.tc, pos.altitude_ft, pos.gnss_height_m) == (11, 39000, None)
    assert (pos.cpr.odd, pos.cpr.lat_cpr, pos.cpr.lon_cpr) == (False, 39848, 83951)
    assert not pos.cpr.surface
    assert pos.alt_m == pytest.approx(39000 * 0.3048)


def test_gnss_height_is_metres_above_the_ellipsoid() -> None:
    me = (20 << 51) | (1234 << 36) | (1 << 34) | (5 << 17) | 7
    pos = decode_airborne_position(me)
    assert (pos.tc, pos.altitude_ft, pos.gnss_height_m, pos.alt_m) == (20, None, 1234, 1234.0)
    assert (pos.cpr.odd, pos.cpr.lat_cpr, pos.cpr.lon_cpr) == (True, 5, 7)


def test_surveillance_status_and_time_flag() -> None:
    pos = decode_airborne_position((11 << 51) | (2 << 49) | (1 << 35))
    assert (pos.surveillance_status, pos.utc_sync, pos.altitude_ft) == (2, True, None)


@pytest.mark.parametrize(
    ("hex_msg", "speed_kt"),
    [
        ("8c3944f8400002acb23cda192b95", None),
        ("903a33ff40100858d34ff3cce976", 0.0),
        ("8c394c0f389b1667e947db7bb8bc", 1.0),
        ("8c3461cf398d60597b4ea434c4d7", 7.5),
        ("8c3461cf399d6059814ea81483a9", 8.0),
        ("8c3461cf3a7f3059c94e5bf4e169", 15.0),
        ("8c3950cf3dede47bac304d3b5122", 70.0),
        ("8c3933203edde47b9e2ffa5e77b8", 100.0),
        ("8d3933203fcde2a84e39e1c6c5bc", 175.0),
    ],
)
def test_surface_movement_from_published_frames(hex_msg: str, speed_kt: float | None) -> None:
    pos = decode_surface_position(me_of(hex_msg))
    assert pos.speed_kt == speed_kt
    assert pos.cpr.surface


@pytest.mark.parametrize(
    ("code", "speed_kt"),
    [(0, None), (1, 0.0), (2, 0.125), (8, 0.875), (9, 1.0), (12, 1.75), (13, 2.0),
     (38, 14.5), (39, 15.0), (93, 69.0), (94, 70.0), (108, 98.0), (109, 100.0),
     (123, 170.0), (124, 175.0), (125, None), (127, None)],
)  # fmt: skip
def test_movement_code_table_edges(code: int, speed_kt: float | None) -> None:
    assert decode_movement_kt(code) == speed_kt


def test_surface_track_only_when_valid() -> None:
    valid = decode_surface_position((6 << 51) | (39 << 44) | (1 << 43) | (32 << 36))
    assert valid.track_deg == 90.0
    assert valid.speed_mps == pytest.approx(15.0 * KT_TO_MPS)
    assert decode_surface_position((6 << 51) | (32 << 36)).track_deg is None


@pytest.mark.parametrize("tc", [0, 4, 19, 23, 31])
def test_non_position_type_codes_are_refused(tc: int) -> None:
    with pytest.raises(UnsupportedTypeCodeError):
        decode_airborne_position(tc << 51)
    with pytest.raises(UnsupportedTypeCodeError):
        decode_surface_position(tc << 51)
