"""Replaying recorded events end to end: `geosensord run --once` on a jsonl source.

The real CLI runs as a subprocess against a real redis-server. Replaying is
idempotent (a second run, a copy of the file elsewhere, a fresh state directory:
nothing new), appended lines are published, malformed lines are counted and
skipped, and what a jsonl sink records replays into a fresh Redis identically.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import s2sphere
from redis_proc import RedisProcess

from daemon.config import load_config
from daemon.runtime import open_runtime
from daemon.sources import build_source

REPO = Path(__file__).resolve().parents[2]
SRC = "rec"  # the recorded `src`, kept on replay (differs from the source name on purpose)


def records(n: int, first: int = 0, seed: int = 7) -> list[dict[str, Any]]:
    """`n` event records in the jsonl form, with and without altitude and data."""
    rng = random.Random(seed + first)
    out = []
    for i in range(first, first + n):
        out.append({
            "id": f"replay-test:{i}", "src": SRC, "kind": "sensor.reading",
            "t": 1_700_000_000_000 + 1000 * i, "rx": 1_700_000_000_000 + 1000 * i + 17,
            "lat": rng.uniform(-89.9, 89.9), "lon": rng.uniform(-179.9, 179.9),
            "alt": None if i % 5 == 0 else round(rng.uniform(-100.0, 30_000.0), 3),
            "alt_ref": "ellipsoid" if i % 2 else "msl",
            "station": "recorded-st",
            "data": {} if i % 7 == 0 else {"i": i, "temp_c": rng.uniform(-40, 40), "tag": "é✓"},
        })
    return out


def write_jsonl(path: Path, recs: list[dict[str, Any]], mode: str = "w") -> None:
    with path.open(mode, encoding="utf-8") as fh:
        for rec in recs:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write_config(tmp: Path, url: str, source_path: Path, *, state: str = "state",
                 mirror: Path | None = None, name: str = "config.toml") -> Path:
    text = f"""\
[station]
id = "replay-station"
lat = 1.0
lon = 2.0

[redis]
url = "{url}"
socket_timeout_s = 2.0

[state]
dir = "{tmp / state}"

[http]
listen = ""

[pipeline]
batch_latency_ms = 20

[sources.replay]
type = "jsonl"
path = "{source_path}"
"""
    if mirror is not None:
        text += f'\n[sinks.rec]\ntype = "jsonl"\npath = "{mirror}"\n'
    path = tmp / name
    path.write_text(text)
    return path


def run_once(config: Path) -> subprocess.CompletedProcess[str]:
    """`python -m daemon run --config CONFIG --once`; the test fails on a non-zero exit."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--config", str(config), "--once"],
        capture_output=True, text=True, timeout=60, env=env, cwd=config.parent,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def ids_in(server: RedisProcess, key: str = "geo:events") -> list[str]:
    client: Any = server.client()
    return [f["id"] for _, f in client.xrange(key)]


def assert_s2_fields_match_s2sphere(server: RedisProcess, levels: tuple[int, ...] = (6, 10, 14),
                                     cell_level: int = 8) -> None:
    """Every entry's `s2` and `s2_<L>` are what s2sphere computes for its lat/lon, and it
    sits in the per-cell stream of its cell."""
    client: Any = server.client()
    rows = client.xrange("geo:events")
    assert rows
    for _, f in rows:
        leaf = s2sphere.CellId.from_lat_lng(
            s2sphere.LatLng.from_degrees(float(f["lat"]), float(f["lon"])))
        assert f["s2"] == leaf.to_token()
        for level in levels:
            assert f[f"s2_{level}"] == leaf.parent(level).to_token()
        cell_key = f"geo:cell:{{{leaf.parent(cell_level).to_token()}}}"
        assert f["id"] in {g["id"] for _, g in client.xrange(cell_key)}


def test_replay_is_idempotent_across_reruns_copies_and_appends(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    first = records(400)
    src_file = tmp_path / "events.jsonl"
    write_jsonl(src_file, first)
    config = write_config(tmp_path, redis_server.url, src_file)

    run_once(config)
    expected = [r["id"] for r in first]
    assert ids_in(redis_server) == expected, "first run: every line once, in file order"
    assert ids_in(redis_server, f"geo:src:{SRC}") == expected
    assert_s2_fields_match_s2sphere(redis_server)

    run_once(config)
    assert len(ids_in(redis_server)) == 400, "second run of the same file wrote new entries"

    copy_dir = tmp_path / "elsewhere"
    copy_dir.mkdir()
    copy = copy_dir / "renamed-copy.jsonl"
    shutil.copy(src_file, copy)
    # (In process from here on where the CLI adds nothing: a child costs ~1 s of imports.)
    replay_in_process(write_config(tmp_path, redis_server.url, copy, name="copy.toml"))
    assert len(ids_in(redis_server)) == 400, "a copy of the file at another path wrote entries"

    # A fresh state directory (sequences.json gone): the offsets in Redis still dedupe.
    replay_in_process(write_config(tmp_path, redis_server.url, src_file, state="state2",
                                   name="s2.toml"))
    assert len(ids_in(redis_server)) == 400, "a fresh state directory re-published the file"

    more = records(25, first=400)
    write_jsonl(src_file, more, mode="a")
    run_once(config)
    assert ids_in(redis_server) == expected + [r["id"] for r in more], (
        "appending lines must publish exactly those lines"
    )


MALFORMED = [
    "this is not json",
    "[1, 2, 3]",
    '{"id": "no-position", "src": "rec", "kind": "k", "t": 1}',
    '{"id": "bad-lat", "src": "rec", "kind": "k", "t": 1, "lat": 95.0, "lon": 0.0}',
    '{"id": "str-lat", "src": "rec", "kind": "k", "t": 1, "lat": "north", "lon": 0.0}',
    '{"id": "nan-alt", "src": "rec", "kind": "k", "t": 1, "lat": 1.0, "lon": 0.0, "alt": NaN}',
    '{"id": "", "src": "rec", "kind": "k", "t": 1, "lat": 1.0, "lon": 0.0}',
    '{"id": "bad-data", "src": "rec", "kind": "k", "t": 1, "lat": 1.0, "lon": 0.0, "data": 5}',
    '{"id": "bad-ref", "src": "rec", "kind": "k", "t": 1, "lat": 1.0, "lon": 0.0, "alt": 1.0, '
    '"alt_ref": "sky"}',
    '{"truncated": ',
]


def mixed_file(path: Path) -> list[str]:
    """A file with good lines, malformed ones, a blank line and a last line without newline.

    Returns the ids of the good lines in file order.
    """
    good = records(60, seed=3)
    lines: list[str] = []
    for i, rec in enumerate(good):
        lines.append(json.dumps(rec))
        if i % 6 == 0 and i // 6 < len(MALFORMED):
            lines.append(MALFORMED[i // 6])
    lines.insert(10, "")
    text = "\n".join(lines[:-1]) + "\n" + lines[-1]  # last good line has no newline
    path.write_text(text, encoding="utf-8")
    return [r["id"] for r in good]


def test_malformed_lines_are_skipped_without_stopping_the_source(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    src_file = tmp_path / "mixed.jsonl"
    good_ids = mixed_file(src_file)
    with src_file.open("ab") as fh:  # invalid UTF-8 inside a line
        fh.write(b"\n{\"id\": \"\xff\xfe\"}\n")
        fh.write((json.dumps(records(1, first=999)[0]) + "\n").encode())
    good_ids.append("replay-test:999")
    proc = run_once(write_config(tmp_path, redis_server.url, src_file))
    assert ids_in(redis_server) == good_ids
    assert "malformed" in proc.stderr


def test_malformed_lines_are_counted_by_reason(redis_server: RedisProcess, tmp_path: Path) -> None:
    src_file = tmp_path / "mixed.jsonl"
    good_ids = mixed_file(src_file)
    config = load_config(write_config(tmp_path, redis_server.url, src_file))
    with open_runtime(config) as rt:
        source = build_source("replay", config.sources["replay"], rt.source_context())
        source.run(rt.pipeline.emitter(source.producer, "replay"), threading.Event(), True)
        assert rt.pipeline.wait_idle(10)
        bad = rt.metrics.get("bad_input_total", source="replay", reason="malformed_line")
        assert bad == len(MALFORMED)
        assert rt.metrics.get("events_in_total", source="replay") == len(good_ids)
    assert ids_in(redis_server) == good_ids


FIELDS = ("id", "src", "kind", "t", "rx", "lat", "lon", "alt", "station", "data", "s2")


def entries(server: RedisProcess) -> list[dict[str, Any]]:
    client: Any = server.client()
    return [{k: f[k] for k in FIELDS} for _, f in client.xrange("geo:events")]


@pytest.fixture
def second_redis(redis_server: RedisProcess, tmp_path: Path) -> Any:
    server = RedisProcess(tmp_path / "redis2", redis_server.binary)
    server.start()
    yield server
    server.stop()


def test_jsonl_mirror_replays_into_a_fresh_redis_identically(
    redis_server: RedisProcess, second_redis: RedisProcess, tmp_path: Path
) -> None:
    src_file = tmp_path / "events.jsonl"
    write_jsonl(src_file, records(300, seed=11))
    mirror = tmp_path / "mirror" / "recorded.jsonl"
    run_once(write_config(tmp_path, redis_server.url, src_file, mirror=mirror))
    original = entries(redis_server)
    assert len(original) == 300
    recorded = [json.loads(line) for line in mirror.read_text().splitlines()]
    assert [r["id"] for r in recorded] == [e["id"] for e in original]

    replay_in_process(write_config(tmp_path, second_redis.url, mirror, state="state-b",
                                   name="b.toml"))
    replayed = entries(second_redis)
    assert replayed == original  # id/src/kind/t/rx/lat/lon/alt/station/data and the S2 leaf


def replay_in_process(config_path: Path) -> None:
    """One `--once` pass of the configured jsonl source through the real runtime."""
    config = load_config(config_path)
    with open_runtime(config) as rt:
        source = build_source("replay", config.sources["replay"], rt.source_context())
        source.run(rt.pipeline.emitter(source.producer, "replay"), threading.Event(), True)
        assert rt.pipeline.wait_idle(10)


def test_mirror_records_each_event_once_when_a_file_is_replayed_again(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A recording made while re-running a replay must not duplicate events.

    Otherwise replaying that recording later publishes the duplicates as new
    lines (new sequence numbers), i.e. the same event ids twice in Redis.
    (In process: this is the pipeline's behaviour, the CLI adds nothing to it.)
    """
    src_file = tmp_path / "events.jsonl"
    write_jsonl(src_file, records(50))
    mirror = tmp_path / "recorded.jsonl"
    config = write_config(tmp_path, redis_server.url, src_file, mirror=mirror)
    replay_in_process(config)
    replay_in_process(config)
    ids = [json.loads(line)["id"] for line in mirror.read_text().splitlines()]
    assert len(ids_in(redis_server)) == 50
    assert len(ids) == len(set(ids)) == 50, f"mirror holds {len(ids)} lines for 50 events"


def test_following_a_file_that_starts_empty_does_not_republish_after_a_restart(
    redis_server: RedisProcess, tmp_path: Path
) -> None:
    """A file followed from its creation (a recorder writing it) keeps one identity.

    The producer key is derived from the file's first line; read while the file is
    still empty it must not differ from what a later restart reads, or the restart
    publishes every line again.
    """
    src_file = tmp_path / "live.jsonl"
    src_file.write_text("")
    config_path = write_config(tmp_path, redis_server.url, src_file)
    config_path.write_text(config_path.read_text() + "follow = true\n")
    config = load_config(config_path)
    recs = records(20)
    with open_runtime(config) as rt:
        source = build_source("replay", config.sources["replay"], rt.source_context())
        stop = threading.Event()
        thread = threading.Thread(
            target=source.run, args=(rt.pipeline.emitter(source.producer, "replay"), stop, False)
        )
        thread.start()
        try:
            write_jsonl(src_file, recs, mode="a")
            client: Any = redis_server.client()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and (
                not client.exists("geo:events") or client.xlen("geo:events") < 20
            ):
                time.sleep(0.05)
            assert client.xlen("geo:events") == 20, "follow mode did not pick up appended lines"
        finally:
            stop.set()
            thread.join(5)
    replay_in_process(config_path)  # the daemon restarted: the file now has a first line
    ids = ids_in(redis_server)
    assert len(ids) == len(set(ids)) == 20, f"{len(ids)} entries for 20 events after a restart"
