"""Region subscriptions: parsing, coverings that contain every point of the shape,
and cell corners that are the true S2 vertices."""

from __future__ import annotations

import math
import random

import pytest
import s2sphere

from daemon.s2index import cap_covering
from daemon.viewer.regions import (
    Circle,
    Rect,
    RegionError,
    cell_token_at,
    cell_vertices,
    estimated_cells,
    parse_region,
)

LEVEL = 8


def token_of(lat: float, lon: float, level: int = LEVEL) -> str:
    leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon))
    return str(leaf.parent(level).to_token())


def test_parse_region_reads_circles_and_rectangles() -> None:
    assert parse_region("circle:37.0,13.8,50") == Circle(37.0, 13.8, 50.0)
    assert parse_region("rect:-20,170,-10,-170") == Rect(-20.0, 170.0, -10.0, -170.0)


@pytest.mark.parametrize(
    "text",
    [
        "circle:37,13.8",
        "circle:37,13.8,0",
        "circle:91,0,10",
        "rect:10,0,5,1",
        "rect:0,0,1,181",
        "square:1,2,3",
        "circle:a,b,c",
        "circle:nan,0,5",
        "",
    ],
)
def test_parse_region_rejects_malformed_shapes(text: str) -> None:
    with pytest.raises(RegionError):
        parse_region(text)


def test_circle_covering_is_the_tail_commands_covering() -> None:
    circle = Circle(-30.03, -51.23, 120.0)
    assert circle.covering(LEVEL) == cap_covering(-30.03, -51.23, 120.0, LEVEL)


@pytest.mark.parametrize(
    "rect",
    [
        Rect(36.0, 12.5, 38.2, 15.5),
        Rect(-21.0, 178.5, -19.0, -178.0),
        Rect(84.0, -10.0, 89.0, 20.0),
    ],
    ids=["sicily", "antimeridian", "arctic"],
)
def test_rect_covering_holds_the_cell_of_every_point_inside(rect: Rect) -> None:
    cells = set(rect.covering(LEVEL))
    rng = random.Random(7)
    span = rect.lon_span_deg()
    for _ in range(2000):
        lat = rng.uniform(rect.south, rect.north)
        lon = (rect.west + rng.uniform(0, span) + 540.0) % 360.0 - 180.0
        assert rect.contains(lat, lon)
        assert token_of(lat, lon) in cells
    # ... and a covering is not the whole world
    assert len(cells) < 4 * estimated_cells(rect, LEVEL)


def test_rect_across_the_antimeridian_contains_both_sides_only() -> None:
    rect = Rect(-21.0, 178.5, -19.0, -178.0)
    assert rect.contains(-20.0, 179.9)
    assert rect.contains(-20.0, -179.9)
    assert not rect.contains(-20.0, 0.0)
    assert not rect.contains(-20.0, 170.0)
    assert not rect.contains(-18.0, 179.9)


@pytest.mark.parametrize(
    "region", [Circle(45.0, 7.0, 30.0), Circle(10.0, 100.0, 300.0), Rect(30.0, -100.0, 35.0, -90.0)]
)
def test_estimated_cell_count_is_close_to_the_real_covering(region: Circle | Rect) -> None:
    real = len(region.covering(LEVEL))
    assert 0.5 * real <= estimated_cells(region, LEVEL) <= 2.0 * real


def test_cell_vertices_are_the_s2_cell_corners() -> None:
    token = token_of(37.05, 13.8)
    corners = cell_vertices(token)
    cell = s2sphere.Cell(s2sphere.CellId.from_token(token))
    for i, (lat, lon) in enumerate(corners):
        ll = s2sphere.LatLng.from_point(cell.get_vertex(i))
        assert lat == pytest.approx(ll.lat().degrees, abs=1e-6)
        assert lon == pytest.approx(ll.lng().degrees, abs=1e-6)
    # the mean of the corners lies in the cell itself
    lat_c = sum(c[0] for c in corners) / 4
    lon_c = sum(c[1] for c in corners) / 4
    assert token_of(lat_c, lon_c) == token
    # a level-8 cell is about 40 km across
    assert 20 < math.dist(corners[0], corners[2]) * 111 < 90


def test_cell_token_at_gives_the_parent_of_a_leaf() -> None:
    leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(37.11, 13.78)).to_token()
    assert cell_token_at(leaf, LEVEL) == token_of(37.11, 13.78)
