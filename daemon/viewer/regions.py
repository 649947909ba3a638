"""Region subscriptions: a circle or a rectangle drawn on the map, and its S2 covering.

Wire format (the ``region`` query parameter of ``/api/stream``)::

    circle:LAT,LON,RADIUS_KM        centre in WGS84 degrees, radius in km
    rect:SOUTH,WEST,NORTH,EAST      degrees; WEST > EAST means the box crosses
                                    the antimeridian (it runs eastwards from WEST)

A region is read from the per-cell streams of its covering at `cell_stream_level`
(design §2). Entries from a covering cell that lie outside the exact shape are
dropped, since a covering is a superset. A region whose covering would need more
than `max_cells` streams is read from the global stream and filtered instead:
thousands of XREAD keys cost more than one filtered stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import s2sphere

from daemon.s2index import EARTH_RADIUS_M, cap_covering, distance_km

EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000.0
# Mean area of an S2 cell at level 0 is 4πR²/6; each level divides it by 4.
_LEVEL0_CELL_AREA_KM2 = 4.0 * math.pi * EARTH_RADIUS_KM**2 / 6.0


class RegionError(ValueError):
    """A region parameter that cannot be parsed or is not a valid shape."""


@dataclass(frozen=True)
class Circle:
    """A spherical cap: centre (degrees) and radius (km)."""

    lat: float
    lon: float
    radius_km: float

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point (degrees) lies inside the circle."""
        return distance_km(self.lat, self.lon, lat, lon) <= self.radius_km

    def area_km2(self) -> float:
        """Area of the cap on the mean-radius sphere, km²."""
        angle = min(self.radius_km / EARTH_RADIUS_KM, math.pi)
        return 2.0 * math.pi * EARTH_RADIUS_KM**2 * (1.0 - math.cos(angle))

    def covering(self, level: int) -> list[str]:
        """Tokens of the cells at `level` covering the circle (the same as `tail --region`)."""
        return cap_covering(self.lat, self.lon, self.radius_km, level, max_cells=1_000_000)

    def as_json(self) -> dict[str, Any]:
        """The shape for the browser."""
        return {"type": "circle", "lat": self.lat, "lon": self.lon, "radius_km": self.radius_km}


@dataclass(frozen=True)
class Rect:
    """A latitude/longitude box (degrees); `west > east` crosses the antimeridian."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point (degrees) lies inside the box (edges included)."""
        if not self.south <= lat <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= lon <= self.east
        return lon >= self.west or lon <= self.east

    def lon_span_deg(self) -> float:
        """Eastward width of the box, degrees."""
        span = self.east - self.west
        return span if span >= 0 else span + 360.0

    def area_km2(self) -> float:
        """Area of the box on the mean-radius sphere, km²."""
        band = math.sin(math.radians(self.north)) - math.sin(math.radians(self.south))
        return EARTH_RADIUS_KM**2 * math.radians(self.lon_span_deg()) * band

    def covering(self, level: int) -> list[str]:
        """Tokens of the cells at `level` covering the box."""
        rect = s2sphere.LatLngRect(
            s2sphere.LatLng.from_degrees(self.south, self.west),
            s2sphere.LatLng.from_degrees(self.north, self.east),
        )
        coverer = s2sphere.RegionCoverer()
        coverer.min_level = level
        coverer.max_level = level
        coverer.max_cells = 1_000_000
        return sorted(cell.to_token() for cell in coverer.get_covering(rect))

    def as_json(self) -> dict[str, Any]:
        """The shape for the browser."""
        return {
            "type": "rect",
            "south": self.south,
            "west": self.west,
            "north": self.north,
            "east": self.east,
        }


Region = Circle | Rect


def parse_region(text: str) -> Region:
    """Parse ``circle:LAT,LON,KM`` or ``rect:SOUTH,WEST,NORTH,EAST``; raises RegionError."""
    shape, sep, rest = text.partition(":")
    try:
        values = [float(v) for v in rest.split(",")] if sep else []
    except ValueError:
        raise RegionError(f"region {text!r}: values must be numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise RegionError(f"region {text!r}: values must be finite")
    if shape == "circle" and len(values) == 3:
        lat, lon, radius_km = values
        _check_position(text, lat, lon)
        if radius_km <= 0:
            raise RegionError(f"region {text!r}: radius must be > 0 km")
        return Circle(lat, lon, radius_km)
    if shape == "rect" and len(values) == 4:
        south, west, north, east = values
        _check_position(text, south, west)
        _check_position(text, north, east)
        if south > north:
            raise RegionError(f"region {text!r}: south {south} is north of north {north}")
        return Rect(south, west, north, east)
    raise RegionError(f"region {text!r} must be circle:LAT,LON,KM or rect:SOUTH,WEST,NORTH,EAST")


def _check_position(text: str, lat: float, lon: float) -> None:
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise RegionError(f"region {text!r}: {lat},{lon} is not a valid position")


def estimated_cells(region: Region, level: int) -> float:
    """About how many cells at `level` cover `region` (area over mean cell area, plus a rim)."""
    cell_km2 = _LEVEL0_CELL_AREA_KM2 / 4.0**level
    cell_km = math.sqrt(cell_km2)
    if isinstance(region, Circle):
        rim_km = 2.0 * math.pi * region.radius_km
    else:
        mid = math.cos(math.radians((region.north + region.south) / 2.0))
        width_km = math.radians(region.lon_span_deg()) * EARTH_RADIUS_KM * mid
        height_km = math.radians(region.north - region.south) * EARTH_RADIUS_KM
        rim_km = 2.0 * (width_km + height_km)
    return region.area_km2() / cell_km2 + rim_km / cell_km


@lru_cache(maxsize=65_536)
def cell_vertices(token: str) -> tuple[tuple[float, float], ...]:
    """The four corners (lat, lon degrees, counter-clockwise) of the S2 cell `token`."""
    cell = s2sphere.Cell(s2sphere.CellId.from_token(token))
    corners = []
    for i in range(4):
        ll = s2sphere.LatLng.from_point(cell.get_vertex(i))
        corners.append((round(ll.lat().degrees, 6), round(ll.lng().degrees, 6)))
    return tuple(corners)


def cell_token_at(leaf_token: str, level: int) -> str:
    """The token of the level-`level` parent of a leaf cell token."""
    return str(s2sphere.CellId.from_token(leaf_token).parent(level).to_token())
