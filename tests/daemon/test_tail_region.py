"""`geosensord tail`: a region query returns exactly the events inside the circle.

Thousands of events are published through the real pipeline (clusters around a
mid-latitude point, the antimeridian and the north pole, plus events spread over
the globe), then `geosensord tail --region LAT,LON,R --json` runs as a subprocess
and its ids are compared with a brute-force great-circle filter.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s2sphere
from redis_proc import RedisProcess

from daemon.cli import main as cli_main
from daemon.config import load_config
from daemon.event import Event
from daemon.runtime import open_runtime

REPO = Path(__file__).resolve().parents[2]
EARTH_RADIUS_KM = 6371.0088

# name -> (lat, lon, radius_km of the query)
REGIONS = {
    "porto-alegre": (-30.03, -51.23, 150.0),
    "antimeridian": (-17.0, 179.8, 100.0),
    "north-pole": (89.7, 0.0, 80.0),
}


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Brute-force great-circle distance on the mean-radius sphere (the reader's model)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def destination(lat: float, lon: float, bearing_deg: float, dist_km: float) -> tuple[float, float]:
    d = dist_km / EARTH_RADIUS_KM
    p1, l1, b = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    sin_p2 = math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b)
    p2 = math.asin(max(-1.0, min(1.0, sin_p2)))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * sin_p2)
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


@dataclass
class Published:
    """What was written: events in publish order, and the config used."""

    config: Path
    events: list[Event]

    def inside(self, lat: float, lon: float, radius_km: float) -> list[str]:
        return [e.id for e in self.events if haversine_km(lat, lon, e.lat, e.lon) <= radius_km]


def cluster(rng: random.Random, name: str, n: int) -> list[tuple[float, float]]:
    """`n` points within twice the region's radius (uniform over the area), plus points
    within a hair of the circle on both sides."""
    lat, lon, radius_km = REGIONS[name]
    points = [destination(lat, lon, rng.uniform(0, 360), 2 * radius_km * math.sqrt(rng.random()))
              for _ in range(n)]
    for i in range(12):
        frac = 1 - 1e-7 if i % 2 else 1 + 1e-7
        points.append(destination(lat, lon, 30.0 * i, radius_km * frac))
    return points


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    """One redis-server for the module with ~5000 events from two sources."""
    from redis_proc import find_redis_server

    binary = find_redis_server()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    tmp = tmp_path_factory.mktemp("tail")
    server = RedisProcess(tmp / "redis", binary)
    server.start()
    config_path = tmp / "config.toml"
    config_path.write_text(f"""\
[station]
id = "tail-station"
lat = 0.0
lon = 0.0

[redis]
url = "{server.url}"

[state]
dir = "{tmp / 'state'}"

[http]
listen = ""

[streams]
cell_maxlen = 0

[pipeline]
batch_latency_ms = 20
""")
    rng = random.Random(2024)
    near = [p for name in REGIONS for p in cluster(rng, name, 1500)]
    rng.shuffle(near)
    far = [(math.degrees(math.asin(rng.uniform(-1, 1))), rng.uniform(-180, 180))
           for _ in range(600)]
    events: list[Event] = []
    config = load_config(config_path)
    try:
        with open_runtime(config) as rt:
            emit = {src: rt.pipeline.emitter(f"tail-station:{src}", src) for src in ("near", "far")}
            for i, (src, (lat, lon)) in enumerate(
                [("near", p) for p in near] + [("far", p) for p in far]
            ):
                ev = Event(id=f"{src}:{i}", src=src, kind="test.point", t=1_700_000_000_000 + i,
                           rx=1_700_000_000_000 + i, lat=lat, lon=lon, alt=None,
                           station="tail-station", data={"i": i})
                emit[src](ev)
                events.append(ev)
            assert rt.pipeline.wait_idle(30)
        client: Any = server.client()
        assert client.xlen("geo:events") == len(events)
        yield Published(config_path, events)
    finally:
        server.stop()


def tail(config: Path, *args: str) -> list[dict[str, Any]]:
    """Run `geosensord tail --config CONFIG ARGS --json` as a subprocess; the JSON lines."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "daemon", "tail", "--config", str(config), *args, "--json"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def tail_in_process(
    capsys: pytest.CaptureFixture[str], config: Path, *args: str
) -> tuple[int, list[str], str]:
    """The same CLI entry point called in this process (cheaper than a subprocess):
    exit code, stdout lines, stderr."""
    capsys.readouterr()
    try:
        code = cli_main(["tail", "--config", str(config), *args])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


# The subprocess proves the command end to end once; the other regions call the same
# entry point in process (a child process costs about a second of imports).
@pytest.mark.parametrize(("name", "as_subprocess"),
                         [("porto-alegre", True), ("antimeridian", False), ("north-pole", False)])
def test_region_returns_exactly_the_events_inside_the_circle(
    published: Published, capsys: pytest.CaptureFixture[str], name: str, as_subprocess: bool
) -> None:
    lat, lon, radius_km = REGIONS[name]
    args = (f"--region={lat},{lon},{radius_km}", "--count", "100000")
    if as_subprocess:
        rows = tail(published.config, *args)
    else:
        code, lines, err = tail_in_process(capsys, published.config, *args, "--json")
        assert code == 0, err
        rows = [json.loads(line) for line in lines]
    got = [r["id"] for r in rows]
    expected = published.inside(lat, lon, radius_km)
    assert len(expected) > 300  # the cluster really straddles the circle
    assert len(got) == len(set(got)), "an event was printed twice"
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} outside the circle"
    for row in rows:
        assert row["stream"].startswith("geo:cell:{")
        assert haversine_km(lat, lon, row["lat"], row["lon"]) <= radius_km


def test_region_count_returns_the_newest_events_inside(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    lat, lon, radius_km = REGIONS["porto-alegre"]
    code, lines, err = tail_in_process(capsys, published.config,
                                       f"--region={lat},{lon},{radius_km}", "--count", "50",
                                       "--json")
    assert code == 0, err
    got = [json.loads(line)["id"] for line in lines]
    expected = published.inside(lat, lon, radius_km)[-50:]
    assert len(got) == 50
    assert set(got) == set(expected), (
        f"{len(set(expected) - set(got))} of the newest 50 events inside are missing"
    )
    assert got == expected, "not oldest first in publish order"


def test_region_with_negative_coordinates_is_accepted_as_a_separate_argument(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--region LAT,LON,RADIUS_KM` as documented; the station default is in the southern
    # and western hemispheres, so the value starts with "-".
    lat, lon, radius_km = REGIONS["porto-alegre"]
    code, lines, err = tail_in_process(capsys, published.config, "--region",
                                       f"{lat},{lon},{radius_km}", "--count", "100000", "--json")
    assert code == 0, err
    assert {json.loads(line)["id"] for line in lines} == set(published.inside(lat, lon, radius_km))


def test_src_prints_the_newest_entries_of_that_source_oldest_first(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = tail_in_process(capsys, published.config, "--src", "far", "--count", "25",
                                       "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in lines]
    far_ids = [e.id for e in published.events if e.src == "far"]
    assert [r["id"] for r in rows] == far_ids[-25:]
    assert {r["stream"] for r in rows} == {"geo:src:far"}
    assert all(r["src"] == "far" for r in rows)


def test_stream_and_count_select_the_stream_and_the_number_of_entries(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = tail_in_process(capsys, published.config, "--stream", "geo:events",
                                       "--count", "7", "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in lines]
    assert [r["id"] for r in rows] == [e.id for e in published.events[-7:]]
    first = rows[0]
    assert first["stream"] == "geo:events"
    # --json gives typed values and the decoded data object.
    ev = published.events[-7]
    assert (first["t"], first["lat"], first["lon"], first["alt"]) == (ev.t, ev.lat, ev.lon, None)
    assert first["data"] == ev.data


def test_default_count_is_20_and_text_output_has_one_line_per_entry(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = tail_in_process(capsys, published.config)
    assert code == 0, err
    assert len(lines) == 20
    assert published.events[-1].id in lines[-1]
    assert published.events[-20].id in lines[0]


def test_bad_region_is_a_usage_error(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("95,0,10", "10,200,5", "1,2", "1,2,-5", "a,b,c"):
        code, lines, err = tail_in_process(capsys, published.config, f"--region={bad}")
        assert code == 2, bad
        assert err.startswith("tail: "), bad
        assert lines == []


def test_region_count_finds_older_events_inside_behind_newer_ones_outside(
    redis_server: RedisProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A covering cell also holds events outside the circle; `--count N` must still
    return the newest N inside, however many newer outside events share their cell."""
    cell = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(45.0, 7.0)).parent(8)
    centre = s2sphere.LatLng.from_point(s2sphere.Cell(cell).get_center())
    lat0, lon0, radius_km = centre.lat().degrees, centre.lng().degrees, 5.0
    config_path = tmp_path / "config.toml"
    config_path.write_text(f"""\
[station]
id = "edge-station"
lat = 0.0
lon = 0.0

[redis]
url = "{redis_server.url}"

[state]
dir = "{tmp_path / 'state'}"

[http]
listen = ""
""")
    rng = random.Random(5)
    inside = [destination(lat0, lon0, rng.uniform(0, 360), rng.uniform(0, 3)) for _ in range(5)]
    outside: list[tuple[float, float]] = []
    while len(outside) < 200:
        lat, lon = destination(lat0, lon0, rng.uniform(0, 360), rng.uniform(8, 14))
        leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon))
        if leaf.parent(8) == cell:
            outside.append((lat, lon))
    config = load_config(config_path)
    with open_runtime(config) as rt:
        emit = rt.pipeline.emitter("edge-station:edge", "edge")
        for i, (lat, lon) in enumerate(inside + outside):
            emit(Event(id=f"edge:{i}", src="edge", kind="test.point", t=i, rx=i, lat=lat, lon=lon,
                       alt=None, station="edge-station"))
        assert rt.pipeline.wait_idle(10)
    code, lines, err = tail_in_process(capsys, config_path, f"--region={lat0},{lon0},{radius_km}",
                                       "--count", "5", "--json")
    assert code == 0, err
    assert [json.loads(line)["id"] for line in lines] == [f"edge:{i}" for i in range(5)]


def test_unreachable_url_is_named_in_the_error_without_its_password(
    published: Published, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "tail-Secret-42"
    code, lines, err = tail_in_process(capsys, published.config,
                                       "--url", f"redis://:{secret}@127.0.0.1:1/0")
    assert code == 1
    assert lines == []
    assert secret not in err
    assert "127.0.0.1:1/" in err, f"the error should name the server it tried: {err!r}"
