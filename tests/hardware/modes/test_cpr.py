"""CPR: NL table, global and local decoding, zone edges, poles and the antimeridian."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.modes.aircraft import distance_m
from hardware.modes.cpr import (
    NL_TRANSITIONS_DEG,
    CprFrame,
    global_airborne,
    global_surface,
    local_airborne,
    local_decode,
    local_surface,
    nl,
)
from hardware.modes.errors import CprError


def nl_formula(lat_deg: float) -> int:
    """DO-260B A.1.7.2 closed form, the oracle for the table."""
    if lat_deg == 0:
        return 59
    if abs(lat_deg) == 87:
        return 2
    if abs(lat_deg) > 87:
        return 1
    a = 1 - math.cos(math.pi / 30)
    b = math.cos(math.radians(abs(lat_deg))) ** 2
    return math.floor(2 * math.pi / math.acos(1 - a / b))


def encode(lat_deg: float, lon_deg: float, odd: bool, surface: bool = False) -> CprFrame:
    """DO-260B A.1.7.3 CPR encoder, used as the oracle for the decoders."""
    i = 1 if odd else 0
    span = 90.0 if surface else 360.0
    dlat = span / (60 - i)
    yz = math.floor((1 << 17) * (lat_deg % dlat) / dlat + 0.5)
    rlat = dlat * (yz / (1 << 17) + math.floor(lat_deg / dlat))
    zones = nl(rlat) - i
    dlon = span / zones if zones > 0 else span
    xz = math.floor((1 << 17) * (lon_deg % dlon) / dlon + 0.5)
    return CprFrame(odd, yz % (1 << 17), xz % (1 << 17), surface)


def decode_pair(lat: float, lon: float, odd_newer: bool = True) -> tuple[float, float]:
    even, odd = encode(lat, lon, False), encode(lat, lon, True)
    return global_airborne(even.lat_cpr, even.lon_cpr, odd.lat_cpr, odd.lon_cpr, odd_newer)


def fields(hex_msg: str) -> CprFrame:
    me = int.from_bytes(bytes.fromhex(hex_msg)[4:11], "big")
    return CprFrame(bool(me >> 34 & 1), me >> 17 & 0x1FFFF, me & 0x1FFFF, 5 <= me >> 51 <= 8)


EVEN = fields("8D40058B58C901375147EFD09357")
ODD = fields("8D40058B58C904A87F402D3B8C59")


def test_nl_table_matches_the_closed_form_on_a_fine_grid() -> None:
    for k in range(-9000, 9001):
        lat = k / 100.0
        assert nl(lat) == nl_formula(lat), lat


@pytest.mark.parametrize(
    ("lat", "expected"),
    [(0.0, 59), (45.0, 42), (80.0, 10), (87.0, 2), (-87.0, 2), (87.0001, 1), (90.0, 1)],
)
def test_nl_known_values(lat: float, expected: int) -> None:
    assert nl(lat) == expected


@pytest.mark.parametrize(
    ("boundary", "above"), [(10.47047130, 58), (14.82817437, 57), (86.53536998, 2)]
)
def test_nl_steps_down_at_the_published_transition_latitudes(boundary: float, above: int) -> None:
    assert nl(boundary - 1e-6) == above + 1
    assert nl(boundary + 1e-6) == above
    assert nl(-(boundary + 1e-6)) == above


def test_nl_transitions_are_ascending_and_end_at_87() -> None:
    assert len(NL_TRANSITIONS_DEG) == 58
    assert list(NL_TRANSITIONS_DEG) == sorted(NL_TRANSITIONS_DEG)
    assert NL_TRANSITIONS_DEG[-1] == 87.0


def test_global_decode_of_the_riddle_pair() -> None:
    lat, lon = global_airborne(EVEN.lat_cpr, EVEN.lon_cpr, ODD.lat_cpr, ODD.lon_cpr, True)
    assert (lat, lon) == pytest.approx((49.81755, 6.08442), abs=1e-5)
    lat, lon = global_airborne(EVEN.lat_cpr, EVEN.lon_cpr, ODD.lat_cpr, ODD.lon_cpr, False)
    assert (lat, lon) == pytest.approx((49.82410, 6.06785), abs=1e-5)


def test_local_decode_of_the_riddle_frames() -> None:
    assert local_decode(EVEN, 49.0, 6.0) == pytest.approx((49.82410, 6.06785), abs=1e-5)
    assert local_decode(ODD, 49.0, 6.0) == pytest.approx((49.81755, 6.08442), abs=1e-5)


def test_local_decode_with_the_reference_on_a_zone_edge() -> None:
    # Reference exactly 5 odd zones north and 5 lon zones east: float rounding must not
    # move the answer a whole zone.
    frame = fields("8D06A15358BF17FF7D4A84B47B95")
    lat, lon = local_airborne(frame.odd, frame.lat_cpr, frame.lon_cpr, 360 / 59 * 5, 36 + 3e-15)
    assert (lat, lon) == pytest.approx((30.50540, 33.44787), abs=1e-5)


def test_global_decode_refuses_pairs_that_straddle_an_nl_transition() -> None:
    with pytest.raises(CprError) as err:
        global_airborne(8192, 0, 114688, 0, False)
    assert err.value.reason == "latitude zones differ"


@given(
    lat=st.floats(min_value=-89.99, max_value=89.99),
    lon=st.floats(min_value=-180.0, max_value=179.9999),
    odd_newer=st.booleans(),
)
def test_global_airborne_round_trips_anywhere(lat: float, lon: float, odd_newer: bool) -> None:
    try:
        got = decode_pair(lat, lon, odd_newer)
    except CprError:
        # Only legal within a CPR quantum (~5 m) of an NL transition.
        assert min(abs(abs(lat) - t) for t in NL_TRANSITIONS_DEG) < 1e-4
        return
    assert distance_m(lat, lon, *got) < cpr_quantum_m(lat)


def cpr_quantum_m(lat: float) -> float:
    """Worst-case rounding error of a 17-bit airborne CPR fix at `lat`, plus 1 m of slack.

    Latitude steps are 6 deg / 2^17 (~5.1 m); longitude steps are 360 / max(NL - 1, 1)
    / 2^17 degrees, which near the poles (NL 1-2) grow past 14 m on the ground.
    """
    lat_step_m = 360 / 60 / 2**17 * 111_195
    lon_step_m = 360 / max(nl(lat) - 1, 1) / 2**17 * 111_195 * math.cos(math.radians(lat))
    return 0.5 * math.hypot(lat_step_m, lon_step_m) + 1.0


@pytest.mark.parametrize("boundary", [NL_TRANSITIONS_DEG[0], NL_TRANSITIONS_DEG[30], 87.0])
@pytest.mark.parametrize("offset", [-0.01, 0.01])
def test_global_decode_either_side_of_nl_transitions(boundary: float, offset: float) -> None:
    for sign in (1, -1):
        lat = sign * (boundary + offset)
        got = decode_pair(lat, 20.0)
        assert distance_m(lat, 20.0, *got) < 6.0


@pytest.mark.parametrize("lat", [87.5, 89.9, -88.0, -89.9])
def test_global_decode_near_the_poles(lat: float) -> None:
    for lon in (-179.0, 0.0, 123.4):
        assert distance_m(lat, lon, *decode_pair(lat, lon)) < 6.0


@pytest.mark.parametrize("lon", [179.9999, -179.9999, 180.0, -180.0])
def test_global_decode_across_the_antimeridian(lon: float) -> None:
    lat, got_lon = decode_pair(52.0, lon)
    assert -180.0 <= got_lon < 180.0
    assert distance_m(52.0, lon, lat, got_lon) < 6.0


@pytest.mark.parametrize(
    ("lat", "lon"), [(0.0, 0.0), (6.0, 0.0), (-30.0, 179.99), (70.0, -179.99), (86.9, 10.0)]
)
def test_global_decode_on_latitude_zone_edges(lat: float, lon: float) -> None:
    assert distance_m(lat, lon, *decode_pair(lat, lon)) < 6.0


@given(
    lat=st.floats(min_value=-85.0, max_value=85.0),
    lon=st.floats(min_value=-180.0, max_value=179.999),
    bearing=st.floats(min_value=0.0, max_value=2 * math.pi),
    dist_deg=st.floats(min_value=0.0, max_value=2.5),
    odd=st.booleans(),
)
def test_local_airborne_within_half_a_zone_is_exact(
    lat: float, lon: float, bearing: float, dist_deg: float, odd: bool
) -> None:
    frame = encode(lat, lon, odd)
    ref_lat = lat + dist_deg * math.cos(bearing)
    ref_lon = lon + dist_deg * math.sin(bearing)
    assert distance_m(lat, lon, *local_decode(frame, ref_lat, ref_lon)) < 6.0


def test_local_decode_beyond_half_a_zone_aliases() -> None:
    frame = encode(40.0, 10.0, False)
    lat, _ = local_decode(frame, 40.0 + 3.5, 10.0)
    assert lat == pytest.approx(46.0, abs=0.01)


SURFACE_EVEN = fields("903a23ff426a38565950432ebf95")
SURFACE_ODD = fields("903a23ff426a4e65f7487a775d17")


def surface_pair(ref_lat: float, ref_lon: float, odd_newer: bool = True) -> tuple[float, float]:
    e, o = SURFACE_EVEN, SURFACE_ODD
    return global_surface(e.lat_cpr, e.lon_cpr, o.lat_cpr, o.lon_cpr, odd_newer, ref_lat, ref_lon)


def test_surface_global_decode_at_toulouse() -> None:
    assert SURFACE_EVEN.surface and SURFACE_ODD.surface
    assert surface_pair(43.63, 1.37) == pytest.approx((43.62646, 1.37476), abs=1e-5)
    assert surface_pair(43.63, 1.37, False) == pytest.approx((43.62648, 1.37462), abs=1e-5)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ((-43.5, 1.37), (-46.37354, 1.44350)),  # southern hemisphere solution
        ((43.63, -178.63), (43.62646, -178.62524)),  # quadrant across the antimeridian
        ((43.63, 91.37), (43.62646, 91.37476)),  # next 90-degree quadrant
    ],
)
def test_surface_reference_picks_hemisphere_and_quadrant(
    ref: tuple[float, float], expected: tuple[float, float]
) -> None:
    assert surface_pair(*ref) == pytest.approx(expected, abs=1e-5)


def test_surface_local_decode() -> None:
    o = SURFACE_ODD
    got = local_surface(o.odd, o.lat_cpr, o.lon_cpr, 43.63, 1.37)
    assert got == pytest.approx((43.62646, 1.37476), abs=1e-5)


@given(
    lat=st.floats(min_value=-80.0, max_value=80.0),
    lon=st.floats(min_value=-180.0, max_value=179.999),
)
def test_surface_round_trips_with_a_nearby_reference(lat: float, lon: float) -> None:
    e, o = encode(lat, lon, False, True), encode(lat, lon, True, True)
    try:
        got = global_surface(e.lat_cpr, e.lon_cpr, o.lat_cpr, o.lon_cpr, True, lat + 0.3, lon)
    except CprError:
        assert min(abs(abs(lat) - t) for t in NL_TRANSITIONS_DEG) < 1e-4
        return
    assert distance_m(lat, lon, *got) < 2.0
    assert distance_m(lat, lon, *local_decode(o, lat - 0.5, lon + 0.5)) < 2.0
