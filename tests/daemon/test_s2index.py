"""S2 indexing against s2sphere, the reference (design §3).

The encoder's `s2` and `s2_<L>` fields must equal what s2sphere computes for the
entry's own lat/lon, everywhere on the sphere (random points plus poles, the
antimeridian and cube-face edges); a region covering must contain the cell of
every point inside its circle.
"""

from __future__ import annotations

import math

import pytest
import s2sphere
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.encode import EntryEncoder, field_names
from daemon.event import Event, Sequenced
from daemon.s2index import EARTH_RADIUS_M, S2Indexer, cap_covering, distance_km

LATS = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False, allow_infinity=False)
LONS = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False, allow_infinity=False)

# The cube face boundaries of S2 are where |x|, |y|, |z| tie: lon = ±45°, ±135° on the
# equator, lat = ±atan(1/√2) ≈ ±35.26° at those longitudes, and the cube corners.
CORNER_LAT = math.degrees(math.atan(1 / math.sqrt(2)))
SPECIAL_POINTS = [
    (90.0, 0.0), (-90.0, 0.0), (90.0, 180.0), (-90.0, -180.0), (89.9999999, 123.0),
    (-89.9999999, -57.0),
    (0.0, 180.0), (0.0, -180.0), (45.0, 180.0), (-45.0, -180.0), (12.3, 179.9999999),
    (12.3, -179.9999999), (-65.0, 180.0),
    (0.0, 0.0), (0.0, 45.0), (0.0, -45.0), (0.0, 135.0), (0.0, -135.0), (0.0, 90.0),
    (0.0, -90.0), (45.0, 0.0), (-45.0, 0.0), (45.0, 90.0), (-45.0, -90.0),
    (CORNER_LAT, 45.0), (-CORNER_LAT, 45.0), (CORNER_LAT, -135.0), (-CORNER_LAT, 135.0),
    (CORNER_LAT + 1e-12, 45.0 - 1e-12), (1e-300, -1e-300), (-0.0, -0.0),
]
LEVEL_SETS = [(6, 10, 14), (0, 1, 29, 30), (3,)]


def reference_tokens(lat: float, lon: float, levels: tuple[int, ...]) -> tuple[str, list[str]]:
    """Leaf token and parent tokens at `levels`, straight from s2sphere."""
    leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon))
    return leaf.to_token(), [leaf.parent(level).to_token() for level in levels]


def encode_point(
    lat: float, lon: float, levels: tuple[int, ...], stream_level: int = 8
) -> dict[str, str]:
    """The stream entry fields the encoder produces for one event at (lat, lon)."""
    encoder = EntryEncoder(S2Indexer(levels, stream_level))
    event = Event(id="t:1", src="test", kind="test", t=1, rx=1, lat=lat, lon=lon, alt=None,
                  station="s")
    (entry,) = encoder.encode([Sequenced("p", 1, event)])
    assert len(entry.values) == len(encoder.field_names)
    fields = dict(zip(encoder.field_names, entry.values, strict=True))
    fields["_cell"] = entry.cell
    return fields


def assert_matches_s2sphere(lat: float, lon: float, levels: tuple[int, ...]) -> None:
    fields = encode_point(lat, lon, levels)
    # The oracle is fed what a consumer sees: the entry's own lat/lon strings.
    lat_e, lon_e = float(fields["lat"]), float(fields["lon"])
    assert (lat_e, lon_e) == (lat, lon)
    leaf, parents = reference_tokens(lat_e, lon_e, levels)
    assert fields["s2"] == leaf
    for level, token in zip(levels, parents, strict=True):
        assert fields[f"s2_{level}"] == token, level
        assert s2sphere.CellId.from_token(token).level() == level
    assert fields["_cell"] == reference_tokens(lat_e, lon_e, (8,))[1][0]


@settings(max_examples=150, deadline=None)
@given(lat=LATS, lon=LONS)
def test_encoder_tokens_equal_s2sphere_for_random_points(lat: float, lon: float) -> None:
    assert_matches_s2sphere(lat, lon, (6, 10, 14))


@pytest.mark.parametrize("levels", LEVEL_SETS, ids=str)
@pytest.mark.parametrize(("lat", "lon"), SPECIAL_POINTS)
def test_encoder_tokens_equal_s2sphere_at_poles_antimeridian_and_face_edges(
    lat: float, lon: float, levels: tuple[int, ...]
) -> None:
    assert_matches_s2sphere(lat, lon, levels)


def test_field_names_follow_the_contract_order() -> None:
    assert field_names((6, 10, 14)) == (
        "v", "id", "src", "kind", "t", "rx", "lat", "lon", "alt", "station", "s2",
        "s2_6", "s2_10", "s2_14", "data",
    )


def test_leaf_cell_contains_the_point_and_parents_contain_the_leaf() -> None:
    for lat, lon in SPECIAL_POINTS:
        fields = encode_point(lat, lon, (6, 10, 14))
        leaf = s2sphere.CellId.from_token(fields["s2"])
        assert leaf.is_leaf()
        # Leaf cells are ~1 cm across. (s2sphere's Cell.contains(point) compares uv bounds
        # without C++'s epsilon and rejects the exact poles, so use the distance instead.)
        centre = s2sphere.LatLng.from_point(s2sphere.Cell(leaf).get_center())
        assert distance_km(lat, lon, centre.lat().degrees, centre.lng().degrees) < 2e-5
        for level in (6, 10, 14):
            assert s2sphere.CellId.from_token(fields[f"s2_{level}"]).contains(leaf)


def test_indexer_rejects_levels_outside_0_to_30() -> None:
    with pytest.raises(ValueError):
        S2Indexer((6, 31), 8)
    with pytest.raises(ValueError):
        S2Indexer((6,), -1)


# -- coverings ------------------------------------------------------------------------


def destination(lat: float, lon: float, bearing_deg: float, dist_km: float) -> tuple[float, float]:
    """The point `dist_km` from (lat, lon) along `bearing_deg` on the same sphere."""
    d = dist_km * 1000.0 / EARTH_RADIUS_M
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    sin_p2 = math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b)
    p2 = math.asin(max(-1.0, min(1.0, sin_p2)))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * sin_p2)
    lon2 = (math.degrees(l2) + 540.0) % 360.0 - 180.0
    return math.degrees(p2), lon2


def cell_token(lat: float, lon: float, level: int) -> str:
    return reference_tokens(lat, lon, (level,))[1][0]


# (level, largest radius tried): keeps every covering to a few hundred cells.
LEVEL_RADII = st.sampled_from([(6, 1500.0), (8, 300.0), (10, 60.0), (12, 15.0)])


@settings(max_examples=30, deadline=None)
@given(
    lat=LATS, lon=LONS, level_radius=LEVEL_RADII,
    radius_frac=st.floats(min_value=0.001, max_value=1.0),
    points=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=360.0),
                  st.floats(min_value=0.0, max_value=1.0)),
        min_size=1, max_size=40,
    ),
)
def test_covering_contains_the_cell_of_every_point_inside_the_circle(
    lat: float, lon: float, level_radius: tuple[int, float], radius_frac: float,
    points: list[tuple[float, float]],
) -> None:
    level, max_radius_km = level_radius
    radius_km = max_radius_km * radius_frac
    covering = set(cap_covering(lat, lon, radius_km, level))
    assert covering
    assert all(s2sphere.CellId.from_token(t).level() == level for t in covering)
    for bearing, frac in [(0.0, 0.0), *points]:
        plat, plon = destination(lat, lon, bearing, radius_km * frac)
        if distance_km(lat, lon, plat, plon) > radius_km:
            continue  # rounding pushed it over the edge: not "inside" by the reader's rule
        assert cell_token(plat, plon, level) in covering, (plat, plon)


@pytest.mark.parametrize(
    ("lat", "lon", "radius_km"),
    [(0.0, 180.0, 200.0), (0.0, -179.9, 200.0), (89.5, 10.0, 150.0), (-90.0, 0.0, 100.0),
     (CORNER_LAT, 45.0, 100.0), (0.0, 45.0, 100.0)],
)
def test_covering_around_antimeridian_poles_and_face_corners_contains_every_inner_point(
    lat: float, lon: float, radius_km: float
) -> None:
    covering = set(cap_covering(lat, lon, radius_km, 8))
    for bearing in range(0, 360, 5):
        for frac in (0.0, 0.25, 0.5, 0.75, 0.99, 0.999999):
            plat, plon = destination(lat, lon, bearing, radius_km * frac)
            assert distance_km(lat, lon, plat, plon) <= radius_km
            assert cell_token(plat, plon, 8) in covering, (plat, plon)


def test_covering_is_not_wildly_larger_than_the_circle() -> None:
    # Level-8 cells are ~40 km across: a 100 km circle needs tens of cells, not thousands,
    # and no covering cell lies entirely far outside the circle.
    covering = cap_covering(40.0, -3.0, 100.0, 8)
    assert 10 <= len(covering) <= 100
    for token in covering:
        centre = s2sphere.LatLng.from_point(s2sphere.Cell(s2sphere.CellId.from_token(token))
                                            .get_center())
        assert distance_km(40.0, -3.0, centre.lat().degrees, centre.lng().degrees) < 100.0 + 60.0


# -- distance ------------------------------------------------------------------------


def test_distance_of_a_point_to_itself_is_zero() -> None:
    assert distance_km(12.5, -170.25, 12.5, -170.25) == 0.0


def test_one_degree_of_latitude_is_about_111_km() -> None:
    assert distance_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.195, abs=0.01)
    assert distance_km(50.0, 7.0, 51.0, 7.0) == pytest.approx(111.195, abs=0.01)


def test_antipodes_are_half_a_circumference_apart() -> None:
    half = math.pi * EARTH_RADIUS_M / 1000.0
    assert distance_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(half)
    assert distance_km(90.0, 0.0, -90.0, 0.0) == pytest.approx(half)
    assert distance_km(30.0, 40.0, -30.0, -140.0) == pytest.approx(half)


def test_distance_across_the_antimeridian_is_short() -> None:
    assert distance_km(0.0, 179.5, 0.0, -179.5) == pytest.approx(111.195, abs=0.01)


def test_longitude_does_not_matter_at_a_pole() -> None:
    assert distance_km(90.0, 0.0, 90.0, 135.0) == pytest.approx(0.0, abs=1e-9)
    assert distance_km(90.0, 0.0, 89.0, 0.0) == pytest.approx(distance_km(90.0, 77.0, 89.0, -40.0))


@settings(max_examples=100, deadline=None)
@given(a=st.tuples(LATS, LONS), b=st.tuples(LATS, LONS), c=st.tuples(LATS, LONS))
def test_distance_is_a_metric_on_the_sphere(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    ab, ba = distance_km(*a, *b), distance_km(*b, *a)
    assert ab == pytest.approx(ba, abs=1e-9)
    assert 0.0 <= ab <= math.pi * EARTH_RADIUS_M / 1000.0 + 1e-9
    assert distance_km(*a, *c) <= ab + distance_km(*b, *c) + 1e-6


@settings(max_examples=100, deadline=None)
@given(lat=LATS, lon=LONS, bearing=st.floats(0.0, 360.0), dist=st.floats(0.0, 19_000.0))
def test_distance_agrees_with_s2sphere_angle(lat: float, lon: float, bearing: float,
                                             dist: float) -> None:
    plat, plon = destination(lat, lon, bearing, dist)
    a = s2sphere.LatLng.from_degrees(lat, lon)
    b = s2sphere.LatLng.from_degrees(plat, plon)
    angle_km = a.get_distance(b).radians * EARTH_RADIUS_M / 1000.0
    assert distance_km(lat, lon, plat, plon) == pytest.approx(angle_km, abs=1e-3)
    assert distance_km(lat, lon, plat, plon) == pytest.approx(dist, abs=1e-3)
