"""Vectorized S2 (`daemon.s2vec`) against s2sphere, the reference (design §3, issue 8).

Every leaf id must equal s2sphere's bit for bit, and every token at every level its
``to_token()``: on a large random set, on hypothesis' points, and where rounding
decides: poles, the antimeridian, the cube's face boundaries and corners, and points
a few ulps either side of cell edges at every level.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import s2sphere
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import s2vec

LATS = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False, allow_infinity=False)
LONS = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False, allow_infinity=False)
CORNER_LAT = math.degrees(math.atan(1 / math.sqrt(2)))  # cube corners: |x| = |y| = |z|


def reference_id(lat: float, lon: float) -> int:
    """The leaf cell id straight from s2sphere."""
    return int(s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon)).id())


def assert_bit_exact(lats: list[float], lons: list[float], levels: tuple[int, ...]) -> None:
    """Leaf ids and the tokens at `levels` equal s2sphere's for every point."""
    ids = s2vec.leaf_ids(np.array(lats), np.array(lons))
    assert ids.dtype == np.uint64
    refs = [s2sphere.CellId(reference_id(lat, lon)) for lat, lon in zip(lats, lons, strict=True)]
    assert ids.tolist() == [ref.id() for ref in refs]
    for level in levels:
        got = s2vec.tokens(s2vec.parent_ids(ids, level), level)
        assert got == [ref.parent(level).to_token() for ref in refs], level


def edge_points() -> list[tuple[float, float]]:
    """Poles, antimeridian, face boundaries and cube corners, and their ulp neighbours."""
    base = [
        (90.0, 0.0), (-90.0, 0.0), (90.0, 180.0), (-90.0, -180.0), (90.0, 45.0),
        (89.9999999, 123.0), (-89.9999999, -57.0),
        (0.0, 180.0), (0.0, -180.0), (45.0, 180.0), (-45.0, -180.0), (12.3, 179.9999999),
        (12.3, -179.9999999), (-65.0, 180.0), (-65.0, -180.0),
        (0.0, 0.0), (-0.0, -0.0), (1e-300, -1e-300), (5e-324, -5e-324),
        (CORNER_LAT, 45.0), (-CORNER_LAT, 45.0), (CORNER_LAT, -135.0), (-CORNER_LAT, 135.0),
        (CORNER_LAT, 135.0), (-CORNER_LAT, -45.0), (CORNER_LAT, -45.0), (-CORNER_LAT, -135.0),
    ]
    # Face boundaries: lon = ±45°, ±135° (x/y ties), lat = ±45° on the x and y axes
    # (z ties), and all along the boundary circles between them.
    for lon in (-180.0, -135.0, -90.0, -45.0, 0.0, 45.0, 90.0, 135.0, 180.0):
        for lat in (-45.0, -30.0, -10.0, 0.0, 10.0, 30.0, 45.0):
            base.append((lat, lon))
    for lon in np.linspace(-180.0, 180.0, 73).tolist():
        # z ties with the larger of |x|, |y|: tan(lat) = max(|cos lon|, |sin lon|)
        rad = math.radians(lon)
        lat = math.degrees(math.atan(max(abs(math.cos(rad)), abs(math.sin(rad)))))
        base += [(lat, lon), (-lat, lon)]
    points = []
    for lat, lon in base:
        for dlat in (-2, -1, 0, 1, 2):
            for dlon in (-2, -1, 0, 1, 2):
                la = _ulps(lat, dlat)
                lo = _ulps(lon, dlon)
                if -90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0:
                    points.append((la, lo))
    return points


def _ulps(x: float, n: int) -> float:
    """`x` moved `n` units in the last place."""
    for _ in range(abs(n)):
        x = math.nextafter(x, math.inf if n > 0 else -math.inf)
    return x


def cell_edge_points(count: int, seed: int) -> list[tuple[float, float]]:
    """Vertices of random cells at random levels, and points an ulp or two around them,
    where the floor() of the projection decides between neighbouring cells."""
    rng = np.random.default_rng(seed)
    points = []
    for lat0, lon0, level in zip(
        rng.uniform(-90, 90, count).tolist(),
        rng.uniform(-180, 180, count).tolist(),
        rng.integers(0, 31, count).tolist(),
        strict=True,
    ):
        cell = s2sphere.Cell(s2sphere.CellId(reference_id(lat0, lon0)).parent(level))
        vertex = s2sphere.LatLng.from_point(cell.get_vertex(int(rng.integers(0, 4))))
        lat, lon = vertex.lat().degrees, vertex.lng().degrees
        for d in (-1, 0, 1):
            la, lo = _ulps(lat, d), _ulps(lon, -d)
            if -90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0:
                points.append((la, lo))
    return points


ALL_LEVELS = tuple(range(31))


def test_leaf_ids_and_tokens_equal_s2sphere_on_a_large_random_set() -> None:
    rng = np.random.default_rng(7)
    n = 6000
    # Uniform on the sphere, plus uniform in degrees (denser at the poles).
    z = rng.uniform(-1.0, 1.0, n)
    lats = np.degrees(np.arcsin(z)).tolist() + rng.uniform(-90, 90, n).tolist()
    lons = rng.uniform(-180, 180, 2 * n).tolist()
    assert_bit_exact(lats, lons, (0, 6, 8, 10, 14, 30))


def test_tokens_at_every_level_equal_s2sphere() -> None:
    rng = np.random.default_rng(11)
    lats = rng.uniform(-90, 90, 300).tolist()
    lons = rng.uniform(-180, 180, 300).tolist()
    assert_bit_exact(lats, lons, ALL_LEVELS)


def test_poles_antimeridian_face_boundaries_and_corners_are_bit_exact() -> None:
    points = edge_points()
    assert len(points) > 2000
    lats, lons = zip(*points, strict=True)
    assert_bit_exact(list(lats), list(lons), (0, 1, 8, 14, 29, 30))


def test_points_an_ulp_around_cell_vertices_are_bit_exact() -> None:
    points = cell_edge_points(1500, seed=3)
    lats, lons = zip(*points, strict=True)
    assert_bit_exact(list(lats), list(lons), (0, 5, 10, 20, 30))


@settings(max_examples=60, deadline=None)
@given(points=st.lists(st.tuples(LATS, LONS), min_size=1, max_size=40))
def test_random_batches_are_bit_exact(points: list[tuple[float, float]]) -> None:
    lats, lons = zip(*points, strict=True)
    assert_bit_exact(list(lats), list(lons), (6, 8, 10, 14))


def test_integer_and_float32_inputs_read_as_float64_degrees() -> None:
    ids = s2vec.leaf_ids([45, -90, 0], [7, 180, -180])
    assert ids.tolist() == [reference_id(45.0, 7.0), reference_id(-90.0, 180.0),
                            reference_id(0.0, -180.0)]


def test_the_libm_fallback_gives_the_same_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """On builds whose numpy sin/cos differ from libm the module maps math.cos/sin."""

    def libm(fn: object) -> object:
        return lambda x: np.array([fn(v) for v in x.tolist()])  # type: ignore[operator]

    rng = np.random.default_rng(5)
    lats, lons = rng.uniform(-90, 90, 500), rng.uniform(-180, 180, 500)
    fast = s2vec.leaf_ids(lats, lons)
    monkeypatch.setattr(s2vec, "_cos", libm(math.cos))
    monkeypatch.setattr(s2vec, "_sin", libm(math.sin))
    assert np.array_equal(s2vec.leaf_ids(lats, lons), fast)
    assert fast.tolist() == [reference_id(a, b) for a, b in zip(lats, lons, strict=True)]


def test_token_width_is_fixed_per_level_and_matches_the_stripped_hex() -> None:
    ids = s2vec.leaf_ids([48.1375, -33.9, 0.0], [11.575, 151.2, 0.0])
    for level in ALL_LEVELS:
        toks = s2vec.tokens(s2vec.parent_ids(ids, level), level)
        assert {len(t) for t in toks} == {s2vec.token_width(level)}
        for t, cid in zip(toks, s2vec.parent_ids(ids, level).tolist(), strict=True):
            assert t == format(cid, "016x").rstrip("0")


def test_batch_cells_returns_columns_in_batch_order() -> None:
    lats, lons = [48.1375, -33.9, 70.0], [11.575, 151.2, -20.0]
    cells = s2vec.batch_cells(lats, lons, (6, 10, 14), 8)
    for k, (lat, lon) in enumerate(zip(lats, lons, strict=True)):
        leaf = s2sphere.CellId(reference_id(lat, lon))
        assert cells.leaf[k] == leaf.to_token()
        assert [col[k] for col in cells.levels] == [
            leaf.parent(level).to_token() for level in (6, 10, 14)
        ]
        assert cells.stream[k] == leaf.parent(8).to_token()


def test_an_empty_batch_gives_empty_columns() -> None:
    cells = s2vec.batch_cells(np.array([]), np.array([]), (6, 10), 8)
    assert cells.leaf == [] and cells.levels == ([], []) and cells.stream == []


def test_levels_outside_0_to_30_are_rejected() -> None:
    ids = s2vec.leaf_ids([0.0], [0.0])
    with pytest.raises(ValueError):
        s2vec.parent_ids(ids, 31)
    with pytest.raises(ValueError):
        s2vec.tokens(ids, -1)
