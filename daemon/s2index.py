"""S2 cell indexing of events (design §3), with s2sphere as the reference.

A leaf cell (level 30) is computed from lat/lon; its token is the entry's `s2`
field, and the tokens of its parents at each configured index level are the
`s2_<L>` fields. The parent at `cell_stream_level` names the per-cell stream.
A region (circle) becomes a covering of cells at `cell_stream_level`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import s2sphere

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class CellTokens:
    """Tokens for one point: the leaf, each index level, and the stream cell."""

    leaf: str
    levels: tuple[str, ...]
    stream: str


class S2Indexer:
    """Computes the S2 tokens of points for a fixed set of index levels."""

    def __init__(self, index_levels: tuple[int, ...], cell_stream_level: int) -> None:
        for level in (*index_levels, cell_stream_level):
            if not 0 <= level <= 30:
                raise ValueError(f"S2 level {level} outside 0..30")
        self.index_levels = tuple(index_levels)
        self.cell_stream_level = cell_stream_level

    def tokens(self, lat_deg: float, lon_deg: float) -> CellTokens:
        """Leaf token, tokens at each index level, and the stream-cell token of a point."""
        leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat_deg, lon_deg))
        return CellTokens(
            leaf=leaf.to_token(),
            levels=tuple(leaf.parent(level).to_token() for level in self.index_levels),
            stream=leaf.parent(self.cell_stream_level).to_token(),
        )


def cap_covering(
    lat_deg: float, lon_deg: float, radius_km: float, level: int, max_cells: int = 1000
) -> list[str]:
    """Tokens of the cells at exactly `level` that cover a circle (radius in km)."""
    center = s2sphere.LatLng.from_degrees(lat_deg, lon_deg).to_point()
    angle = s2sphere.Angle.from_radians(min(radius_km * 1000.0 / EARTH_RADIUS_M, math.pi))
    cap = s2sphere.Cap.from_axis_angle(center, angle)
    coverer = s2sphere.RegionCoverer()
    coverer.min_level = level
    coverer.max_level = level
    coverer.max_cells = max_cells
    return sorted(cell.to_token() for cell in coverer.get_covering(cap))


def distance_km(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance on the mean-radius sphere, in kilometres."""
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp, dl = p2 - p1, math.radians(lon2_deg - lon1_deg)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M / 1000.0 * math.asin(min(1.0, math.sqrt(h)))
