"""The usgs source against a real local HTTP server: polling, retries, max-age, dedupe."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import source_kit
from source_kit import Collect
from usgs_fake_server import FakeUsgsServer, Reply

from daemon.config import ConfigErrors, parse_config
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station
from daemon.sources.usgs import FIELDS, UsgsSource, build
from daemon.sources.usgs.source import backfill_producer

FEED_PATH = "/earthquakes/feed/v1.0/summary/all_day.geojson"
DAY_2022 = "all_day_2022-09-29.geojson"


class Waits:
    """An injected wait: records each delay and asks to stop after `polls` poll waits."""

    def __init__(self, stop_after: int) -> None:
        self.delays: list[float] = []
        self.stop_after = stop_after

    def __call__(self, seconds: float) -> bool:
        self.delays.append(seconds)
        return len(self.delays) >= self.stop_after


def make_ctx(tmp_path: Path, memo: dict[str, dict[str, str]] | None = None,
             station: Station | None = None) -> SourceContext:
    store = memo if memo is not None else {}
    return SourceContext(
        station=station or Station("st", -30.03, -51.23),
        metrics=Metrics(),
        state_dir=tmp_path / "state",
        config_dir=tmp_path,
        memo=lambda producer: dict(store.get(producer, {})),
    )


def make_cfg(**overrides: Any) -> dict[str, Any]:
    return source_kit.make_cfg(FIELDS, "usgs", **overrides)


def feed_reply(path: Path, **headers: str) -> Reply:
    return Reply(200, path.read_bytes(), {"Content-Type": "application/json", **headers})


def test_polling_the_2022_day_feed_publishes_244_quakes(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022)]
    source = build("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path))
    emit = Collect()
    source.run(emit, threading.Event(), once=True)
    assert len(emit.events) == 244
    assert {e.kind for e in emit.events} == {"quake"}
    assert all(m is not None and e.id == f"usgs:{m[0]}:{m[1]}"
               for e, m in zip(emit.events, emit.memos, strict=True))
    assert len(usgs_http.hits_on(FEED_PATH)) == 1


def test_file_url_and_relative_path_are_polled_from_disk(usgs_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "feeds").mkdir()
    copy = tmp_path / "feeds" / "day.geojson"
    copy.write_bytes((usgs_dir / DAY_2022).read_bytes())
    for url in (copy.as_uri(), "feeds/day.geojson"):
        emit = Collect()
        build("quakes", make_cfg(url=url), make_ctx(tmp_path)).run(
            emit, threading.Event(), once=True)
        assert len(emit.events) == 244, url


def test_second_poll_publishes_only_the_feature_whose_updated_changed(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    doc["features"][17]["properties"]["updated"] += 60_000
    changed_id = doc["features"][17]["id"]
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022),
                                   feed_reply(usgs_dir / DAY_2022),
                                   Reply(200, json.dumps(doc).encode())]
    waits = Waits(stop_after=3)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path),
               wait=waits).run(emit, threading.Event(), once=False)
    assert len(usgs_http.hits_on(FEED_PATH)) == 3
    assert len(emit.events) == 245
    assert emit.events[-1].data["eventid"] == changed_id


def test_older_version_from_a_stale_cache_is_not_published(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    feature = doc["features"][0]
    memo = {"st:quakes": {feature["id"]: str(feature["properties"]["updated"] + 1)}}
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022)]
    emit = Collect()
    source = UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path, memo))
    source.run(emit, threading.Event(), once=True)
    assert len(emit.events) == 243
    assert source.last_stats.stale == 1


def test_versions_remembered_by_a_backfill_are_not_republished(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    memo = {backfill_producer("st:quakes"): {
        f["id"]: str(f["properties"]["updated"]) for f in doc["features"][:10]}}
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022)]
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path, memo)).run(
        emit, threading.Event(), once=True)
    assert len(emit.events) == 234


def test_cache_control_max_age_raises_the_interval(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022,
                                              **{"Cache-Control": "public, max-age=60"})]
    waits = Waits(stop_after=1)
    source = UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH), interval=10),
                        make_ctx(tmp_path), wait=waits)
    source.run(Collect(), threading.Event(), once=False)
    assert source.effective_interval_s == 60.0
    assert waits.delays == [60.0]


def test_interval_above_max_age_is_kept(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022,
                                              **{"Cache-Control": "max-age=60"})]
    waits = Waits(stop_after=1)
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH), interval=300),
               make_ctx(tmp_path), wait=waits).run(Collect(), threading.Event(), once=False)
    assert waits.delays == [300.0]


def test_failed_polls_double_the_delay_like_every_polling_source(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [Reply(500, b"down")] * 3 + [feed_reply(usgs_dir / DAY_2022)]
    waits = Waits(stop_after=4)
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH), interval=60, retries=0,
                                  backoff_max_s=200),
               make_ctx(tmp_path), wait=waits).run(Collect(), threading.Event(), once=False)
    # 2x and 4x the interval, then capped at backoff_max_s; the interval again after success.
    assert waits.delays == [120.0, 200.0, 200.0, 60.0]


def test_server_errors_are_retried_with_growing_backoff(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [Reply(503, b"busy"), Reply(500, b"oops"),
                                   Reply(502, b"gateway"), feed_reply(usgs_dir / DAY_2022)]
    waits = Waits(stop_after=99)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH), retries=3),
               make_ctx(tmp_path), wait=waits).run(emit, threading.Event(), once=True)
    assert len(usgs_http.hits_on(FEED_PATH)) == 4
    assert len(emit.events) == 244
    # Three backoffs with jitter in [d/2, d] for d = 1, 2, 4 s.
    assert len(waits.delays) == 3
    for delay, d in zip(waits.delays, (1.0, 2.0, 4.0), strict=True):
        assert d / 2 <= delay <= d


def test_retry_after_of_a_429_is_honoured(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [Reply(429, b"slow down", {"Retry-After": "7"}),
                                   feed_reply(usgs_dir / DAY_2022)]
    waits = Waits(stop_after=99)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path),
               wait=waits).run(emit, threading.Event(), once=True)
    assert waits.delays == [7.0]
    assert len(emit.events) == 244


def test_client_errors_are_not_retried_and_do_not_kill_the_source(
        usgs_http: FakeUsgsServer, tmp_path: Path) -> None:
    waits = Waits(stop_after=2)
    ctx = make_ctx(tmp_path)
    source = UsgsSource("quakes", make_cfg(url=usgs_http.url("/missing.geojson"), interval=30),
                        ctx, wait=waits)
    source.run(Collect(), threading.Event(), once=False)
    assert len(usgs_http.hits_on("/missing.geojson")) == 2
    # Failed polls back off: 2x the interval, then 4x.
    assert waits.delays == [60.0, 120.0]
    assert ctx.metrics.get("usgs_poll_errors_total", source="quakes", reason="fetch") == 2


def test_refused_connections_are_retried_then_count_as_a_failed_poll(tmp_path: Path) -> None:
    from redis_proc import free_port

    waits = Waits(stop_after=99)
    ctx = make_ctx(tmp_path)
    UsgsSource("quakes", make_cfg(url=f"http://127.0.0.1:{free_port()}/feed", retries=2),
               ctx, wait=waits).run(Collect(), threading.Event(), once=True)
    assert len(waits.delays) == 2
    assert ctx.metrics.get("usgs_poll_errors_total", source="quakes", reason="fetch") == 1


def test_timeouts_are_retried(usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    slow = threading.Event()

    def first_slow(path: str, params: dict[str, str]) -> Reply:
        if not slow.is_set():
            slow.set()
            threading.Event().wait(1.0)
        return feed_reply(usgs_dir / DAY_2022)

    usgs_http.routes[FEED_PATH] = first_slow
    waits = Waits(stop_after=99)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH), timeout_s=0.2),
               make_ctx(tmp_path), wait=waits).run(emit, threading.Event(), once=True)
    assert len(waits.delays) == 1
    assert len(emit.events) == 244


def test_malformed_document_is_logged_and_retried_next_poll(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [Reply(200, b"<html>maintenance</html>", {"ETag": '"x"'}),
                                   feed_reply(usgs_dir / DAY_2022)]
    waits = Waits(stop_after=2)
    ctx = make_ctx(tmp_path)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), ctx, wait=waits).run(
        emit, threading.Event(), once=False)
    hits = usgs_http.hits_on(FEED_PATH)
    assert len(hits) == 2
    assert "If-None-Match" not in hits[1].headers  # the bad document is fetched again in full
    assert len(emit.events) == 244
    assert ctx.metrics.get("bad_input_total", source="quakes", reason="malformed_document") == 1


def test_malformed_features_are_counted_and_skipped(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    doc["features"][0]["geometry"] = None
    doc["features"][1]["geometry"]["coordinates"][1] = 123.0
    doc["features"][2]["geometry"]["coordinates"][0] = "east"
    del doc["features"][3]["properties"]["time"]
    usgs_http.routes[FEED_PATH] = [Reply(200, json.dumps(doc).encode())]
    ctx = make_ctx(tmp_path)
    emit = Collect()
    build("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), ctx).run(
        emit, threading.Event(), once=True)
    assert len(emit.events) == 240
    m = ctx.metrics
    assert m.get("bad_input_total", source="quakes", reason="missing_geometry") == 1
    assert m.get("bad_input_total", source="quakes", reason="lat_out_of_range") == 1
    assert m.get("bad_input_total", source="quakes", reason="bad_coordinates") == 1
    assert m.get("bad_input_total", source="quakes", reason="bad_time") == 1


def test_conditional_get_sends_validators_and_304_publishes_nothing(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    stamp = "Thu, 29 Sep 2022 03:32:09 GMT"
    usgs_http.routes[FEED_PATH] = [
        feed_reply(usgs_dir / DAY_2022, ETag='"v1"', **{"Last-Modified": stamp}),
        Reply(304, b"", {"Cache-Control": "max-age=60"}),
    ]
    waits = Waits(stop_after=2)
    emit = Collect()
    source = UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), make_ctx(tmp_path),
                        wait=waits)
    source.run(emit, threading.Event(), once=False)
    hits = usgs_http.hits_on(FEED_PATH)
    assert hits[1].headers.get("If-None-Match") == '"v1"'
    assert hits[1].headers.get("If-Modified-Since") == stamp
    assert len(emit.events) == 244
    assert waits.delays == [60.0, 60.0]


def test_radius_and_magnitude_config_filters_what_is_published(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    from daemon.s2index import distance_km

    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    usgs_http.routes[FEED_PATH] = [Reply(200, json.dumps(doc).encode())]
    # The station sits at the Geysers (northern California); centre defaults to it.
    station = Station("st", 38.8, -122.8)
    emit = Collect()
    build("quakes", make_cfg(url=usgs_http.url(FEED_PATH), radius_km=250.0, min_magnitude=1.5),
          make_ctx(tmp_path, station=station)).run(emit, threading.Event(), once=True)
    expected = {f["id"] for f in doc["features"]
                if f["properties"]["mag"] >= 1.5
                and distance_km(38.8, -122.8, f["geometry"]["coordinates"][1],
                                f["geometry"]["coordinates"][0]) <= 250.0}
    assert {e.data["eventid"] for e in emit.events} == expected
    assert 0 < len(expected) < 244


def test_stop_during_a_retry_wait_ends_the_source_promptly(
        usgs_http: FakeUsgsServer, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [Reply(503, b"busy")]
    stop = threading.Event()
    source = build("quakes", make_cfg(url=usgs_http.url(FEED_PATH), retries=5),
                   make_ctx(tmp_path))
    thread = threading.Thread(target=source.run, args=(Collect(), stop, False))
    thread.start()
    while not usgs_http.hits_on(FEED_PATH):
        threading.Event().wait(0.01)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


STATION_TOML = '[station]\nid = "st"\nlat = -30.03\nlon = -51.23\n'


def test_issue_config_keys_validate() -> None:
    cfg = parse_config(STATION_TOML + '[sources.quakes]\ntype = "usgs"\n'
                       'url = "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/'
                       'all_hour.geojson"\ninterval = 60\n')
    assert cfg.sources["quakes"]["interval"] == 60.0
    assert cfg.sources["quakes"]["radius_km"] == 0.0


@pytest.mark.parametrize(("line", "key"), [
    ("interval = 0", "sources.quakes.interval"),
    ("interval = -5", "sources.quakes.interval"),
    ("center_lat = 95.0", "sources.quakes.center_lat"),
    ("radius_km = -1", "sources.quakes.radius_km"),
    ("include_types = [1]", "sources.quakes.include_types"),
    ("intervall = 60", "sources.quakes.intervall"),
])
def test_bad_usgs_config_is_reported_with_its_key(line: str, key: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        parse_config(STATION_TOML + f'[sources.quakes]\ntype = "usgs"\n{line}\n', "c.toml")
    assert [e.key for e in info.value.errors] == [key]
    assert info.value.errors[0].line == 7


class FlakyMemo:
    """A memo reader whose Redis is down for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, producer: str) -> dict[str, str]:
        from sinks.base import SinkUnavailable

        self.calls += 1
        if self.calls <= self.failures:
            raise SinkUnavailable("redis at redis://127.0.0.1:1/0: connection refused")
        return {}


def test_source_waits_for_redis_before_publishing(
        usgs_http: FakeUsgsServer, usgs_dir: Path, tmp_path: Path) -> None:
    usgs_http.routes[FEED_PATH] = [feed_reply(usgs_dir / DAY_2022)]
    ctx = make_ctx(tmp_path)
    ctx.memo = FlakyMemo(failures=3)
    waits = Waits(stop_after=4)
    emit = Collect()
    UsgsSource("quakes", make_cfg(url=usgs_http.url(FEED_PATH)), ctx, wait=waits).run(
        emit, threading.Event(), once=False)
    assert waits.delays[:3] == [1.0, 2.0, 4.0]
    assert len(emit.events) == 244


def test_once_run_gives_up_when_redis_stays_down(usgs_dir: Path, tmp_path: Path) -> None:
    from sinks.base import SinkUnavailable

    ctx = make_ctx(tmp_path)
    ctx.memo = FlakyMemo(failures=100)
    emit = Collect()
    source = UsgsSource("quakes", make_cfg(url=str(usgs_dir / DAY_2022)), ctx,
                        wait=Waits(stop_after=99))
    with pytest.raises(SinkUnavailable):
        source.run(emit, threading.Event(), once=True)
    assert emit.events == []


def test_readme_sample_config_block_validates_and_documents_every_key() -> None:
    readme = (Path(__file__).resolve().parents[4] / "daemon/sources/usgs/README.md").read_text()
    block = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = parse_config(STATION_TOML + block).sources["quakes"]
    assert set(cfg) - {"type"} == set(FIELDS)
    assert cfg["min_magnitude"] == 2.5 and cfg["include_types"] == ["earthquake"]


def test_public_surface_is_deliberate() -> None:
    import daemon.sources.usgs as usgs

    assert sorted(usgs.__all__) == ["DEFAULT_URL", "FIELDS", "UsgsSource", "build"]
    assert all(hasattr(usgs, name) for name in usgs.__all__)
