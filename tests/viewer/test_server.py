"""The viewer's server over real sockets: SSE backfill then live, region subscriptions
read from the per-cell streams, resume with Last-Event-ID, and the JSON endpoints."""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

import pytest
from viewer_harness import Publisher, ViewerServer

from daemon.config import Config
from daemon.health import HealthServer
from daemon.metrics import Metrics
from daemon.s2index import cap_covering, distance_km
from daemon.viewer.rangeplot import RangeOutline

Env = tuple[Config, Publisher]
Factory = Callable[..., ViewerServer]


def events_of(messages: list[dict[str, str]], kind: str) -> list[dict[str, Any]]:
    return [ev for m in messages if m["event"] == kind for ev in json.loads(m["data"])]


def scatter(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    """A point within about `km` of (lat, lon)."""
    d = km * math.sqrt(rng.random()) / 111.0
    a = rng.uniform(0, 2 * math.pi)
    return lat + d * math.cos(a), lon + d * math.sin(a) / math.cos(math.radians(lat))


def test_stream_backfills_then_pushes_new_events_in_order(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    first = [pub.make("a", 10.0 + i * 0.01, 20.0) for i in range(30)]
    for ev in first:
        pub.emit(ev)
    pub.flush()
    viewer = viewer_factory()
    sse = viewer.stream("/api/stream")
    assert sse.status == 200
    before, ready = sse.until("ready")
    assert before[0]["event"] == "subscription"
    assert json.loads(before[0]["data"])["via"] == "events"
    got = events_of(before, "backfill")
    assert [e["id"] for e in got] == [e.id for e in first]
    assert json.loads(ready["data"]) == {"backfilled": 30}
    assert ready["id"] == got[-1]["eid"]
    sample = got[0]
    assert sample["lat"] == pytest.approx(10.0) and sample["kind"] == "test.point"
    assert sample["data"] == {"n": 1} and len(sample["cell"]) <= 16

    live = [pub.publish("a", 11.0, 21.0), pub.publish("b", -5.0, 100.0)]
    seen: list[dict[str, Any]] = []
    while len(seen) < 2:
        msg = sse.next()
        assert msg["event"] == "events"
        seen += json.loads(msg["data"])
    assert [e["id"] for e in seen] == [e.id for e in live]
    sse.close()


def test_region_subscription_reads_the_covering_cells_and_the_exact_circle(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    rng = random.Random(5)
    centre, radius_km = (37.0, 13.8), 60.0
    evs = [pub.make("near", *scatter(rng, *centre, 150.0)) for _ in range(300)]
    evs += [pub.make("far", *scatter(rng, 38.8, -122.8, 50.0)) for _ in range(50)]
    for ev in evs:
        pub.emit(ev)
    pub.flush()
    inside = [e.id for e in evs if distance_km(*centre, e.lat, e.lon) <= radius_km]
    assert 20 < len(inside) < 250  # the test data has points on both sides

    viewer = viewer_factory()
    sse = viewer.stream(f"/api/stream?region=circle:{centre[0]},{centre[1]},{radius_km}")
    before, _ = sse.until("ready")
    sub = json.loads(before[0]["data"])
    assert sub["via"] == "cells"
    assert sub["cells"] == cap_covering(*centre, radius_km, 8)
    assert set(sub["vertices"]) == set(sub["cells"])
    assert [e["id"] for e in events_of(before, "backfill")] == inside

    out = pub.publish("near", 37.0, 15.0)  # ~178 km east: a covering cell? no matter, outside
    inn = pub.publish("near", 37.1, 13.9)
    msg = sse.next()
    assert [e["id"] for e in json.loads(msg["data"])] == [inn.id]
    assert out.id not in msg["data"]
    sse.close()


def test_rectangle_across_the_antimeridian_gets_both_sides(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    east = pub.publish("fiji", -17.5, 179.9)
    west = pub.publish("fiji", -17.5, -179.9)
    pub.publish("fiji", -17.5, 170.0)
    pub.publish("fiji", -10.0, 179.9)
    viewer = viewer_factory()
    sse = viewer.stream("/api/stream?region=rect:-18,179.5,-17,-179.5")
    before, _ = sse.until("ready")
    assert json.loads(before[0]["data"])["via"] == "cells"
    assert [e["id"] for e in events_of(before, "backfill")] == [east.id, west.id]
    sse.close()


def test_a_region_too_large_for_cell_streams_filters_the_global_stream(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    inside = pub.publish("x", 40.0, -100.0)
    pub.publish("x", 10.0, 10.0)
    viewer = viewer_factory(max_cells=50)
    sse = viewer.stream("/api/stream?region=circle:40,-100,1500")
    before, _ = sse.until("ready")
    sub = json.loads(before[0]["data"])
    assert sub["via"] == "events" and sub["cells"] == []
    assert [e["id"] for e in events_of(before, "backfill")] == [inside.id]
    sse.close()


def test_reconnect_with_last_event_id_resumes_without_backfill(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    for i in range(10):
        pub.emit(pub.make("a", 1.0, float(i)))
    pub.flush()
    viewer = viewer_factory()
    sse = viewer.stream("/api/stream")
    before, _ = sse.until("ready")
    got = events_of(before, "backfill")
    sse.close()
    resumed = viewer.stream("/api/stream", {"Last-Event-ID": got[5]["eid"]})
    assert resumed.next()["event"] == "subscription"
    msg = resumed.next()
    assert msg["event"] == "events"
    assert [e["id"] for e in json.loads(msg["data"])] == [e["id"] for e in got[6:]]
    resumed.close()


def test_backfill_window_and_limit(published_env: Env, viewer_factory: Factory) -> None:
    _, pub = published_env
    for i in range(40):
        pub.emit(pub.make("a", 1.0, float(i)))
    pub.flush()
    viewer = viewer_factory(max_backfill=15)
    sse = viewer.stream("/api/stream")
    before, _ = sse.until("ready")
    assert [e["data"]["n"] for e in events_of(before, "backfill")] == list(range(26, 41))
    sse.close()
    none = viewer.stream("/api/stream?minutes=0")
    before, ready = none.until("ready")
    assert events_of(before, "backfill") == [] and json.loads(ready["data"])["backfilled"] == 0
    none.close()


def test_bad_region_is_a_400_naming_the_problem(viewer_factory: Factory) -> None:
    viewer = viewer_factory()
    status, body = viewer.get("/api/stream?region=circle:100,0,5")
    assert status == 400 and "not a valid position" in body


def test_cells_endpoint_gives_four_corners_per_token(viewer_factory: Factory) -> None:
    viewer = viewer_factory()
    tokens = cap_covering(37.0, 13.8, 20.0, 8)
    corners = viewer.get_json(f"/api/cells?tokens={','.join(tokens)}")
    assert set(corners) == set(tokens)
    assert all(len(v) == 4 for v in corners.values())
    status, _ = viewer.get("/api/cells?tokens=zz")
    assert status == 400


def test_timemap_endpoint_pairs_gaps_of_one_source(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    for t in (0, 1000, 3000, 7000, 15000):
        pub.emit(pub.make("quakes", 1.0, 2.0, kind="quake", t_ms=1_700_000_000_000 + t))
    pub.emit(pub.make("other", 1.0, 2.0, t_ms=1_700_000_000_500))
    pub.flush()
    viewer = viewer_factory()
    tm = viewer.get_json("/api/timemap?src=quakes")
    assert tm["events"] == 5
    assert tm["before_s"] == [1.0, 2.0, 4.0]
    assert tm["after_s"] == [2.0, 4.0, 8.0]
    status, _ = viewer.get("/api/timemap")
    assert status == 400


def test_stats_and_range_outline_come_from_the_streams(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    rx = (37.0, 13.8)
    rng = random.Random(11)
    expected = RangeOutline(*rx)
    for i in range(200):
        lat, lon = scatter(rng, *rx, 300.0)
        t = 1_700_000_000_000 + i * 1000
        icao = f"{i % 7:06x}"
        pub.emit(
            pub.make(
                "adsb",
                lat,
                lon,
                kind="aircraft.position",
                t_ms=t,
                data={"icao": icao, "rssi_db": -10.0},
            )
        )
        expected.add(lat, lon, t)
    for _ in range(5):
        pub.emit(pub.make("quakes", 1.0, 2.0, kind="quake"))
    pub.flush()
    viewer = viewer_factory(receivers={"adsb": rx})
    deadline_stats: dict[str, Any] = {}
    for _ in range(100):
        deadline_stats = viewer.get_json("/api/stats")
        if deadline_stats["sources"].get("adsb", {}).get("total") == 200 and (
            deadline_stats["sources"].get("quakes", {}).get("total") == 5
        ):
            break
        time.sleep(0.05)
    stats = deadline_stats
    assert stats["sources"]["adsb"]["kinds"] == {"aircraft.position": 200}
    assert stats["sources"]["adsb"]["rate_15m"] == pytest.approx(200 / 15)
    assert sum(stats["sources"]["quakes"]["history_per_min"]) == 5
    recv = stats["receivers"]["adsb"]
    assert recv["aircraft_seen"] == 7 and recv["positions"] == 200
    assert recv["rssi_db_mean"] == pytest.approx(-10.0)
    assert stats["metrics"] is None
    outline = viewer.get_json("/api/range")["adsb"]
    want = expected.snapshot(1_700_000_200_000)
    assert outline["all_time"] == want["all_time"]
    assert outline["max_all_km"] == pytest.approx(want["max_all_km"])


def test_sources_that_start_after_the_viewer_are_counted(
    published_env: Env, viewer_factory: Factory
) -> None:
    _, pub = published_env
    pub.publish("early", 1.0, 2.0)
    viewer = viewer_factory(stats_discover_s=0.1)
    for _ in range(3):
        pub.publish("late", 3.0, 4.0)
    totals: dict[str, int] = {}
    for _ in range(100):
        sources = viewer.get_json("/api/stats")["sources"]
        totals = {name: s["total"] for name, s in sources.items()}
        if totals.get("late") == 3:
            break
        time.sleep(0.05)
    assert totals == {"early": 1, "late": 3}


def test_daemon_metrics_are_scraped_when_configured(viewer_factory: Factory) -> None:
    metrics = Metrics()
    metrics.inc("events_in_total", 12, source="adsb")
    metrics.inc("adsb_messages_total", 5, source="adsb", df="17")
    metrics.inc("adsb_messages_total", 3, source="adsb", df="11")
    metrics.set("spool_depth", 0)
    health = HealthServer("127.0.0.1:0", metrics, lambda: {"ok": True})
    health.start()
    try:
        viewer = viewer_factory(metrics_url=f"http://127.0.0.1:{health.port}/metrics")
        stats = viewer.get_json("/api/stats")
    finally:
        health.stop()
    assert stats["metrics"]["by_source"]["adsb"] == {
        "adsb_messages_total": 8.0,
        "events_in_total": 12.0,
    }
    assert stats["metrics"]["global"] == {"spool_depth": 0.0}


def test_page_and_assets_are_served_by_the_viewer(viewer_factory: Factory) -> None:
    viewer = viewer_factory()
    status, page = viewer.get("/")
    assert status == 200 and "/static/app.js" in page
    assert "http" not in page.replace("http://www.w3.org", "")  # no CDN
    status, js = viewer.get("/static/app.js")
    assert status == 200 and "EventSource" in js
    world = viewer.get_json("/static/countries-110m.json")
    assert world["type"] == "Topology" and "countries" in world["objects"]
    cfg = viewer.get_json("/api/config")
    assert cfg["cell_stream_level"] == 8 and cfg["station"]["id"] == "viewer-test"
