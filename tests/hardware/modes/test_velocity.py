"""TC19 airborne velocity: ground speed/track, airspeed/heading, vertical rate."""

from __future__ import annotations

import pytest

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.velocity import FPM_TO_MPS, KT_TO_MPS, decode_velocity


def me_of(hex_msg: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_msg)[4:11], "big")


def ground_me(subtype: int, east_kt: int, north_kt: int, vr_fpm: int = 0) -> int:
    scale = 4 if subtype == 2 else 1
    me = (19 << 51) | (subtype << 48)
    me |= (1 if east_kt < 0 else 0) << 42 | (abs(east_kt) // scale + 1) << 32
    me |= (1 if north_kt < 0 else 0) << 31 | (abs(north_kt) // scale + 1) << 21
    me |= (1 if vr_fpm < 0 else 0) << 19 | (abs(vr_fpm) // 64 + 1) << 10
    return me


def test_ground_speed_subtype_from_the_riddle() -> None:
    v = decode_velocity(me_of("8D485020994409940838175B284F"))
    assert v.subtype == 1
    assert v.speed_kt == pytest.approx(159.20, abs=0.01)
    assert v.track_deg == pytest.approx(182.88, abs=0.01)
    assert (v.vrate_fpm, v.vrate_source, v.gnss_minus_baro_ft) == (-832, "gnss", 550)
    assert v.speed_mps == pytest.approx(159.20 * KT_TO_MPS, abs=0.01)
    assert v.vrate_mps == pytest.approx(-832 * FPM_TO_MPS)
    assert v.airspeed_kt is None and v.heading_deg is None


def test_airspeed_subtype_from_the_riddle() -> None:
    v = decode_velocity(me_of("8DA05F219B06B6AF189400CBC33F"))
    assert (v.subtype, v.airspeed_kt, v.airspeed_type) == (3, 375.0, "TAS")
    assert v.heading_deg == pytest.approx(243.98, abs=0.01)
    assert (v.vrate_fpm, v.vrate_source) == (-2304, "baro")
    assert v.speed_kt is None and v.track_deg is None


def test_heading_zero_is_a_heading() -> None:
    v = decode_velocity(me_of("8D4841409B04000CA04400000000"))
    assert (v.heading_deg, v.airspeed_kt, v.airspeed_type, v.vrate_fpm) == (0.0, 100.0, "IAS", 1024)


@pytest.mark.parametrize(
    ("hex_msg", "vrate_fpm"),
    [("8d3461cf9908388930080f948ea1", 64), ("8d3461cf9908558e100c1071eb67", 128),
     ("8d3461cf99085a8f10400f80e6ac", 960), ("8d394c0f990c4932780838866883", -64)],
)  # fmt: skip
def test_vertical_rate_signs(hex_msg: str, vrate_fpm: int) -> None:
    assert decode_velocity(me_of(hex_msg)).vrate_fpm == vrate_fpm


@pytest.mark.parametrize(
    ("east", "north", "track"), [(0, 100, 0.0), (100, 0, 90.0), (0, -100, 180.0), (-100, 0, 270.0)]
)
def test_track_is_clockwise_from_north(east: int, north: int, track: float) -> None:
    v = decode_velocity(ground_me(1, east, north))
    assert v.track_deg == pytest.approx(track)
    assert v.speed_kt == pytest.approx(100.0)


def test_supersonic_subtype_scales_by_four() -> None:
    v = decode_velocity(ground_me(2, 1200, 1600, vr_fpm=-6400))
    assert v.speed_kt == pytest.approx(2000.0)
    assert v.vrate_fpm == -6400


def test_unavailable_components_give_none() -> None:
    v = decode_velocity((19 << 51) | (1 << 48))
    assert (v.speed_kt, v.track_deg, v.vrate_fpm, v.vrate_source) == (None, None, None, None)


@pytest.mark.parametrize(("tc", "subtype"), [(19, 0), (19, 5), (19, 7), (11, 1)])
def test_reserved_subtypes_are_refused(tc: int, subtype: int) -> None:
    with pytest.raises(UnsupportedTypeCodeError) as err:
        decode_velocity((tc << 51) | (subtype << 48))
    assert (err.value.tc, err.value.subtype) == (tc, subtype)
