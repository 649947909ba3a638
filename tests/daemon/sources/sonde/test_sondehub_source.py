"""The `sondehub` source against a real local HTTP server that answers like the SondeHub
v2 API: the area and serial queries, max-age, backoff on 5xx, memo dedupe across a
restart (in a real redis-server), malformed answers counted."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fake_http import FakeHttpServer, Reply, serving
from redis_proc import RedisProcess
from sonde_fixtures import (
    STATION,
    MemoStore,
    make_ctx,
    reference,
    reference_utc_ms,
    write_config,
)
from source_kit import Collect, make_cfg, stream_events

from daemon.config import load_config
from daemon.runtime import open_runtime
from daemon.sources import build_source
from daemon.sources.sonde import sondehub
from daemon.sources.sonde.sondehub import SondeHubSource


@pytest.fixture
def hub() -> Iterator[FakeHttpServer]:
    """A fake SondeHub API (answers are JSON) on a free loopback port."""
    server = FakeHttpServer({"Content-Type": "application/json"})
    with serving(server):
        yield server


def rs41_telemetry(ref: dict[str, Any]) -> dict[str, Any]:
    """A frame as auto_rx uploads it to SondeHub (datetime in GPS time, ref_datetime GPS)."""
    return {
        "software_name": "radiosonde_auto_rx", "software_version": "1.7.4",
        "uploader_callsign": "PY3ABC", "time_received": "2015-08-02T11:59:10.120000Z",
        "manufacturer": "Vaisala", "type": "RS41", "subtype": "RS41-SG",
        "serial": ref["id"], "frame": ref["frame"],
        "datetime": ref["datetime"].replace(".000Z", ".000000Z"),
        "lat": ref["lat"], "lon": ref["lon"], "alt": ref["alt"], "vel_v": ref["vel_v"],
        "vel_h": ref["vel_h"], "heading": ref["heading"], "sats": ref["sats"],
        "batt": ref["batt"], "frequency": 402.0, "snr": 14.2, "ref_datetime": "GPS",
        "ref_position": "GPS", "uploader_position": [-30.03, -51.23, 10.0],
        "uploader_antenna": "1/4 wave", "position": f"{ref['lat']},{ref['lon']}",
    }


DFM = {
    "software_name": "radiosonde_auto_rx", "software_version": "1.7.4",
    "uploader_callsign": "PY2XYZ", "time_received": "2024-05-02T00:00:01.5Z",
    "manufacturer": "Graw", "type": "DFM", "subtype": "DFM17", "serial": "19012345",
    "frame": 1714608000, "datetime": "2024-05-02T00:00:00.000000Z", "lat": -29.9,
    "lon": -51.1, "alt": 2500.5, "vel_v": 5.1, "vel_h": 8.0, "heading": 270.0, "sats": 9,
    "batt": 5.1, "frequency": 403.01, "rssi": -95.5, "temp": 12.5, "humidity": 80.0,
}


def sondes_answer(*telemetry: dict[str, Any]) -> Reply:
    return Reply(body=json.dumps({t["serial"]: t for t in telemetry}).encode())


def make_source(hub: FakeHttpServer, tmp_path: Path, memo: MemoStore | None = None,
                waits: list[float] | None = None, **cfg: Any) -> SondeHubSource:
    recorded = waits if waits is not None else []

    def wait(seconds: float) -> bool:
        recorded.append(seconds)
        return False

    full = make_cfg(sondehub.FIELDS, "sondehub", url=hub.base, **cfg)
    return SondeHubSource("hub", full, make_ctx(tmp_path, memo), wait=wait)


def run_once(source: SondeHubSource) -> Collect:
    collect = Collect()
    source.run(collect, threading.Event(), once=True)
    return collect


def test_area_query_publishes_each_sondes_latest_frame(
        hub: FakeHttpServer, tmp_path: Path) -> None:
    ref = reference()[5]
    hub.serve("/sondes", sondes_answer(rs41_telemetry(ref), DFM))
    collect = run_once(make_source(hub, tmp_path, radius_km=250.0))
    hit = hub.hits_on("/sondes")[0]
    assert hit.params == {"lat": f"{STATION.lat:.5f}", "lon": f"{STATION.lon:.5f}",
                          "distance": "250000", "last": "10800"}  # metres, seconds
    assert "geosensord" in hit.headers["User-Agent"]
    by_serial = {e.data["serial"]: e for e in collect.events}
    rs = by_serial["L1830070"]
    assert rs.id == f"sonde:L1830070:{ref['frame']}"  # the id the rs41 source gives it
    assert rs.t == reference_utc_ms(ref)  # ref_datetime GPS: 17 s taken off
    assert (rs.lat, rs.lon, rs.alt, rs.alt_ref) == (ref["lat"], ref["lon"], ref["alt"],
                                                    "ellipsoid")
    assert rs.data["freq_hz"] == 402_000_000 and rs.data["uploader"] == "PY3ABC"
    dfm = by_serial["19012345"]
    assert dfm.id == "sonde:19012345:1714608000"
    assert dfm.t == 1_714_608_000_000  # UTC as it is
    assert (dfm.data["type"], dfm.data["subtype"], dfm.data["rssi_dbm"]) == (
        "DFM", "DFM17", -95.5)
    assert (dfm.data["temp_c"], dfm.data["humidity_pct"]) == (12.5, 80.0)
    assert [c["memo"] for c in collect.calls] == [
        (e.data["serial"], str(e.data["frame"])) for e in collect.events]


def test_serial_query_takes_the_newest_point(hub: FakeHttpServer, tmp_path: Path) -> None:
    refs = reference()[:3]
    points = {r["datetime"].replace(".000Z", ".000000Z"): rs41_telemetry(r)
              for r in reversed(refs)}
    hub.serve("/sondes/telemetry", Reply(body=json.dumps({"L1830070": points}).encode()))
    collect = run_once(make_source(hub, tmp_path, radius_km=0.0, serials=["L1830070"]))
    assert hub.hits_on("/sondes") == []
    assert hub.hits_on("/sondes/telemetry")[0].params == {"serial": "L1830070",
                                                          "duration": "3h"}
    assert [e.data["frame"] for e in collect.events] == [refs[-1]["frame"]]


def test_polls_no_faster_than_max_age_and_publish_only_changed_frames(
        hub: FakeHttpServer, tmp_path: Path) -> None:
    refs = reference()
    hub.serve("/sondes",
              Reply(body=sondes_answer(rs41_telemetry(refs[0])).body,
                    headers={"Cache-Control": "public, max-age=120"}),
              sondes_answer(rs41_telemetry(refs[0])),  # nothing new
              sondes_answer(rs41_telemetry(refs[4])))
    waits: list[float] = []
    source = make_source(hub, tmp_path, waits=waits)
    stop = threading.Event()
    collect = Collect()
    polls = 0

    def wait(seconds: float) -> bool:
        nonlocal polls
        waits.append(seconds)
        polls += 1
        return polls >= 3

    source._wait_override = wait
    source.run(collect, stop, once=False)
    assert waits == [120.0, 120.0, 120.0]  # interval 60 s raised to max-age
    assert [e.data["frame"] for e in collect.events] == [refs[0]["frame"], refs[4]["frame"]]
    assert source.last_stats.repeated == 0 and len(hub.hits_on("/sondes")) == 3


def test_5xx_is_retried_with_backoff_and_retry_after(hub: FakeHttpServer, tmp_path: Path) -> None:
    ref = reference()[0]
    hub.serve("/sondes", Reply(503, b"busy", {"Retry-After": "7"}), Reply(502, b"bad gw"),
              sondes_answer(rs41_telemetry(ref)))
    waits: list[float] = []
    collect = run_once(make_source(hub, tmp_path, waits=waits))
    assert len(hub.hits_on("/sondes")) == 3
    assert waits[0] >= 7.0  # Retry-After honoured
    assert 1.0 <= waits[1] <= 2.0  # exponential backoff with jitter: base 1 s, 2nd attempt
    assert [e.data["frame"] for e in collect.events] == [ref["frame"]]


def test_a_failed_poll_slows_the_next_ones_down(hub: FakeHttpServer, tmp_path: Path) -> None:
    hub.serve("/sondes", Reply(500, b"down"))
    source = make_source(hub, tmp_path, retries=0)
    collect = run_once(source)
    assert collect.events == []
    assert source.ctx.metrics.get("sonde_poll_errors_total", source="hub",
                                  reason="fetch") == 1
    assert source.next_delay_s() == 120.0
    source.poll(collect)
    assert source.next_delay_s() == 240.0


def test_malformed_answers_and_telemetry_are_counted_and_skipped(
        hub: FakeHttpServer, tmp_path: Path) -> None:
    good = rs41_telemetry(reference()[0])
    no_fix = {**DFM, "serial": "19000001", "lat": 0.0, "lon": 0.0}
    hub.serve("/sondes", Reply(body=json.dumps({
        "L1830070": good, "19000001": no_fix, "X": {"serial": "X", "frame": 1},
        "Y": "not an object"}).encode()))
    hub.serve("/sondes/telemetry", Reply(body=b"<html>maintenance</html>"))
    source = make_source(hub, tmp_path, serials=["L1830070"])
    collect = run_once(source)
    assert [e.data["serial"] for e in collect.events] == ["L1830070"]
    m = source.ctx.metrics
    assert m.get("bad_input_total", source="hub", reason="no_fix") == 1
    assert m.get("bad_input_total", source="hub", reason="missing_field") == 1
    assert m.get("bad_input_total", source="hub", reason="bad_document") == 2


@pytest.mark.slow
def test_memo_in_redis_dedupes_across_a_restart(
        hub: FakeHttpServer, tmp_path: Path, redis_server: RedisProcess) -> None:
    refs = reference()
    config = load_config(write_config(tmp_path, redis_server.url, f"""
        [sources.hub]
        type = "sondehub"
        url = "{hub.base}"
        """))

    def one_poll() -> None:
        with open_runtime(config) as rt:
            source = build_source("hub", config.sources["hub"], rt.source_context())
            source.run(rt.pipeline.emitter(source.producer, "hub"), threading.Event(),
                       once=True)
            assert rt.pipeline.wait_idle(10)

    hub.serve("/sondes", sondes_answer(rs41_telemetry(refs[0]), DFM))
    one_poll()
    # A new process: only what changed since is published.
    hub.serve("/sondes", sondes_answer(rs41_telemetry(refs[1]), DFM))
    one_poll()
    one_poll()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    ids = [fields["id"] for fields in stream_events(redis_server.url)]
    assert sorted(ids) == sorted([f"sonde:L1830070:{refs[0]['frame']}",
                                  "sonde:19012345:1714608000",
                                  f"sonde:L1830070:{refs[1]['frame']}"])
    assert client.hgetall("geo:memo:poa:hub") == {"L1830070": str(refs[1]["frame"]),
                                                   "19012345": "1714608000"}
