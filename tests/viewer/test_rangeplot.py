"""ADS-B range outline: farthest position per 5° sector, over 24 h and all time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from daemon.s2index import distance_km
from daemon.viewer.rangeplot import DAY_MS, SECTORS, RangeOutline, bearing_deg

RX = (37.0, 13.8)
T0 = 1_700_000_000_000


def test_bearing_is_clockwise_from_true_north() -> None:
    assert bearing_deg(0, 0, 1, 0) == pytest.approx(0.0)
    assert bearing_deg(0, 0, 0, 1) == pytest.approx(90.0)
    assert bearing_deg(0, 0, -1, 0) == pytest.approx(180.0)
    assert bearing_deg(0, 0, 0, -1) == pytest.approx(270.0)


def test_sector_boundaries_fall_every_five_degrees() -> None:
    outline = RangeOutline(0.0, 0.0)
    assert outline.sector(1.0, 0.0) == 0
    assert outline.sector(1.0, 0.0874) == 0  # 4.99°
    assert outline.sector(1.0, 0.0876) == 1  # 5.01°
    assert outline.sector(0.0, -1.0) == 54  # 270°
    assert outline.sector(1.0, -0.0001) == SECTORS - 1


def test_farthest_position_per_sector_wins() -> None:
    outline = RangeOutline(*RX)
    outline.add(37.5, 13.8, T0)  # due north, ~56 km
    outline.add(37.2, 13.8, T0 + 1)  # due north, nearer
    snap = outline.snapshot(T0 + 2)
    north = snap["last_24h"][0]
    assert north[1:] == [37.5, 13.8, T0]
    assert north[0] == pytest.approx(distance_km(*RX, 37.5, 13.8), abs=1e-3)
    assert snap["all_time"][0] == north
    assert sum(p is not None for p in snap["last_24h"]) == 1


def test_a_far_point_leaves_the_24h_outline_but_stays_all_time() -> None:
    outline = RangeOutline(*RX)
    outline.add(38.0, 13.8, T0)  # far, old
    outline.add(37.3, 13.8, T0 + DAY_MS // 2)  # nearer, newer
    day = outline.snapshot(T0 + DAY_MS + 1)
    assert day["last_24h"][0][1] == 37.3
    assert day["all_time"][0][1] == 38.0
    assert day["max_all_km"] > day["max_24h_km"]
    later = outline.snapshot(T0 + 2 * DAY_MS)
    assert later["last_24h"][0] is None
    assert later["all_time"][0][1] == 38.0


def test_sliding_maximum_equals_brute_force() -> None:
    rng = random.Random(3)
    outline = RangeOutline(*RX)
    points: list[tuple[int, float, int]] = []
    t = now = T0
    for i in range(3000):
        t += rng.randint(0, 120_000)
        lat, lon = RX[0] + rng.uniform(-3, 3), RX[1] + rng.uniform(-3, 3)
        outline.add(lat, lon, t)
        points.append((outline.sector(lat, lon), distance_km(*RX, lat, lon), t))
        if i % 250 != 249:
            continue
        now = max(now, t + rng.randint(0, DAY_MS // 2))  # the clock only moves forward
        got = outline.last_window(now)
        for s in range(SECTORS):
            inside = [d for sec, d, ts in points if sec == s and ts > now - DAY_MS]
            want = max(inside, default=None)
            have = got[s].dist_km if got[s] else None
            assert have == (pytest.approx(want) if want is not None else None)


def test_all_time_outline_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "range_adsb.json"
    outline = RangeOutline(*RX)
    outline.add(38.0, 13.8, T0)
    outline.add(37.0, 15.0, T0)
    outline.save(path)
    again = RangeOutline(*RX)
    assert again.load(path)
    assert again.snapshot(T0)["all_time"] == outline.snapshot(T0)["all_time"]
    # a file made for another receiver position is not merged
    moved = RangeOutline(40.0, 13.8)
    assert not moved.load(path)
    assert all(p is None for p in moved.all_time)
    (tmp_path / "bad.json").write_text("{not json")
    assert not RangeOutline(*RX).load(tmp_path / "bad.json")
