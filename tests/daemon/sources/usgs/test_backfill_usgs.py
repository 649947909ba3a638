"""`geosensord backfill usgs` end to end: FDSN-like server -> runtime pipeline -> real Redis."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_proc import RedisProcess
from usgs_fake_server import FakeUsgsServer, FdsnCatalog

from daemon.cli import main
from daemon.commands.backfill_usgs import Progress, parse_region, parse_when
from daemon.config import load_config
from daemon.s2index import distance_km

DAY_2022 = "all_day_2022-09-29.geojson"
WINDOW = ["--since", "2022-09-28", "--until", "2022-09-30T00:00:00Z"]


def features(usgs_dir: Path, deleted: int = 0) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads((usgs_dir / DAY_2022).read_bytes())["features"]
    for f in out[:deleted]:
        f["properties"]["status"] = "deleted"
        f["properties"]["updated"] += 3_600_000
    return out


def write_config(tmp_path: Path, redis_url: str, feed: Path, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[station]\nid = "pi"\nlat = -30.03\nlon = -51.23\n'
        f'[redis]\nurl = "{redis_url}"\n'
        f'[state]\ndir = "{tmp_path / "state"}"\n'
        f'[sources.quakes]\ntype = "usgs"\nurl = "{feed}"\n{extra}'
    )
    return path


def backfill(config: Path, fdsn_base: str, *extra: str) -> int:
    return main(["backfill", "usgs", *WINDOW, "--config", str(config), "--url", fdsn_base,
                 "--limit", "60", "--no-progress", *extra])


def test_backfill_publishes_every_event_once_and_shares_dedupe_with_the_live_source(
        redis_server: RedisProcess, usgs_http: FakeUsgsServer, usgs_dir: Path,
        tmp_path: Path) -> None:
    base = usgs_http.serve_fdsn(FdsnCatalog(features(usgs_dir, deleted=3), max_allowed=60))
    config = write_config(tmp_path, redis_server.url, usgs_dir / DAY_2022)
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)

    assert backfill(config, base) == 0
    entries = client.xrange("geo:events")
    assert len(entries) == 244
    kinds = [f["kind"] for _, f in entries]
    assert kinds.count("quake.deleted") == 3 and kinds.count("quake") == 241
    assert {f["src"] for _, f in entries} == {"quakes"}
    assert len(client.hgetall("geo:memo:pi:quakes:backfill")) == 244
    # The window held 244 events, more than the limit of 60: it was split.
    assert len(usgs_http.hits_on("/fdsnws/event/1/query")) >= 5

    assert backfill(config, base) == 0
    assert client.xlen("geo:events") == 244

    # The live source polling the day feed finds every version already published
    # (the 3 deleted ones are newer than what the feed shows).
    from daemon.service import run_service

    assert run_service(load_config(config), once=True) == 0
    assert client.xlen("geo:events") == 244


def test_backfill_skips_what_the_live_source_published(
        redis_server: RedisProcess, usgs_http: FakeUsgsServer, usgs_dir: Path,
        tmp_path: Path) -> None:
    from daemon.service import run_service

    base = usgs_http.serve_fdsn(FdsnCatalog(features(usgs_dir, deleted=2)))
    config = write_config(tmp_path, redis_server.url, usgs_dir / DAY_2022)
    assert run_service(load_config(config), once=True) == 0
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.xlen("geo:events") == 244
    assert backfill(config, base) == 0
    # Only the two deletions are new.
    newest = client.xrevrange("geo:events", count=3)
    assert client.xlen("geo:events") == 246
    assert [f["kind"] for _, f in newest[:2]] == ["quake.deleted", "quake.deleted"]


def test_magnitude_and_region_flags_filter_server_and_client_side(
        redis_server: RedisProcess, usgs_http: FakeUsgsServer, usgs_dir: Path,
        tmp_path: Path) -> None:
    catalog = FdsnCatalog(features(usgs_dir))
    base = usgs_http.serve_fdsn(catalog)
    config = write_config(tmp_path, redis_server.url, usgs_dir / DAY_2022)
    assert backfill(config, base, "--min-magnitude", "1.5", "--region", "38.8,-122.8,250") == 0
    expected = {f["id"] for f in catalog.features
                if f["properties"]["mag"] >= 1.5
                and distance_km(38.8, -122.8, f["geometry"]["coordinates"][1],
                                f["geometry"]["coordinates"][0]) <= 250}
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    got = {json.loads(f["data"])["eventid"] for _, f in client.xrange("geo:events")}
    assert got == expected and 0 < len(got) < 244
    hit = usgs_http.hits_on("/fdsnws/event/1/query")[0]
    assert (hit.params["minmagnitude"], hit.params["maxradiuskm"]) == ("1.5", "250")


def test_source_filters_are_the_default(
        redis_server: RedisProcess, usgs_http: FakeUsgsServer, usgs_dir: Path,
        tmp_path: Path) -> None:
    catalog = FdsnCatalog(features(usgs_dir))
    base = usgs_http.serve_fdsn(catalog)
    config = write_config(tmp_path, redis_server.url, usgs_dir / DAY_2022,
                          'min_magnitude = 3.0\ninclude_types = ["earthquake"]\n')
    assert backfill(config, base) == 0
    expected = sum(1 for f in catalog.features if f["properties"]["mag"] >= 3.0
                   and f["properties"]["type"] == "earthquake")
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.xlen("geo:events") == expected > 0


@pytest.mark.parametrize("bad", [
    ["--since", "2022-09-30", "--until", "2022-09-28"],
    ["--since", "yesterday-ish"],
    ["--since", "2022-09-28", "--region", "95,0,10"],
    ["--since", "2022-09-28", "--source", "nope"],
])
def test_bad_arguments_exit_2(bad: list[str], usgs_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, "redis://127.0.0.1:1/0", usgs_dir / DAY_2022)
    assert main(["backfill", "usgs", *bad, "--config", str(config)]) == 2


def test_unreachable_fdsn_service_exits_1(
        redis_server: RedisProcess, usgs_dir: Path, tmp_path: Path) -> None:
    from redis_proc import free_port

    config = write_config(tmp_path, redis_server.url, usgs_dir / DAY_2022,
                          "retries = 0\n")
    assert main(["backfill", "usgs", *WINDOW, "--config", str(config),
                 "--url", f"http://127.0.0.1:{free_port()}/fdsnws/event/1/"]) == 1


def test_parse_when_accepts_dates_times_zones_and_ages() -> None:
    assert parse_when("2022-09-28") == 1664323200000
    assert parse_when("2022-09-28T01:00Z") == 1664326800000
    assert parse_when("2022-09-28T03:00+02:00") == 1664326800000
    now = datetime(2022, 9, 29, tzinfo=UTC)
    assert parse_when("1d", now) == 1664323200000
    assert parse_when("36h", now) == 1664323200000 - 12 * 3_600_000
    with pytest.raises(ValueError):
        parse_when("last tuesday")


def test_parse_region() -> None:
    assert parse_region("-30.03,-51.23,500") == (-30.03, -51.23, 500.0)
    for bad in ("1,2", "a,b,c", "0,0,0", "0,181,5"):
        with pytest.raises(ValueError):
            parse_region(bad)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal() -> None:
    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        bar = Progress(200, stream, enabled=True, width=10)
        bar.advance(50, 40, 1664323200000)
        bar.advance(150, 190, 1664409600000)
        bar.finish()
    assert pipe.getvalue() == ""
    out = tty.getvalue()
    assert "\r[##--------]  25% 50/200" in out
    assert "[##########] 100% 200/200 events, 190 published, up to 2022-09-29" in out
    assert out.endswith("\n")
