"""``geosensord bench sink``: the per-event cost of the Redis path, against raw XADD.

    geosensord bench sink [--events 200000] [--batch 1000] [--reference 20000]
                          [--redis-server PATH] [--json]

What it runs (issue 8):

1. Writes `--events` realistic events to a JSON-lines file: aircraft positions
   around three receivers (three sources), sensor readings at a station, and a few
   quakes anywhere (~1 %), so the per-cell streams look like a real station's.
2. Replays the file through the real `jsonl` source, chunk by chunk (the source is
   paused while a chunk is measured, so it never competes for the GIL).
3. Starts a fresh redis-server on a free loopback port (no persistence). Every
   batch of `--batch` events goes through these steps:
       S2       EntryEncoder.locate          vectorized tokens (daemon.s2vec)
       encode   EntryEncoder.encode_located  the StreamEntries
       sink     RedisStreamsSink.write       one EVALSHA: global + per-source + per-cell
                                             streams, idempotent, MAXLEN ~ as the demo
   in two modes, each under its own key prefix so both write every event:
       pipeline    the daemon's own path: the real `daemon.pipeline.Pipeline`, fed
                   through its emitter as a source feeds it (sequence bookkeeping,
                   the bounded queue), whose encoder thread runs S2 and encode for
                   batch k+1 while its writer thread waits on Redis for batch k
                   (the write waits on the socket without the GIL); timed from the
                   first emit until `wait_idle` says every event is in Redis
       sequential  S2, encode, write, then the next batch, in one thread, with the
                   CPU time of each step: the per-step figures and a reference for
                   what the overlap gains
   then, as the baseline, a raw pipelined ``XADD key * field value …`` of the very same
   entries to ONE stream (hiredis.pack_command over a plain socket, one send and
   all replies per batch). The modes alternate chunk by chunk (10 batches), so load
   from other processes hits all of them alike.
4. Prints events/s of each and the ratios to the baseline (over the whole run, and
   the median of the per-chunk ratios, which shrugs off bursts of foreign load),
   CPU µs/event of each step (thread CPU time) and of the Pipeline (process CPU
   time while it ran: every thread, the emits included), Redis CPU µs/event (INFO
   cpu), the CPU cost ratio raw / pipeline (client + Redis), the s2sphere reference
   cost for the S2 step, and the peak RSS (VmHWM) of this process and of the
   redis-server.

The rates are wall-clock over the measured steps only: the source's JSON parsing is
reported but is in neither rate. The GC is set up as the daemon sets it up once
started (`daemon.gc_settings.settle_after_startup`: the generator's objects frozen,
so they are not rescanned, as the daemon holds one queue of events, not 200 000;
the daemon's thresholds).

Reading the figures: the Pipeline overlaps its client work with Redis running the
script, which needs a second idle core. With one (redis-server on one core, the
GIL's holder on the other) it runs well ahead of the one-thread reference (+15-25 %
measured with 20-batch runs, issue 8); on a machine whose cores are taken by other
work both are CPU-bound, and the ratio tends to the CPU ratio of the Pipeline line
(raw client + Redis over Pipeline client + Redis), the emits and thread hand-offs
included.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import queue
import random
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from daemon.loopback_redis import LoopbackRedis

__all__ = ["SinkBenchResult", "add_arguments", "bench_sink", "run", "write_events"]

INDEX_LEVELS = (6, 10, 14)  # the demo config.toml
CELL_STREAM_LEVEL = 8
MAXLEN = 1_000_000
CELL_MAXLEN = 10_000
CHUNK_BATCHES = 10  # batches per replayed chunk: the unit the modes alternate in
RAW_STREAM = "bench:raw"
REDIS_PY_STREAM = "bench:redis-py"
RECEIVERS = (("adsb_poa", -30.03, -51.23), ("adsb_sic", 37.0, 13.8), ("adsb_muc", 48.35, 11.79))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (wired by daemon.cli)."""
    parser.add_argument("--events", type=int, default=200_000, help="events to publish")
    parser.add_argument("--batch", type=int, default=1000, help="events per sink batch")
    parser.add_argument(
        "--reference", type=int, default=20_000, metavar="N",
        help="points for the s2sphere reference figure (0 skips it)",
    )
    parser.add_argument("--redis-server", default=None, help="redis-server binary to start")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON")


def run(args: argparse.Namespace) -> int:
    """Run the bench and print its figures; exit 0, or 2 on bad arguments."""
    if args.events <= 0 or args.batch <= 0:
        print("--events and --batch must be positive", file=sys.stderr)
        return 2
    result = bench_sink(args.events, args.batch, args.reference, args.redis_server)
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(result.report())
    return 0


# -- the events ----------------------------------------------------------------------


def write_events(path: Path, n: int, seed: int = 1) -> None:
    """`n` event records (the jsonl sink's format), one per line, in time order.

    97 % aircraft positions within ~300 km of three receivers, 2 % sensor readings at
    the first receiver, 1 % quakes anywhere: a few thousand level-8 cells in all.
    """
    from daemon.event import Event

    rng = random.Random(seed)
    t0_ms = 1_700_000_000_000
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            t_ms = t0_ms + 5 * i
            roll = rng.random()
            if roll < 0.97:
                src, lat0, lon0 = RECEIVERS[i % len(RECEIVERS)]
                lat = lat0 + rng.uniform(-2.7, 2.7)
                lon = lon0 + rng.uniform(-3.5, 3.5) / max(0.3, math.cos(math.radians(lat0)))
                icao = f"{rng.randrange(1 << 24):06x}"
                ev = Event(
                    id=f"adsb:{icao}:{t_ms}", src=src, kind="aircraft.position", t=t_ms,
                    rx=t_ms, lat=round(lat, 5), lon=round(lon, 5),
                    alt=round(rng.uniform(300.0, 12_500.0), 1), station="bench",
                    alt_ref="msl",
                    data={"icao": icao, "callsign": f"TAP{rng.randrange(10_000):04d}",
                          "speed_mps": round(rng.uniform(60.0, 280.0), 1),
                          "track_deg": round(rng.uniform(0.0, 360.0), 1),
                          "vrate_mps": round(rng.uniform(-15.0, 15.0), 2)},
                )
            elif roll < 0.99:
                _, lat0, lon0 = RECEIVERS[0]
                ev = Event(
                    id=f"serial:wx:{i}", src="weather", kind="sensor.reading", t=t_ms, rx=t_ms,
                    lat=lat0, lon=lon0, alt=10.0, station="bench",
                    data={"temp_c": round(rng.uniform(10.0, 30.0), 2),
                          "rh_pct": round(rng.uniform(20.0, 99.0), 1),
                          "pressure_hpa": round(rng.uniform(990.0, 1030.0), 1)},
                )
            else:
                code = f"bx{i:08d}"
                ev = Event(
                    id=f"usgs:{code}:{t_ms}", src="quakes", kind="quake", t=t_ms, rx=t_ms,
                    lat=round(math.degrees(math.asin(rng.uniform(-1.0, 1.0))), 4),
                    lon=round(rng.uniform(-180.0, 180.0), 4),
                    alt=-round(rng.uniform(0.0, 600.0), 2) * 1000.0, alt_ref="depth",
                    station="bench",
                    data={"mag": round(rng.uniform(0.5, 6.5), 1), "place": "somewhere",
                          "status": "automatic", "tsunami": 0, "net": "us", "code": code},
                )
            fh.write(json.dumps(ev.to_record(), separators=(",", ":")) + "\n")


def replay_chunks(
    path: Path, chunk: int, source_cpu_s: list[float] | None = None
) -> Iterator[list[Any]]:
    """The file's events as the real `jsonl` source emits them, `chunk` at a time.

    The source runs in its own thread (as in the daemon) but waits while the
    consumer handles a chunk, so the measured work never shares the GIL with it.
    Yields lists of `Sequenced`; appends the source thread's CPU seconds to
    `source_cpu_s` when it ends.
    """
    from daemon.event import Event, Sequenced
    from daemon.metrics import Metrics
    from daemon.sources.base import SourceContext, Station
    from daemon.sources.jsonl import JsonlSource

    ctx = SourceContext(
        station=Station("bench", 0.0, 0.0), metrics=Metrics(), state_dir=path.parent,
        config_dir=path.parent, memo=lambda producer: {},
    )
    source = JsonlSource("replay", {"path": str(path), "follow": False, "station": ""}, ctx)
    ready: queue.Queue[list[Sequenced] | None] = queue.Queue(maxsize=1)
    resume = threading.Semaphore(0)
    stop = threading.Event()
    buf: list[Sequenced] = []
    failure: list[BaseException] = []

    def emit(
        event: Event, *, seq: int | None = None, memo: tuple[str, str] | None = None,
        producer: str | None = None,
    ) -> None:
        buf.append(Sequenced(producer or source.producer, seq or len(buf) + 1, event, memo))
        if len(buf) >= chunk:
            ready.put(buf.copy())
            buf.clear()
            resume.acquire()
            if stop.is_set():
                raise SystemExit  # ends the source thread quietly

    def produce() -> None:
        try:
            source.run(emit, stop, once=True)
            if buf:
                ready.put(buf.copy())
                resume.acquire()
        except SystemExit:
            return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            failure.append(exc)
        if source_cpu_s is not None:
            source_cpu_s.append(time.thread_time())
        ready.put(None)

    thread = threading.Thread(target=produce, name="bench-source", daemon=True)
    thread.start()
    try:
        while True:
            items = ready.get()
            if items is None:
                if failure:
                    raise failure[0]
                return
            yield items
            resume.release()
    finally:
        stop.set()
        resume.release()
        thread.join(5)


# -- redis ---------------------------------------------------------------------------


class BenchRedis(LoopbackRedis):
    """A throwaway redis-server on a free loopback port, no persistence."""

    def __init__(self, workdir: Path, binary: str | None = None) -> None:
        from daemon.embedded_redis import find_redis_server

        super().__init__(workdir, str(find_redis_server(binary)))

    def peak_rss_kb(self) -> int:
        """The server's VmHWM in KiB (0 if unknown)."""
        return vm_hwm_kb(self.proc.pid) if self.proc is not None else 0


def vm_hwm_kb(pid: int | str = "self") -> int:
    """Peak resident set size (VmHWM) of a process in KiB, from /proc (0 if unknown)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def redis_cpu_s(client: Any) -> float:
    """CPU seconds the server has used (user + system)."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class RawXaddWriter:
    """The baseline: pipelined XADD of ready entries to one stream over a plain socket.

    Per batch: one hiredis.pack_command per entry, one sendall, then read every
    reply. No script, no idempotence, no extra streams: what Redis takes at best from
    one Python client.
    """

    def __init__(self, port: int, key: str, field_names: Sequence[str]) -> None:
        import hiredis

        from sinks.redis_streams import pack_command  # hiredis' pack_command, typed

        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = hiredis.Reader()
        self.pack = pack_command
        self.head = ("XADD", key, "*")
        self.names = tuple(field_names)

    def write(self, rows: Sequence[tuple[str, ...]]) -> None:
        """XADD every row (values in field-name order); raises on an error reply."""
        pack, head, names = self.pack, self.head, self.names
        commands = [pack((*head, *chain.from_iterable(zip(names, r, strict=True)))) for r in rows]
        self.sock.sendall(b"".join(commands))
        pending = len(rows)
        while pending:
            reply = self.reader.gets()
            if reply is False:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise ConnectionError("redis closed the connection")
                self.reader.feed(data)
                continue
            if isinstance(reply, Exception):
                raise reply
            pending -= 1

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def write_redis_py_pipeline(
    client: Any, key: str, field_names: Sequence[str], entries: Sequence[Any]
) -> None:
    """The straightforward writer, for scale: one redis-py pipeline of XADDs per batch
    to one stream (what issue 8 measured at ~50k/s on its machine)."""
    pipe = client.pipeline(transaction=False)
    for entry in entries:
        pipe.xadd(key, dict(zip(field_names, entry.values, strict=True)))
    pipe.execute()


# -- the bench -----------------------------------------------------------------------


@dataclass
class SinkBenchResult:
    """Figures of one run; times per event in µs, rates in events/s."""

    events: int
    batch: int
    streams: str
    redis_version: str
    sequential_events_per_s: float
    # "overlapped" is the real daemon.pipeline.Pipeline (encoder and writer threads):
    # the name stays for the JSON's readers.
    overlapped_events_per_s: float
    raw_events_per_s: float
    redis_py_events_per_s: float
    ratio_sequential: float
    ratio_overlapped: float
    median_chunk_ratio_sequential: float
    median_chunk_ratio_overlapped: float
    cpu_ratio: float
    source_cpu_us: float
    s2_cpu_us: float
    encode_cpu_us: float
    sink_cpu_us: float
    pipeline_redis_cpu_us: float
    pipeline_cpu_us: float
    pipeline_run_redis_cpu_us: float
    raw_client_cpu_us: float
    raw_redis_cpu_us: float
    s2sphere_cpu_us: float | None
    peak_rss_mb: float
    redis_peak_rss_mb: float
    stream_counts: dict[str, int] = field(default_factory=dict)

    def report(self) -> str:
        """The human-readable figures."""
        s2ref = (
            f"   (s2sphere: {self.s2sphere_cpu_us:.2f}, "
            f"{self.s2sphere_cpu_us / max(self.s2_cpu_us, 1e-9):.0f}x more)"
            if self.s2sphere_cpu_us is not None
            else ""
        )
        counts = ", ".join(f"{k} {v}" for k, v in self.stream_counts.items())
        client = self.s2_cpu_us + self.encode_cpu_us + self.sink_cpu_us
        raw_client = self.raw_client_cpu_us
        pipeline_total = self.pipeline_cpu_us + self.pipeline_run_redis_cpu_us
        return "\n".join(
            [
                f"bench sink: {self.events} events, batch {self.batch}, "
                f"redis {self.redis_version} on loopback TCP",
                f"  streams: {self.streams} ({counts})",
                "  CPU per event, µs (client threads; Redis from INFO cpu):",
                f"    source  jsonl replay, in no rate  {self.source_cpu_us:8.2f}",
                f"    S2      vectorized tokens         {self.s2_cpu_us:8.2f}{s2ref}",
                f"    encode  stream entries            {self.encode_cpu_us:8.2f}",
                f"    sink    pack + EVALSHA            {self.sink_cpu_us:8.2f}",
                f"    redis   script, 3 XADDs per event {self.pipeline_redis_cpu_us:8.2f}",
                f"    total   pipeline                  "
                f"{client + self.pipeline_redis_cpu_us:8.2f}",
                f"    raw     pack + pipelined XADD     {raw_client:8.2f}"
                f"   + redis {self.raw_redis_cpu_us:.2f} = "
                f"{raw_client + self.raw_redis_cpu_us:.2f}",
                f"    CPU per event, raw / pipeline: {self.cpu_ratio:.2f}",
                f"    Pipeline (all threads, emit incl.) {self.pipeline_cpu_us:8.2f}"
                f"   + redis {self.pipeline_run_redis_cpu_us:.2f} = "
                f"{pipeline_total:.2f}   (raw / this: "
                f"{(raw_client + self.raw_redis_cpu_us) / max(pipeline_total, 1e-9):.2f})",
                "                                                         events/s  ratio"
                "  (median of chunks)",
                f"    pipeline: daemon.pipeline.Pipeline (emit, encoder    "
                f"{self.overlapped_events_per_s:8.0f}   {self.ratio_overlapped:.2f}"
                f"   ({self.median_chunk_ratio_overlapped:.2f})",
                "              thread, writer thread)",
                f"    reference: one thread (S2, encode, write, next batch) "
                f"{self.sequential_events_per_s:8.0f}   {self.ratio_sequential:.2f}"
                f"   ({self.median_chunk_ratio_sequential:.2f})",
                f"    baseline, raw pipelined XADD to one stream            "
                f"{self.raw_events_per_s:8.0f}",
                f"    (for scale: redis-py pipeline XADD to one stream        "
                f"{self.redis_py_events_per_s:8.0f}   ratio pipeline to it "
                f"{self.overlapped_events_per_s / self.redis_py_events_per_s:.2f})",
                f"  peak RSS: bench process {self.peak_rss_mb:.0f} MB, "
                f"redis-server {self.redis_peak_rss_mb:.0f} MB",
            ]
        )


def s2sphere_us_per_point(n: int, seed: int = 2) -> float:
    """CPU µs per point of the reference path: s2sphere leaf plus the demo's tokens."""
    from daemon.s2index import S2Indexer

    indexer = S2Indexer(INDEX_LEVELS, CELL_STREAM_LEVEL)
    rng = random.Random(seed)
    points = [(rng.uniform(-60.0, 60.0), rng.uniform(-180.0, 180.0)) for _ in range(n)]
    t0 = time.thread_time()
    for lat, lon in points:
        indexer.tokens(lat, lon)
    return (time.thread_time() - t0) / n * 1e6


@dataclass
class _Tally:
    """Accumulated seconds: CPU per step, wall per mode, Redis CPU per mode."""

    cpu: dict[str, float] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    redis: dict[str, float] = field(default_factory=dict)
    chunk_walls: dict[str, list[float]] = field(default_factory=dict)

    def add(self, table: str, key: str, seconds: float) -> None:
        bucket = getattr(self, table)
        bucket[key] = bucket.get(key, 0.0) + seconds
        if table == "wall":
            self.chunk_walls.setdefault(key, []).append(seconds)

    def median_ratio(self, mode: str) -> float:
        """Median over chunks of (raw wall / `mode` wall): robust to load from other
        processes that comes and goes between chunks."""
        pairs = zip(self.chunk_walls["raw"], self.chunk_walls[mode], strict=True)
        return float(statistics.median(raw / ours for raw, ours in pairs))


def _run_sequential(
    batches: list[list[Any]], encoder: Any, sink: Any, tally: _Tally
) -> list[list[Any]]:
    """What Pipeline's sink thread does: S2, encode, write, then the next batch.

    Returns the entries written, batch by batch.
    """
    out = []
    w0 = time.perf_counter()
    for batch in batches:
        c0 = time.thread_time()
        events = [item.event for item in batch]
        cells = encoder.locate(events)
        c1 = time.thread_time()
        entries = encoder.encode_located(batch, events, cells)
        c2 = time.thread_time()
        if sink.write(entries) != len(entries):
            raise RuntimeError("the sink skipped events of a fresh batch")
        tally.add("cpu", "s2", c1 - c0)
        tally.add("cpu", "encode", c2 - c1)
        tally.add("cpu", "sink", time.thread_time() - c2)
        out.append(entries)
    tally.add("wall", "sequential", time.perf_counter() - w0)
    return out


def _run_pipeline(
    batches: list[list[Any]], pipeline: Any, emit: Any, client: Any, tally: _Tally
) -> None:
    """The real Pipeline: emit every event as a source would, then wait until the
    pipeline reports every one handed off (`wait_idle`: written, as no spool is set).

    Tallies the wall time, the process CPU time (every thread: the emits, the
    encoder, the writer) and the Redis CPU time.
    """
    r0 = redis_cpu_s(client)
    c0 = time.process_time()
    w0 = time.perf_counter()
    for batch in batches:
        for item in batch:
            emit(item.event, seq=item.seq, producer=item.producer)
    if not pipeline.wait_idle(120.0):
        raise RuntimeError(f"the pipeline did not write a chunk: {pipeline.last_error}")
    tally.add("wall", "overlapped", time.perf_counter() - w0)
    tally.add("cpu", "pipeline", time.process_time() - c0)
    tally.add("redis", "overlapped", redis_cpu_s(client) - r0)


def bench_sink(
    n_events: int, batch_size: int, reference_points: int = 20_000,
    redis_binary: str | None = None,
) -> SinkBenchResult:
    """Run the bench described in the module docstring and return its figures."""
    import redis

    from daemon.encode import EntryEncoder
    from daemon.gc_settings import settle_after_startup
    from daemon.metrics import Metrics
    from daemon.pipeline import Pipeline
    from daemon.s2index import S2Indexer
    from daemon.sequence import SequenceStore
    from sinks.redis_connection import RedisOptions
    from sinks.redis_streams import RedisStreamsSink

    workdir = Path(tempfile.mkdtemp(prefix="geosensord-bench-"))
    server = BenchRedis(workdir, redis_binary)
    try:
        path = workdir / "events.jsonl"
        write_events(path, n_events)
        server.start()
        client = redis.Redis(port=server.port, decode_responses=True)
        encoder = EntryEncoder(S2Indexer(INDEX_LEVELS, CELL_STREAM_LEVEL))
        # The two modes write under their own prefixes, so each writes every event.
        sinks = [
            RedisStreamsSink(RedisOptions(url=server.url), encoder.field_names,
                             prefix=prefix, maxlen=MAXLEN, cell_maxlen=CELL_MAXLEN)
            for prefix in ("geo", "geo2")
        ]
        for sink in sinks:
            sink.open()
        # The daemon's pipeline on the second prefix; a queue that holds a chunk, so
        # the emits measure the queue's cost, not backpressure waits.
        metrics = Metrics()
        pipeline = Pipeline(
            encoder, sinks[1], SequenceStore(workdir / "sequences.json", lambda p: 0), metrics,
            queue_size=CHUNK_BATCHES * batch_size, batch_size=batch_size,
        )
        pipeline.start()
        emit = pipeline.emitter("replay", "replay")
        raw = RawXaddWriter(server.port, RAW_STREAM, encoder.field_names)
        thresholds = gc.get_threshold()
        settle_after_startup()  # the daemon's GC settings (daemon/service.py)
        tally = _Tally()
        source_cpu_s: list[float] = []
        chunks = replay_chunks(path, CHUNK_BATCHES * batch_size, source_cpu_s)
        for number, chunk in enumerate(chunks):
            batches = [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
            # Every other chunk runs the Pipeline first, so neither mode is
            # always the one that meets a cold cache or a busy neighbour.
            if number % 2:
                _run_pipeline(batches, pipeline, emit, client, tally)
            r0 = redis_cpu_s(client)
            written = _run_sequential(batches, encoder, sinks[0], tally)
            r1 = redis_cpu_s(client)
            w0 = time.perf_counter()
            for entries in written:
                rows = [e.values for e in entries]
                c0 = time.thread_time()
                raw.write(rows)
                tally.add("cpu", "raw", time.thread_time() - c0)
            tally.add("wall", "raw", time.perf_counter() - w0)
            r2 = redis_cpu_s(client)
            tally.add("redis", "pipeline", r1 - r0)
            tally.add("redis", "raw", r2 - r1)
            w0 = time.perf_counter()
            for entries in written:
                write_redis_py_pipeline(client, REDIS_PY_STREAM, encoder.field_names, entries)
            tally.add("wall", "redis_py", time.perf_counter() - w0)
            if not number % 2:
                _run_pipeline(batches, pipeline, emit, client, tally)
            del written, batches
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        if not pipeline.stop(30.0):
            raise RuntimeError("the pipeline did not stop")
        if metrics.total("events_rejected_total") or metrics.total("sink_errors_total"):
            raise RuntimeError(f"the pipeline failed: {pipeline.last_error}")
        raw.close()
        for key in ("geo:events", "geo2:events", RAW_STREAM, REDIS_PY_STREAM):
            if client.xlen(key) != n_events:
                raise RuntimeError(f"{key} holds {client.xlen(key)} entries, not {n_events}")
        keys = [str(k) for k in client.scan_iter("geo:*", count=10_000)]
        counts = {
            "per-source": sum(k.startswith("geo:src:") for k in keys),
            "per-cell": sum(k.startswith("geo:cell:") for k in keys),
        }
        version = str(client.info("server")["redis_version"])
        for sink in sinks:
            sink.close()
        client.close()
        s2ref = s2sphere_us_per_point(reference_points) if reference_points > 0 else None
        us = 1e6 / n_events
        rates = {mode: n_events / tally.wall[mode] for mode in tally.wall}
        return SinkBenchResult(
            events=n_events,
            batch=batch_size,
            streams=f"global + per-source + per-cell (level {CELL_STREAM_LEVEL})",
            redis_version=version,
            sequential_events_per_s=rates["sequential"],
            overlapped_events_per_s=rates["overlapped"],
            raw_events_per_s=rates["raw"],
            redis_py_events_per_s=rates["redis_py"],
            ratio_sequential=rates["sequential"] / rates["raw"],
            ratio_overlapped=rates["overlapped"] / rates["raw"],
            median_chunk_ratio_sequential=tally.median_ratio("sequential"),
            median_chunk_ratio_overlapped=tally.median_ratio("overlapped"),
            cpu_ratio=(tally.cpu["raw"] + tally.redis["raw"])
            / (tally.cpu["s2"] + tally.cpu["encode"] + tally.cpu["sink"] + tally.redis["pipeline"]),
            source_cpu_us=sum(source_cpu_s) * us,
            s2_cpu_us=tally.cpu["s2"] * us,
            encode_cpu_us=tally.cpu["encode"] * us,
            sink_cpu_us=tally.cpu["sink"] * us,
            pipeline_redis_cpu_us=tally.redis["pipeline"] * us,
            pipeline_cpu_us=tally.cpu["pipeline"] * us,
            pipeline_run_redis_cpu_us=tally.redis["overlapped"] * us,
            raw_client_cpu_us=tally.cpu["raw"] * us,
            raw_redis_cpu_us=tally.redis["raw"] * us,
            s2sphere_cpu_us=s2ref,
            peak_rss_mb=vm_hwm_kb() / 1024.0,
            redis_peak_rss_mb=server.peak_rss_kb() / 1024.0,
            stream_counts=counts,
        )
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
