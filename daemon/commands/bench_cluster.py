"""``geosensord bench cluster``: many stations publishing into one Redis Cluster at once.

    geosensord bench cluster --stations N [--url redis+cluster://…] [--events 20000]
                             [--batch 500] [--global-stream] [--no-source-streams]
                             [--keep] [--json]

What it runs (issue 10):

1. Without ``--url`` it starts a local cluster (3 masters, 3 replicas, loopback, no
   persistence, /usr/bin/redis-server) in a temp dir and stops it at the end.
2. Places N stations around the globe (a Fibonacci lattice between 60 S and 60 N) and
   gives each `--events` events: aircraft positions within ~300 km of the station
   (99 %) and, mixed in, the recorded USGS day feed (recordings/usgs, 244 quakes
   anywhere) that every station polls; each station is its own producer
   (``st<k>:adsb``, ``st<k>:usgs``).
3. Runs every station in its own process (as N daemons would), each with its own
   `ClusterStreamsSink`; the batches are encoded before the clock starts, then all
   stations write theirs at once, batch after batch, as fast as the cluster takes them.
4. Prints events/s in total and per station, then per master: stream entries written
   per second, Redis CPU (INFO cpu, user + sys), and how the per-cell streams spread:
   keys and bytes (MEMORY USAGE) per master and the largest share.

Keys go under a prefix of their own (``benchcluster<pid>``) and are deleted at the end
unless ``--keep``; the global stream is off unless ``--global-stream`` (see
docs/cluster.md for why).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from daemon.loopback_redis import free_cluster_ports

__all__ = ["ClusterBenchResult", "add_arguments", "bench_cluster", "run", "station_events"]

INDEX_LEVELS = (6, 10, 14)
CELL_STREAM_LEVEL = 8
USGS_FEED = Path(__file__).resolve().parents[2] / "recordings/usgs/all_day_2022-09-29.geojson"
SERVER = "/usr/bin/redis-server"
CLI = "/usr/bin/redis-cli"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (to be wired by daemon.cli as ``bench cluster``)."""
    parser.add_argument("--stations", type=int, default=4, help="concurrent stations")
    parser.add_argument("--events", type=int, default=20_000, help="events per station")
    parser.add_argument("--batch", type=int, default=500, help="events per sink batch")
    parser.add_argument("--url", default="", help="a cluster URL (default: start a local one)")
    parser.add_argument("--global-stream", action="store_true", help="also write geo:events")
    parser.add_argument("--no-source-streams", action="store_true",
                        help="do not write the per-source streams")
    parser.add_argument("--keep", action="store_true", help="keep the bench keys afterwards")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON")


def run(args: argparse.Namespace) -> int:
    """Run the bench and print its figures; exit 0, or 2 on bad arguments."""
    if args.stations <= 0 or args.events <= 0 or args.batch <= 0:
        print("--stations, --events and --batch must be positive", file=sys.stderr)
        return 2
    result = bench_cluster(
        args.stations, args.events, args.batch, args.url or None,
        global_stream=args.global_stream, source_streams=not args.no_source_streams,
        keep=args.keep,
    )
    print(json.dumps(asdict(result), indent=2) if args.json else result.report())
    return 0


# -- the events ----------------------------------------------------------------------


def station_site(k: int, n: int) -> tuple[float, float]:
    """Station `k` of `n` on a Fibonacci lattice between 60 S and 60 N (degrees)."""
    z = math.sin(math.radians(60.0)) * (1.0 - 2.0 * (k + 0.5) / n)
    lon = (k * 137.50776405) % 360.0 - 180.0
    return math.degrees(math.asin(z)), lon


def _quakes() -> list[dict[str, Any]]:
    """The recorded USGS day feed's quakes as (id, lat, lon, depth_km, time_ms, mag)."""
    try:
        feed = json.loads(USGS_FEED.read_text())
    except OSError:
        return []
    out = []
    for f in feed["features"]:
        lon, lat, depth_km = f["geometry"]["coordinates"][:3]
        out.append({"id": f["id"], "lat": lat, "lon": lon, "depth_km": depth_km or 0.0,
                    "t_ms": f["properties"]["time"], "mag": f["properties"]["mag"]})
    return out


def station_events(k: int, n_stations: int, n: int, seed: int = 1) -> list[Any]:
    """`n` (producer, seq, Event) tuples of station `k`: aircraft around it, quakes anywhere."""
    from daemon.event import Event

    rng = random.Random(seed * 1_000_003 + k)
    lat0, lon0 = station_site(k, n_stations)
    station = f"st{k:03d}"
    quakes = _quakes()
    t0_ms = 1_700_000_000_000
    out: list[Any] = []
    seqs = {"adsb": 0, "usgs": 0}
    for i in range(n):
        t_ms = t0_ms + 5 * i
        if quakes and i % 100 == 99:
            q = quakes[(i // 100) % len(quakes)]
            src = "usgs"
            ev = Event(id=f"usgs:{q['id']}:{q['t_ms']}", src=src, kind="quake", t=q["t_ms"],
                       rx=t_ms, lat=q["lat"], lon=q["lon"], alt=-q["depth_km"] * 1000.0,
                       alt_ref="depth", station=station, data={"mag": q["mag"]})
        else:
            src = "adsb"
            lat = max(-89.0, min(89.0, lat0 + rng.uniform(-2.7, 2.7)))
            lon = lon0 + rng.uniform(-3.5, 3.5) / max(0.3, math.cos(math.radians(lat0)))
            lon = (lon + 180.0) % 360.0 - 180.0
            icao = f"{rng.randrange(1 << 24):06x}"
            ev = Event(id=f"adsb:{icao}:{t_ms}", src=src, kind="aircraft.position", t=t_ms,
                       rx=t_ms, lat=round(lat, 5), lon=round(lon, 5),
                       alt=round(rng.uniform(300.0, 12_500.0), 1), alt_ref="msl",
                       station=station,
                       data={"icao": icao, "speed_mps": round(rng.uniform(60.0, 280.0), 1)})
        seqs[src] += 1
        out.append((f"{station}:{src}", seqs[src], ev))
    return out


# -- the run -------------------------------------------------------------------------


@dataclass
class ShardFigures:
    """What one master ended up with and spent."""

    node: str
    entries: int = 0
    entries_per_s: float = 0.0
    cell_keys: int = 0
    cell_bytes: int = 0
    other_keys: int = 0
    other_bytes: int = 0
    cpu_s: float = 0.0


@dataclass
class ClusterBenchResult:
    """The bench's figures (see the module docstring)."""

    stations: int
    events_per_station: int
    batch: int
    global_stream: bool
    source_streams: bool
    wall_s: float = 0.0
    events_per_s: float = 0.0
    station_events_per_s: list[float] = field(default_factory=list)
    shards: list[ShardFigures] = field(default_factory=list)
    max_cell_key_share: float = 0.0
    max_cell_byte_share: float = 0.0

    def report(self) -> str:
        """Human-readable summary."""
        cells = sum(s.cell_keys for s in self.shards) or 1
        cell_bytes = sum(s.cell_bytes for s in self.shards) or 1
        rates = sorted(self.station_events_per_s)
        lines = [
            f"{self.stations} stations x {self.events_per_station} events, batches of "
            f"{self.batch}; global stream {'on' if self.global_stream else 'off'}, per-source "
            f"streams {'on' if self.source_streams else 'off'}",
            f"total: {self.events_per_s:,.0f} events/s ({self.stations * self.events_per_station}"
            f" events in {self.wall_s:.2f} s); per station {rates[0]:,.0f} .. "
            f"{rates[-1]:,.0f} events/s",
            "master                entries/s   cpu s   cell keys          cell MiB        "
            "other keys  other MiB",
        ]
        for s in self.shards:
            lines.append(
                f"{s.node:<20} {s.entries_per_s:>10,.0f} {s.cpu_s:>7.2f} "
                f"{s.cell_keys:>7} ({100 * s.cell_keys / cells:4.1f} %) "
                f"{s.cell_bytes / 2**20:>8.2f} ({100 * s.cell_bytes / cell_bytes:4.1f} %) "
                f"{s.other_keys:>10} {s.other_bytes / 2**20:>10.2f}"
            )
        lines.append(
            f"spread of the per-cell streams: largest share {100 * self.max_cell_key_share:.1f} %"
            f" of the keys, {100 * self.max_cell_byte_share:.1f} % of the bytes "
            f"(even: {100 / max(1, len(self.shards)):.1f} %)"
        )
        return "\n".join(lines)


def _station_process(
    k: int, args: tuple[int, int, int, str, str, bool, bool], barrier: Any, results: Any
) -> None:
    """One station: encode its batches, wait for the others, then write them all, timed."""
    n_stations, n, batch, url, prefix, global_stream, source_streams = args
    from daemon.encode import EntryEncoder
    from daemon.event import Sequenced
    from daemon.s2index import S2Indexer
    from sinks.redis_cluster import ClusterStreamsSink
    from sinks.redis_connection import RedisOptions

    encoder = EntryEncoder(S2Indexer(INDEX_LEVELS, CELL_STREAM_LEVEL))
    items = [Sequenced(p, s, ev) for p, s, ev in station_events(k, n_stations, n)]
    batches = [encoder.encode(items[i : i + batch]) for i in range(0, len(items), batch)]
    sink = ClusterStreamsSink(RedisOptions(url), encoder.field_names, prefix=prefix,
                              global_stream=global_stream, source_streams=source_streams)
    sink.open()
    barrier.wait()
    started = time.perf_counter()
    written = sum(sink.write(b) for b in batches)
    results.put((k, written, time.perf_counter() - started, time.time()))
    sink.close()


def bench_cluster(
    stations: int, events: int, batch: int, url: str | None, *, global_stream: bool = False,
    source_streams: bool = True, keep: bool = False,
) -> ClusterBenchResult:
    """Run the bench (starting a local cluster when `url` is None); return its figures."""
    from sinks.redis_connection import RedisOptions

    result = ClusterBenchResult(stations, events, batch, global_stream, source_streams)
    prefix = f"benchcluster{os.getpid()}"
    with _cluster(url) as cluster_url:
        client: Any = RedisOptions(cluster_url).cluster_client()
        primaries = client.get_primaries()
        cpu_before = {n.name: _cpu_s(client.get_redis_connection(n)) for n in primaries}
        ctx = multiprocessing.get_context("fork")
        barrier = ctx.Barrier(stations + 1)
        results = ctx.Queue()
        job = (stations, events, batch, cluster_url, prefix, global_stream, source_streams)
        procs = [ctx.Process(target=_station_process, args=(k, job, barrier, results))
                 for k in range(stations)]
        for p in procs:
            p.start()
        barrier.wait()
        started_wall = time.time()
        done = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join()
        result.wall_s = max(d[3] for d in done) - started_wall
        total = sum(d[1] for d in done)
        result.events_per_s = total / result.wall_s
        result.station_events_per_s = [d[1] / d[2] for d in sorted(done)]
        for node in primaries:
            redis_node = client.get_redis_connection(node)
            shard = _shard_figures(node.name, redis_node, prefix)
            shard.entries_per_s = shard.entries / result.wall_s
            shard.cpu_s = _cpu_s(redis_node) - cpu_before[node.name]
            result.shards.append(shard)
            if not keep:
                _delete(redis_node, prefix)
        client.close()
    cells = sum(s.cell_keys for s in result.shards) or 1
    cell_bytes = sum(s.cell_bytes for s in result.shards) or 1
    result.max_cell_key_share = max(s.cell_keys for s in result.shards) / cells
    result.max_cell_byte_share = max(s.cell_bytes for s in result.shards) / cell_bytes
    return result


def _cpu_s(node: Any) -> float:
    info = node.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _shard_figures(name: str, node: Any, prefix: str) -> ShardFigures:
    """Keys, bytes and stream entries under `prefix` on one master."""
    shard = ShardFigures(name)
    keys = list(node.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        chunk = keys[start : start + 1000]
        pipe = node.pipeline(transaction=False)
        for key in chunk:
            pipe.memory_usage(key, samples=0)
            pipe.type(key)
        replies = pipe.execute()
        pipe = node.pipeline(transaction=False)
        streams = []
        for i, key in enumerate(chunk):
            size, kind = int(replies[2 * i] or 0), replies[2 * i + 1]
            if key.startswith(f"{prefix}:cell:".encode()):
                shard.cell_keys += 1
                shard.cell_bytes += size
            else:
                shard.other_keys += 1
                shard.other_bytes += size
            if kind == b"stream":
                streams.append(key)
                pipe.xlen(key)
        shard.entries += sum(int(n) for n in pipe.execute()) if streams else 0
    return shard


def _delete(node: Any, prefix: str) -> None:
    keys = list(node.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 1000):
        pipe = node.pipeline(transaction=False)
        for key in keys[start : start + 1000]:
            pipe.unlink(key)
        pipe.execute()


# -- a local cluster -------------------------------------------------------------------


@contextmanager
def _cluster(url: str | None) -> Iterator[str]:
    """`url`, or a local 3+3 cluster started for the bench (stopped on exit)."""
    if url:
        yield url
        return
    server = SERVER if Path(SERVER).exists() else shutil.which("redis-server")
    cli = CLI if Path(CLI).exists() else shutil.which("redis-cli")
    if server is None or cli is None:
        raise SystemExit("bench cluster: redis-server/redis-cli 7 not found; pass --url")
    ports = free_cluster_ports(6)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="geosensord-bench-cluster.") as tmp:
        try:
            for port in ports:
                work = Path(tmp) / str(port)
                work.mkdir()
                procs.append(subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                     "--cluster-enabled", "yes", "--cluster-node-timeout", "2000",
                     "--save", "", "--appendonly", "no"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            for port in ports:
                _wait(lambda p=port: _cli(cli, p, "ping") == "PONG")
            subprocess.run(
                [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                 "--cluster-replicas", "1", "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
            )
            for port in ports:
                _wait(lambda p=port: "cluster_state:ok" in _cli(cli, p, "cluster", "info"))
            yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(10)


def _cli(cli: str, port: int, *args: str) -> str:
    out = subprocess.run([cli, "-p", str(port), *args], capture_output=True, text=True,
                         timeout=10, check=False)
    return out.stdout.strip()


def _wait(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("local cluster did not come up")
        time.sleep(0.1)
