"""End to end: the usgs source through the Pipeline and RedisStreamsSink into a real Redis."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import redis
from pipeline_kit import redis_pipeline
from redis_proc import RedisProcess

from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station
from daemon.sources.usgs import FIELDS, build

DAY_2022 = "all_day_2022-09-29.geojson"


def run_daemon_once(redis_url: str, state: Path, feed: str) -> Metrics:
    """One `run --once` of a daemon with one usgs source: a fresh pipeline and source."""
    metrics = Metrics()
    pipeline, sink = redis_pipeline(redis_url, state / "seq.json", metrics)
    pipeline.start()
    try:
        ctx = SourceContext(station=Station("pi", -30.03, -51.23), metrics=metrics,
                            state_dir=state, config_dir=state, memo=sink.memo)
        cfg: dict[str, Any] = {k: f.default for k, f in FIELDS.items()}
        cfg.update(type="usgs", url=feed, include_types=[])
        source = build("quakes", cfg, ctx)
        source.run(pipeline.emitter(source.producer), threading.Event(), once=True)
        assert pipeline.wait_idle()
    finally:
        assert pipeline.stop()
    return metrics


def test_second_run_writes_nothing_and_a_changed_updated_writes_one_more(
        redis_server: RedisProcess, usgs_dir: Path, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    feed = str(usgs_dir / DAY_2022)

    run_daemon_once(redis_server.url, tmp_path, feed)
    assert client.xlen("geo:events") == 244
    assert client.xlen("geo:src:quakes") == 244
    memo = client.hgetall("geo:memo:pi:quakes")
    assert len(memo) == 244

    _, fields = client.xrange("geo:events", count=1)[0]
    assert list(fields)[:11] == ["v", "id", "src", "kind", "t", "rx", "lat", "lon", "alt",
                                 "station", "s2"]
    assert fields["kind"] == "quake" and fields["station"] == "pi"
    data = json.loads(fields["data"])
    assert data["alt_ref"] == "depth"
    assert fields["id"] == f"usgs:{data['eventid']}:{data['updated']}"
    assert memo[data["eventid"]] == str(data["updated"])

    metrics = run_daemon_once(redis_server.url, tmp_path, feed)
    assert client.xlen("geo:events") == 244
    assert metrics.total("events_in_total") == 0

    doc = json.loads((usgs_dir / DAY_2022).read_bytes())
    doc["features"][100]["properties"]["updated"] += 1
    changed = tmp_path / "changed.geojson"
    changed.write_text(json.dumps(doc))
    run_daemon_once(redis_server.url, tmp_path, str(changed))
    assert client.xlen("geo:events") == 245
    _, last = client.xrevrange("geo:events", count=1)[0]
    assert last["id"] == f"usgs:{doc['features'][100]['id']}:" \
                         f"{doc['features'][100]['properties']['updated']}"

    run_daemon_once(redis_server.url, tmp_path, str(changed))
    run_daemon_once(redis_server.url, tmp_path, feed)  # the older version: not republished
    assert client.xlen("geo:events") == 245


def test_2016_feed_with_upper_case_status_lands_lower_case(
        redis_server: RedisProcess, usgs_dir: Path, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    run_daemon_once(redis_server.url, tmp_path, str(usgs_dir / "all_day_2016-11-03.geojson"))
    entries = client.xrange("geo:events")
    assert len(entries) == 151
    statuses = {json.loads(f["data"])["status"] for _, f in entries}
    assert statuses == {"reviewed", "automatic"}
