"""The FDSN client against a local FDSN-like server: counting, splitting, paging."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from usgs_fake_server import FakeUsgsServer, FdsnCatalog

from daemon.sources.http_poll import HttpFetcher
from daemon.sources.usgs.fdsn import FdsnClient, FdsnQuery, format_time
from daemon.sources.usgs.feed import parse_feed

DAY_2022 = "all_day_2022-09-29.geojson"
START_MS = 1664323200000  # 2022-09-28T00:00:00Z
END_MS = 1664496000000  # 2022-09-30T00:00:00Z


def catalog_features(usgs_dir: Path, deleted: int = 0) -> list[dict[str, Any]]:
    """The 2022 day's features; the first `deleted` ones as FDSN shows deleted events."""
    features: list[dict[str, Any]] = json.loads((usgs_dir / DAY_2022).read_bytes())["features"]
    features = copy.deepcopy(features)
    for f in features[:deleted]:
        f["properties"]["status"] = "deleted"
        f["properties"]["updated"] += 3_600_000
    return features


def no_wait(seconds: float) -> bool:
    return False


def test_format_time_is_utc_with_milliseconds() -> None:
    assert format_time(1664421915090) == "2022-09-29T03:25:15.090"


def test_query_params_carry_filters() -> None:
    q = FdsnQuery(START_MS, END_MS, min_magnitude=2.5, region=(-30.03, -51.23, 500.0),
                  updated_after_ms=START_MS)
    assert q.params() == {
        "starttime": "2022-09-28T00:00:00.000", "endtime": "2022-09-30T00:00:00.000",
        "includedeleted": "true", "updatedafter": "2022-09-28T00:00:00.000",
        "minmagnitude": "2.5", "latitude": "-30.03", "longitude": "-51.23",
        "maxradiuskm": "500",
    }


def test_split_halves_cover_the_window_exactly_once() -> None:
    first, second = FdsnQuery(10, 21).split()
    assert (first.start_ms, first.end_ms, second.start_ms, second.end_ms) == (10, 15, 16, 21)


def test_window_over_the_limit_is_split_until_every_page_fits(
        usgs_http: FakeUsgsServer, usgs_dir: Path) -> None:
    base = usgs_http.serve_fdsn(FdsnCatalog(catalog_features(usgs_dir), max_allowed=50))
    client = FdsnClient(HttpFetcher(wait=no_wait, retries=0), base, limit=50)
    pages = list(client.pages(FdsnQuery(START_MS, END_MS)))
    ids: list[str] = []
    for page in pages:
        assert page.count <= 50
        if page.count:
            quakes = parse_feed(page.body, src="q", station="st", rx_ms=0).quakes
            assert len(quakes) == page.count
            ids += [q.eventid for q in quakes]
    assert len(ids) == 244 and len(set(ids)) == 244
    # Oldest window first, events in time order within each page.
    times = [t for page in pages if page.count
             for t in (f["properties"]["time"] for f in json.loads(page.body)["features"])]
    assert times == sorted(times)
    assert client.count_requests > 1 and len(pages) >= 5
    queries = usgs_http.hits_on("/fdsnws/event/1/query")
    assert all(h.params["includedeleted"] == "true" and h.params["orderby"] == "time-asc"
               and h.params["limit"] == "50" for h in queries)


def test_window_within_the_limit_is_one_query(
        usgs_http: FakeUsgsServer, usgs_dir: Path) -> None:
    base = usgs_http.serve_fdsn(FdsnCatalog(catalog_features(usgs_dir)))
    client = FdsnClient(HttpFetcher(wait=no_wait), base)
    pages = list(client.pages(FdsnQuery(START_MS, END_MS)))
    assert [p.count for p in pages] == [244]
    assert (client.count_requests, client.query_requests) == (1, 1)


def test_page_that_comes_back_full_is_split_again(
        usgs_http: FakeUsgsServer, usgs_dir: Path) -> None:
    # 52 events, counted as 47: the first query returns a full page of 50.
    catalog = FdsnCatalog(catalog_features(usgs_dir)[:52], max_allowed=50)
    base = usgs_http.serve_fdsn(catalog)
    real_count = catalog.reply

    def undercount(path: str, params: dict[str, str]) -> Any:
        # Events "arrive" between the count and the query: counts are 5 short.
        reply = real_count(path, params)
        doc = json.loads(reply.body)
        doc["count"] = max(0, doc["count"] - 5)
        reply.body = json.dumps(doc).encode()
        return reply

    usgs_http.routes["/fdsnws/event/1/count"] = undercount
    client = FdsnClient(HttpFetcher(wait=no_wait, retries=0), base, limit=50)
    pages = [p for p in client.pages(FdsnQuery(START_MS, END_MS)) if p.body]
    ids = [q.eventid for p in pages
           for q in parse_feed(p.body, src="q", station="st", rx_ms=0).quakes]
    assert set(ids) == {f["id"] for f in catalog.features}
    assert client.query_requests > len(pages)  # at least one full page was re-split


def test_deleted_events_come_back_as_quake_deleted(
        usgs_http: FakeUsgsServer, usgs_dir: Path) -> None:
    base = usgs_http.serve_fdsn(FdsnCatalog(catalog_features(usgs_dir, deleted=3)))
    client = FdsnClient(HttpFetcher(wait=no_wait), base)
    kinds = [q.event.kind for p in client.pages(FdsnQuery(START_MS, END_MS))
             for q in parse_feed(p.body, src="q", station="st", rx_ms=0).quakes]
    assert kinds.count("quake.deleted") == 3 and kinds.count("quake") == 241


def test_count_that_is_not_a_number_is_a_fetch_error(usgs_http: FakeUsgsServer) -> None:
    from usgs_fake_server import Reply

    from daemon.sources.http_poll import FetchError

    usgs_http.routes["/fdsnws/event/1/count"] = [Reply(200, b"<html>oops</html>")]
    client = FdsnClient(HttpFetcher(wait=no_wait), usgs_http.url("/fdsnws/event/1"))
    with pytest.raises(FetchError):
        client.count(FdsnQuery(START_MS, END_MS))
