"""Parsing the real USGS feeds into quake Events, and the filters."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from daemon.s2index import distance_km
from daemon.sources.usgs.feed import (
    DocumentError,
    FeatureError,
    QuakeFilter,
    parse_feature,
    parse_feed,
)

RX_MS = 1_700_000_000_000


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_bytes())
    return doc


def _parse(raw: bytes | str) -> Any:
    return parse_feed(raw, src="quakes", station="st", rx_ms=RX_MS)


def test_2022_day_feed_parses_all_244_features(usgs_dir: Path) -> None:
    result = _parse((usgs_dir / "all_day_2022-09-29.geojson").read_bytes())
    assert len(result.quakes) == 244
    assert result.errors == []
    assert len({q.event.id for q in result.quakes}) == 244
    assert result.metadata["count"] == 244


def test_event_fields_follow_the_contract_for_the_m68_tsunami_quake(usgs_dir: Path) -> None:
    doc = _load(usgs_dir / "all_day_2022-09-29.geojson")
    feature = next(f for f in doc["features"] if f["id"] == "us6000ip57")
    q = parse_feature(feature, src="quakes", station="st", rx_ms=RX_MS)
    props, (lon, lat, depth_km) = feature["properties"], feature["geometry"]["coordinates"]
    ev = q.event
    assert ev.id == f"usgs:us6000ip57:{props['updated']}"
    assert (ev.kind, ev.src, ev.station, ev.t, ev.rx) == ("quake", "quakes", "st",
                                                          props["time"], RX_MS)
    assert (ev.lat, ev.lon) == (lat, lon)
    assert ev.alt == pytest.approx(-depth_km * 1000.0)
    assert ev.alt_ref == "depth"
    d = ev.data
    assert d["mag"] == 6.8 and d["mag_type"] == "mww"
    assert d["tsunami"] is True and d["alert"] == "green"
    assert d["ids"] == ["pt22272001", "at00riyb5m", "us6000ip57"]
    assert d["sources"] == [s for s in props["sources"].split(",") if s]
    assert d["depth_km"] == depth_km and d["updated"] == props["updated"]
    assert (d["net"], d["code"], d["eventid"]) == ("us", "6000ip57", "us6000ip57")
    assert d["status"] == props["status"]
    assert d["title"] == props["title"] and d["url"] == props["url"]
    json.dumps(d, allow_nan=False)  # the stream's data field must encode


def test_2016_feed_upper_case_status_and_nulls_are_tolerated(usgs_dir: Path) -> None:
    doc = _load(usgs_dir / "all_day_2016-11-03.geojson")
    result = _parse(json.dumps(doc))
    assert len(result.quakes) == 151 and result.errors == []
    upper = {f["id"] for f in doc["features"] if f["properties"]["status"] == "REVIEWED"}
    assert len(upper) == 5
    by_id = {q.eventid: q for q in result.quakes}
    assert all(by_id[i].event.data["status"] == "reviewed" for i in upper)
    assert {q.event.data["status"] for q in result.quakes} == {"reviewed", "automatic"}
    assert any(q.event.data["felt"] is None and q.event.data["mmi"] is None
               for q in result.quakes)
    assert sum(q.event.data["tsunami"] for q in result.quakes) == 1
    types = {q.type for q in result.quakes}
    assert {"explosion", "quarry blast", "earthquake"} <= types


def test_hour_feed_with_bbox_parses(usgs_dir: Path) -> None:
    result = _parse((usgs_dir / "all_hour_2017-12-03.geojson").read_bytes())
    assert len(result.quakes) == 8 and result.errors == []


def test_old_style_nulls_and_string_numbers_do_not_break_a_feature() -> None:
    feature = {
        "type": "Feature", "id": "usc000csx3",
        "properties": {"mag": None, "time": 1348176066000, "updated": 1348176066000,
                       "tsunami": None, "sig": "449", "status": "REVIEWED", "ids": None,
                       "felt": None, "place": None},
        "geometry": {"type": "Point", "coordinates": [126.3832, 5.9775, None]},
    }
    q = parse_feature(feature, src="s", station="st", rx_ms=RX_MS)
    assert q.event.alt is None
    assert q.event.data["sig"] == 449 and q.event.data["tsunami"] is None
    assert q.event.data["ids"] == [] and q.mag is None


GOOD: dict[str, Any] = {
    "type": "Feature", "id": "nc1",
    "properties": {"mag": 2.0, "time": 1664421915090, "updated": 1664422010824,
                   "status": "automatic", "type": "earthquake"},
    "geometry": {"type": "Point", "coordinates": [-122.8, 38.8, 2.2]},
}


def _broken(path: str, value: Any) -> dict[str, Any]:
    feature = copy.deepcopy(GOOD)
    node: Any = feature
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return feature


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "reason"), [
    ("id", _DELETE, "missing_id"),
    ("id", "", "missing_id"),
    ("id", "nc:1", "bad_id"),
    ("properties", None, "missing_properties"),
    ("properties.time", _DELETE, "bad_time"),
    ("properties.time", "1664421915090", "bad_time"),
    ("properties.updated", None, "bad_updated"),
    ("geometry", None, "missing_geometry"),
    ("geometry.coordinates", [1.0], "bad_coordinates"),
    ("geometry.coordinates.1", "north", "bad_coordinates"),
    ("geometry.coordinates.1", 91.5, "lat_out_of_range"),
    ("geometry.coordinates.0", -200.0, "lon_out_of_range"),
    ("geometry.coordinates.2", "deep", "bad_coordinates"),
])
def test_malformed_feature_is_rejected_with_its_reason(path: str, value: Any, reason: str) -> None:
    with pytest.raises(FeatureError) as info:
        parse_feature(_broken(path, value), src="s", station="st", rx_ms=RX_MS)
    assert info.value.reason == reason


def test_malformed_features_are_collected_and_the_rest_parsed() -> None:
    doc = {"type": "FeatureCollection",
           "features": [GOOD, _broken("geometry", None), "junk", _broken("id", "nc2")]}
    result = _parse(json.dumps(doc))
    assert [q.eventid for q in result.quakes] == ["nc1", "nc2"]
    assert sorted(e.reason for e in result.errors) == ["missing_geometry", "not_a_feature"]


@pytest.mark.parametrize("raw", [
    b"<html>502 Bad Gateway</html>", b"", b'{"type": "Feature"}', b"[]",
    b'{"type": "FeatureCollection", "features": {}}', b'{"type": "FeatureCollection"',
])
def test_malformed_document_raises_document_error(raw: bytes) -> None:
    with pytest.raises(DocumentError):
        _parse(raw)


def test_deleted_status_makes_a_quake_deleted_event() -> None:
    q = parse_feature(_broken("properties.status", "deleted"), src="s", station="st", rx_ms=1)
    assert q.event.kind == "quake.deleted" and q.deleted


def test_radius_and_magnitude_filter_match_brute_force(usgs_dir: Path) -> None:
    quakes = _parse((usgs_dir / "all_day_2022-09-29.geojson").read_bytes()).quakes
    center = (38.8, -122.8)
    qf = QuakeFilter(min_magnitude=1.0, radius_km=300.0, center_lat=center[0],
                     center_lon=center[1])
    kept = {q.eventid for q in quakes if qf.rejects(q) is None}
    expected = {q.eventid for q in quakes
                if q.mag is not None and q.mag >= 1.0
                and distance_km(*center, q.event.lat, q.event.lon) <= 300.0}
    assert kept == expected
    assert 0 < len(kept) < len(quakes)


def test_type_filter_drops_quarry_blasts(usgs_dir: Path) -> None:
    quakes = _parse((usgs_dir / "all_day_2022-09-29.geojson").read_bytes()).quakes
    qf = QuakeFilter(include_types=frozenset({"earthquake"}))
    reasons = [qf.rejects(q) for q in quakes]
    assert reasons.count("type") == 5 and reasons.count(None) == 239
