"""Write amplification of the disk spool vs a SQLite WAL spool (SD cards wear out).

    python bench/spool_write.py [--events 3000] [--dir PATH]

For each batch size and each variant the script spools `--events` aircraft
position events (real stream entries from the EntryEncoder), then replays and
removes them all, and reports:

    amp_spool    bytes the kernel was asked to write while appending, per byte of
                 stream-entry values (UTF-8 of the contract fields, what Redis gets)
    amp_cycle    the same over append + full replay + removal (SQLite pays again to
                 delete rows; segments are unlinked)
    us/append    wall time per append (fsync included)

Bytes come from /proc/self/io `write_bytes`: pages this process dirtied and so
caused to be written (a page re-dirtied after an fsync counts again; rewriting a
page still dirty does not). File-system journal blocks are not included; they add
roughly one 4 KiB block per fsync on ext4 (data=ordered), which only widens the gap
between fsync-per-append variants and the rest. Each variant runs in its own
directory under `--dir` (default: a temporary directory on the same file system as
the repository, not tmpfs).

Variants:
    segments:batch     DiskSpool fsync="batch"     fdatasync per append
    segments:batch/raw the same with compress_level=0 (plain msgpack payloads)
    segments:interval  DiskSpool fsync="interval"  fdatasync ≥ 1 s apart; batches are
                       taken to arrive every 100 ms (a simulated clock), as in an outage
    segments:never     DiskSpool fsync="never"     kernel writeback only
    sqlite:FULL        one row per batch, journal_mode=WAL, synchronous=FULL
                       (fsync per commit: the durability of segments:batch)
    sqlite:NORMAL      journal_mode=WAL, synchronous=NORMAL (fsync at checkpoints)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.encode import EntryEncoder
from daemon.event import Event, Sequenced
from daemon.s2index import S2Indexer
from sinks.entry import StreamEntry
from sinks.spool import DiskSpool
from sinks.spool_format import HEADER_BYTES, encode_record

BATCH_SIZES = (1, 10, 100, 500)
BATCH_INTERVAL_S = 0.1  # the pipeline's default batch latency


def make_entries(n: int) -> list[StreamEntry]:
    """`n` realistic aircraft.position entries (S2 tokens, JSON data, record form)."""
    encoder = EntryEncoder(S2Indexer((6, 10, 14), 8))
    items = []
    for i in range(n):
        t_ms = 1_700_000_000_000 + i * 500
        event = Event(
            id=f"adsb:4840d6:{t_ms}", src="adsb", kind="aircraft.position", t=t_ms, rx=t_ms + 3,
            lat=52.25 + i * 1e-4, lon=3.91 + i * 2e-4, alt=10_668.0 + i % 50,
            station="pi-porto-alegre",
            data={"icao": "4840d6", "callsign": "KLM1023", "squawk": "7506",
                  "speed_mps": 231.5, "track_deg": 87.2, "vrate_mps": -0.3},
        )
        items.append(Sequenced("adsb", i + 1, event))
    return encoder.encode(items)


def event_bytes(entries: list[StreamEntry]) -> int:
    """UTF-8 bytes of the stream-entry values: the payload the spool exists to keep."""
    return sum(len(v.encode()) for e in entries for v in e.values)


def write_bytes() -> int:
    """Bytes this process caused to be written to storage so far (/proc/self/io)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes (kernel without task I/O accounting)")


class SimulatedClock:
    """A DiskSpool clock the benchmark advances by one batch interval per append, so
    fsync="interval" sees batches arriving at the pipeline's pace, not the benchmark's."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


Result = tuple[int, int, float]  # bytes while appending, bytes for the whole cycle, s/append


def run_segments(
    directory: Path, batches: list[list[StreamEntry]], fsync: str, compress_level: int = 1
) -> Result:
    before = write_bytes()
    t0 = time.perf_counter()
    clock = SimulatedClock()
    with DiskSpool(directory, fsync=fsync, compress_level=compress_level, clock=clock) as spool:
        for batch in batches:
            clock.now_s += BATCH_INTERVAL_S
            spool.append(batch)
        appended = write_bytes() - before
        elapsed_s = time.perf_counter() - t0
        while spool.peek() is not None:
            spool.pop()
    return appended, write_bytes() - before, elapsed_s / len(batches)


def run_sqlite(directory: Path, batches: list[list[StreamEntry]], synchronous: str) -> Result:
    directory.mkdir(parents=True, exist_ok=True)
    before = write_bytes()
    db = sqlite3.connect(directory / "spool.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE IF NOT EXISTS batches "
               "(id INTEGER PRIMARY KEY, n_events INTEGER, payload BLOB)")
    t0 = time.perf_counter()
    for batch in batches:
        # The same (zlib level 1) payload the segments store, without their 20-byte header.
        payload = encode_record(batch)[HEADER_BYTES:]
        db.execute("INSERT INTO batches (n_events, payload) VALUES (?, ?)", (len(batch), payload))
    appended = write_bytes() - before
    elapsed_s = time.perf_counter() - t0
    while (row := db.execute("SELECT id, payload FROM batches ORDER BY id LIMIT 1").fetchone()):
        db.execute("DELETE FROM batches WHERE id = ?", (row[0],))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return appended, write_bytes() - before, elapsed_s / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000, help="events per run")
    parser.add_argument("--dir", type=Path, default=None, help="where to write (not tmpfs)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spool-bench-", dir=args.dir or Path(__file__).parent))
    entries = make_entries(args.events)
    raw_ratio = len(encode_record(entries, 0)) / event_bytes(entries)
    print(f"{args.events} aircraft.position events, {event_bytes(entries) / len(entries):.0f} "
          f"value bytes/event; one plain msgpack record of them: {raw_ratio:.2f} bytes "
          "per value byte (the record dict repeats the values)")
    variants: dict[str, Callable[[Path, list[list[StreamEntry]]], Result]] = {
        "segments:batch": lambda d, b: run_segments(d, b, "batch"),
        "segments:batch/raw": lambda d, b: run_segments(d, b, "batch", compress_level=0),
        "segments:interval": lambda d, b: run_segments(d, b, "interval"),
        "segments:never": lambda d, b: run_segments(d, b, "never"),
        "sqlite:FULL": lambda d, b: run_sqlite(d, b, "FULL"),
        "sqlite:NORMAL": lambda d, b: run_sqlite(d, b, "NORMAL"),
    }
    print(f"{'events/batch':>12} {'variant':>19} {'amp_spool':>10} {'amp_cycle':>10} "
          f"{'us/append':>10}")
    try:
        for size in BATCH_SIZES:
            batches = [entries[i:i + size] for i in range(0, len(entries), size)]
            value_bytes = event_bytes(entries)
            for name, run in variants.items():
                directory = root / f"{name.replace(':', '-')}-{size}"
                appended, cycle, per_append_s = run(directory, batches)
                print(f"{size:>12} {name:>19} {appended / value_bytes:>10.2f} "
                      f"{cycle / value_bytes:>10.2f} {per_append_s * 1e6:>10.0f}")
                os.sync()
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
