"""Two real daemons (stations "a" and "b") replay two different 50 000-event recordings
into the same Redis Cluster at the same time (issue 10): 100 000 entries, each exactly
once, each station's in its recorded order, and `geosensord tail --region` against the
cluster prints exactly the brute-force set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from cluster_proc import LocalCluster

from daemon.consumer import Region
from sinks.redis_cluster import ClusterStreamsSink, key_slot
from sinks.redis_connection import RedisOptions

REPO = Path(__file__).resolve().parents[2]
N = 50_000


def write_recording(path: Path, station: str, n: int, lat0: float, lon0: float) -> list[str]:
    """`n` events of source "replay" around (lat0, lon0), as the jsonl sink writes them."""
    ids = []
    with path.open("w") as fh:
        for i in range(n):
            ids.append(f"{station}:replay:{i}")
            fh.write(json.dumps({
                "id": ids[-1], "src": "replay", "kind": "sensor.reading",
                "t": 1_700_000_000_000 + i, "rx": 1_700_000_000_000 + i,
                "lat": lat0 + (i * 0.0137) % 3.0, "lon": lon0 + (i * 0.0291) % 4.0,
                "alt": None, "station": station, "data": {"i": i},
            }, separators=(",", ":")) + "\n")
    return ids


def write_config(tmp: Path, station: str, url: str, recording: Path) -> Path:
    path = tmp / f"{station}.toml"
    path.write_text("\n".join([
        "[station]", f'id = "{station}"', "lat = 0.0", "lon = 0.0", "",
        "[redis]", f'url = "{url}"', "socket_timeout_s = 2.0", "",
        "[streams]", "global_stream = false", "",
        "[state]", f'dir = "{tmp / ("state-" + station)}"', "",
        "[http]", 'listen = ""', "",
        "[pipeline]", "batch_size = 1000", "batch_latency_ms = 20", "",
        "[sources.replay]", 'type = "jsonl"', f'path = "{recording}"', "",
    ]))
    return path


def stream_entries(c: Any, key: str) -> list[dict[bytes, bytes]]:
    out: list[dict[bytes, bytes]] = []
    start = "-"
    while True:
        page = c.xrange(key, start, "+", count=10_000)
        out.extend(f for _, f in page)
        if len(page) < 10_000:
            return out
        start = "(" + page[-1][0].decode()


def test_two_stations_replay_50k_each_into_one_cluster_exactly_once(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    # Overlapping areas: both stations write some of the same cell streams.
    expected = {
        "a": write_recording(tmp_path / "a.jsonl", "a", N, 46.0, 6.0),
        "b": write_recording(tmp_path / "b.jsonl", "b", N, 47.0, 8.0),
    }
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemons = {
        station: subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "--once", "--config",
             str(write_config(tmp_path, station, cluster.url, tmp_path / f"{station}.jsonl"))],
            stdout=(tmp_path / f"{station}.log").open("wb"), stderr=subprocess.STDOUT,
            env=env, cwd=tmp_path,
        )
        for station in expected
    }
    for station, proc in daemons.items():
        try:
            assert proc.wait(90) == 0, (tmp_path / f"{station}.log").read_text()[-3000:]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    sink = ClusterStreamsSink(RedisOptions(cluster.url), ())
    c: Any = sink.cluster
    source = stream_entries(c, "geo:src:replay")
    assert len(source) == 2 * N
    for station, ids in expected.items():
        assert [f[b"id"].decode() for f in source if f[b"station"] == station.encode()] == ids
    cell_keys = [k.decode() for k in c.scan_iter(match="geo:cell:*", _type="stream")]
    cells = Counter(f[b"id"] for k in cell_keys for f in stream_entries(c, k))
    assert len(cells) == 2 * N and set(cells.values()) == {1}
    shared = [k for k in cell_keys
              if {f[b"station"] for f in stream_entries(c, k)} == {b"a", b"b"}]
    assert shared, "the stations' areas overlap in some cells"
    assert len({cluster.master_of_slot(key_slot(k)) for k in cell_keys}) == 3
    # Each station's producer ("<station>:replay:<file fingerprint>") has its own
    # offsets, in many slots, and its committed offset is its last line number.
    producers = {p.decode() for k in c.scan_iter(match="geo:offsets:*") for p in c.hkeys(k)}
    assert sorted(p.split(":")[0] for p in producers) == ["a", "b"]
    assert {sink.committed_offset(p) for p in producers} == {N}
    sink.close()

    # tail --region through the CLI against the cluster: the brute-force set.
    region = Region(46.8, 7.2, 60.0)
    config = write_config(tmp_path, "reader", cluster.url, tmp_path / "a.jsonl")
    out = subprocess.run(
        [sys.executable, "-m", "daemon", "tail", "--config", str(config), "--json",
         "--count", "0", "--region", f"{region.lat},{region.lon},{region.radius_km}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=True,
    )
    got = [json.loads(line)["id"] for line in out.stdout.splitlines()]
    brute = []
    for station in expected:
        for line in (tmp_path / f"{station}.jsonl").read_text().splitlines():
            rec = json.loads(line)
            if region.contains(rec["lat"], rec["lon"]):
                brute.append(rec["id"])
    assert len(got) == len(set(got)) > 100
    assert sorted(got) == sorted(brute)


def test_usgs_and_replay_sources_write_every_event_once_into_the_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    """Issue 10: a daemon with the USGS recording and a replay source, run twice, writes
    each event exactly once (the USGS memo and the replay offsets live per slot)."""
    feed = REPO / "recordings" / "usgs" / "all_day_2022-09-29.geojson"
    replay_ids = write_recording(tmp_path / "r.jsonl", "c", 2_000, -33.0, 151.0)
    config = write_config(tmp_path, "c", cluster.url, tmp_path / "r.jsonl")
    config.write_text(
        config.read_text().replace("global_stream = false", "global_stream = true")
        + f'[sources.quakes]\ntype = "usgs"\nurl = "{feed}"\ninterval = 60\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(2):  # the second run must add nothing
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--once", "--config", str(config)],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    sink = ClusterStreamsSink(RedisOptions(cluster.url), ())
    c: Any = sink.cluster
    events = [f[b"id"].decode() for f in stream_entries(c, "geo:events")
              if f[b"station"] == b"c"]
    quakes = [i for i in events if i.startswith("usgs:")]
    assert len(quakes) == len(set(quakes)) == 244
    assert [i for i in events if not i.startswith("usgs:")] == replay_ids
    assert len(stream_entries(c, "geo:src:quakes")) == 244
    sink.close()
