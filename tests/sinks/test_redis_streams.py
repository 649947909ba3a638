"""The Redis Streams sink against a real redis-server (design §2 and §4).

Proves the stream contract (same field names in the same order in every entry of
every stream, ``v=1``, the per-source and per-cell keys), that ``MAXLEN ~`` and
``MINID ~`` trimming really trim, that writes are idempotent per producer offset,
that memos are recorded with the write, and that a Redis password never shows in
an error or a log line.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import s2sphere
from redis_proc import RedisProcess

from daemon.encode import EntryEncoder, field_names
from daemon.event import Event, Sequenced
from daemon.metrics import Metrics
from daemon.pipeline import Pipeline
from daemon.s2index import S2Indexer
from daemon.sequence import SequenceStore
from sinks.base import SinkError, SinkRejected, SinkUnavailable
from sinks.entry import StreamEntry
from sinks.redis_connection import RedisOptions, redact
from sinks.redis_streams import RedisStreamsSink
from sinks.spool import DiskSpool

LEVELS = (6, 10, 14)
CELL_LEVEL = 8
FIELDS = field_names(LEVELS)
ENCODER = EntryEncoder(S2Indexer(LEVELS, CELL_LEVEL))
SECRET = "Zq7-very-secret-pw"


def make_events(n: int, src: str = "alpha", seed: int = 1, first: int = 0,
                centre: tuple[float, float] | None = None) -> list[Event]:
    """`n` deterministic events from `src`: some without altitude, varied data sizes."""
    rng = random.Random(seed)
    out = []
    for i in range(first, first + n):
        if centre is None:
            lat, lon = rng.uniform(-89.0, 89.0), rng.uniform(-180.0, 180.0)
        else:
            lat, lon = centre[0] + rng.uniform(-0.5, 0.5), centre[1] + rng.uniform(-0.5, 0.5)
        data: dict[str, object] = {"n": i}
        if i % 3 == 0:
            data["note"] = "x" * rng.randrange(0, 50)
        out.append(Event(
            id=f"test:{src}:{i}", src=src, kind="sensor.reading", t=1_700_000_000_000 + i,
            rx=1_700_000_000_500 + i, lat=lat, lon=lon,
            alt=None if i % 4 == 0 else rng.uniform(-10.0, 12_000.0), station="st-1", data=data,
        ))
    return out


def encode(events: list[Event], producer: str = "st-1:alpha", first_seq: int = 1,
           memo: bool = False) -> list[StreamEntry]:
    """Stream entries for `events` with consecutive sequences from `first_seq`."""
    return ENCODER.encode([
        Sequenced(producer, first_seq + i, ev, (ev.id, str(ev.t)) if memo else None)
        for i, ev in enumerate(events)
    ])


@pytest.fixture
def private_server(redis_server: RedisProcess) -> RedisProcess:
    """A redis-server of this test alone (it is stopped or reconfigured)."""
    return redis_server


@pytest.fixture
def sink(server: RedisProcess) -> Iterator[RedisStreamsSink]:
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, prefix="geo",
                         maxlen=0, cell_maxlen=0)
    s.open()
    yield s
    s.close()


def rclient(server: RedisProcess) -> Any:
    """A decoding client for assertions (typed Any: redis-py's reply types are unions)."""
    return server.client()


def stream_keys(client: Any) -> list[str]:
    return sorted(k for k in client.scan_iter("geo:*") if client.type(k) == "stream")


def cell_token(lat: float, lon: float, level: int = CELL_LEVEL) -> str:
    leaf = s2sphere.CellId.from_lat_lng(s2sphere.LatLng.from_degrees(lat, lon))
    return str(leaf.parent(level).to_token())


# -- the contract ----------------------------------------------------------------------


def test_every_entry_of_every_stream_has_the_contract_fields_in_order(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    batch = encode(make_events(150, "alpha")) + encode(make_events(150, "beta", seed=2),
                                                       producer="st-1:beta")
    assert sink.write(batch) == 300
    client = rclient(server)
    keys = stream_keys(client)
    assert "geo:events" in keys and "geo:src:alpha" in keys and "geo:src:beta" in keys
    assert any(k.startswith("geo:cell:{") for k in keys)
    total = 0
    for key in keys:
        for _, fields in client.xrange(key):
            assert tuple(fields) == FIELDS, key
            assert fields["v"] == "1"
            total += 1
    assert total == 3 * 300  # each event once in events, once in its src, once in its cell


def test_entry_values_round_trip_the_event(sink: RedisStreamsSink,
                                           server: RedisProcess) -> None:
    events = make_events(40)
    sink.write(encode(events))
    rows = rclient(server).xrange("geo:events")
    assert [f["id"] for _, f in rows] == [e.id for e in events]
    for (_, f), ev in zip(rows, events, strict=True):
        assert (f["src"], f["kind"], f["station"]) == (ev.src, ev.kind, ev.station)
        assert (int(f["t"]), int(f["rx"])) == (ev.t, ev.rx)
        assert (float(f["lat"]), float(f["lon"])) == (ev.lat, ev.lon)
        if ev.alt is None:
            assert f["alt"] == ""
        else:
            assert float(f["alt"]) == ev.alt
        data = json.loads(f["data"])
        assert data["n"] == ev.data["n"]


def test_per_source_streams_hold_exactly_their_sources_events(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    sink.write(encode(make_events(30, "alpha")) +
               encode(make_events(20, "beta", seed=3), producer="st-1:beta"))
    client = rclient(server)
    assert client.xlen("geo:events") == 50
    alpha = [f["id"] for _, f in client.xrange("geo:src:alpha")]
    beta = [f["id"] for _, f in client.xrange("geo:src:beta")]
    assert alpha == [f"test:alpha:{i}" for i in range(30)]
    assert beta == [f"test:beta:{i}" for i in range(20)]


def test_per_cell_streams_are_keyed_by_the_hash_tagged_cell_token(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    events = make_events(100, centre=(48.0, 11.0)) + make_events(50, seed=9, first=100)
    sink.write(encode(events))
    client = rclient(server)
    expected: dict[str, set[str]] = {}
    for ev in events:
        expected.setdefault(f"geo:cell:{{{cell_token(ev.lat, ev.lon)}}}", set()).add(ev.id)
    cell_keys = [k for k in stream_keys(client) if k.startswith("geo:cell:")]
    assert sorted(cell_keys) == sorted(expected)
    for key, ids in expected.items():
        rows = client.xrange(key)
        assert {f["id"] for _, f in rows} == ids
        for _, f in rows:
            leaf = s2sphere.CellId.from_token(f["s2"])
            assert key == f"geo:cell:{{{leaf.parent(CELL_LEVEL).to_token()}}}"


def test_stream_switches_leave_out_the_disabled_streams(server: RedisProcess) -> None:
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, source_streams=False,
                         cell_streams=False)
    assert s.write(encode(make_events(10))) == 10
    assert stream_keys(rclient(server)) == ["geo:events"]
    s.close()


def test_custom_prefix_names_every_key(server: RedisProcess) -> None:
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, prefix="wx")
    s.write(encode(make_events(5), memo=True))
    client = rclient(server)
    assert not list(client.scan_iter("geo:*"))
    keys = set(client.scan_iter("wx:*"))
    assert {"wx:events", "wx:src:alpha", "wx:offsets", "wx:memo:st-1:alpha"} <= keys
    s.close()


# -- trimming --------------------------------------------------------------------------


def test_maxlen_approximately_trims_every_stream(server: RedisProcess) -> None:
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, maxlen=200, cell_maxlen=150)
    events = make_events(3000, centre=(10.0, 10.0), seed=4)  # a few cells, many entries each
    for i in range(0, 3000, 250):
        s.write(encode(events[i:i + 250], first_seq=i + 1))
    client = rclient(server)
    # MAXLEN ~ trims whole macro nodes (100 entries by default): allow that much slack.
    assert 200 <= client.xlen("geo:events") <= 200 + 100
    assert 200 <= client.xlen("geo:src:alpha") <= 200 + 100
    cells = [k for k in stream_keys(client) if k.startswith("geo:cell:")]
    assert cells
    big = 0
    for key in cells:
        assert client.xlen(key) <= 150 + 100, key
        big += client.xlen(key) >= 150
    assert big  # at least one cell got enough entries to be trimmed, and kept ~150
    # The newest entries are the ones kept.
    assert client.xrevrange("geo:events", count=1)[0][1]["id"] == events[-1].id
    s.close()


def test_max_age_trims_entries_older_than_the_window(server: RedisProcess) -> None:
    client = rclient(server)
    old_ms = int(time.time() * 1000) - 3_600_000
    for i in range(500):  # an hour old: five full macro nodes
        client.xadd("geo:events", {"old": str(i)}, id=f"{old_ms}-{i}")
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, max_age_s=600)
    s.write(encode(make_events(10)))
    remaining_old = sum(1 for _, f in client.xrange("geo:events") if "old" in f)
    assert remaining_old <= 100  # MINID ~ may keep one partly old node
    assert sum(1 for _, f in client.xrange("geo:events") if "id" in f) == 10
    s.close()


def test_maxlen_zero_does_not_trim(server: RedisProcess) -> None:
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, maxlen=0, cell_maxlen=0)
    s.write(encode(make_events(700, centre=(1.0, 1.0))))
    assert rclient(server).xlen("geo:events") == 700
    s.close()


# -- idempotence and memos -------------------------------------------------------------


def test_writing_the_same_batch_twice_writes_nothing_the_second_time(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    batch = encode(make_events(100), memo=True)
    assert sink.write(batch) == 100
    client = rclient(server)
    before = {k: client.xlen(k) for k in stream_keys(client)}
    assert sink.write(batch) == 0
    assert {k: client.xlen(k) for k in stream_keys(client)} == before
    assert client.hget("geo:offsets", "st-1:alpha") == "100"
    assert sink.committed_offset("st-1:alpha") == 100


def test_an_overlapping_batch_writes_only_the_new_sequences(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    events = make_events(30)
    assert sink.write(encode(events[:20])) == 20
    assert sink.write(encode(events[10:], first_seq=11)) == 10
    ids = [f["id"] for _, f in rclient(server).xrange("geo:events")]
    assert ids == [e.id for e in events]


def test_offsets_are_kept_per_producer_within_one_batch(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    a = encode(make_events(5, "alpha"), producer="p:a")
    b = encode(make_events(5, "beta", seed=5), producer="p:b")
    assert sink.write(a[:3]) == 3
    mixed = [x for pair in zip(a, b, strict=True) for x in pair]  # interleaved producers
    assert sink.write(mixed) == 2 + 5
    client = rclient(server)
    assert client.hgetall("geo:offsets") == {"p:a": "5", "p:b": "5"}
    assert client.xlen("geo:events") == 10


def test_a_prepared_batch_writes_what_write_writes_and_only_once(
    sink: RedisStreamsSink, server: RedisProcess, tmp_path: Path
) -> None:
    events = make_events(40)
    batch = encode(events[:30], memo=True)
    prepared = sink.prepare(batch)
    assert prepared is not None and prepared.size == 30
    rclient(server).script_flush()  # a restarted Redis: the script is loaded on NOSCRIPT
    assert sink.write_prepared(prepared) == 30
    assert sink.last_written == [True] * 30
    assert sink.write_prepared(prepared) == 0  # a retry of the same prepared batch
    assert sink.last_written == [False] * 30
    overlapping = sink.prepare(encode(events[20:], first_seq=21))
    assert overlapping is not None
    assert sink.write_prepared(overlapping) == 10
    assert sink.last_written == [False] * 10 + [True] * 10
    client = rclient(server)
    assert [f["id"] for _, f in client.xrange("geo:events")] == [e.id for e in events]
    assert client.hlen("geo:memo:st-1:alpha") == 30
    # The same events through write() on another prefix give the same streams.
    other = RedisStreamsSink(RedisOptions(url=server.url), FIELDS, prefix="w",
                             maxlen=0, cell_maxlen=0)
    assert other.write(encode(events)) == 40
    for key in stream_keys(client):
        theirs = [f for _, f in client.xrange("w" + key.removeprefix("geo"))]
        assert [f for _, f in client.xrange(key)] == theirs
    other.close()


def test_the_pipeline_prepares_batches_in_its_encoder_thread(
    server: RedisProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    original = RedisStreamsSink.prepare

    def prepare(self: RedisStreamsSink, batch: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(self, batch)

    monkeypatch.setattr(RedisStreamsSink, "prepare", prepare)
    s = RedisStreamsSink(RedisOptions(url=server.url), FIELDS)
    pipeline = Pipeline(ENCODER, s, SequenceStore(tmp_path / "seq.json", lambda p: 0), Metrics(),
                        batch_size=50, batch_latency_s=0.01)
    pipeline.start()
    emit = pipeline.emitter("p")
    events = make_events(500)
    for ev in events:
        emit(ev)
    assert pipeline.wait_idle(20)
    assert pipeline.stop(timeout_s=5)
    s.close()
    assert threads and set(threads) == {"sink-encode"}
    ids = [f["id"] for _, f in rclient(server).xrange("geo:events")]
    assert ids == [e.id for e in events]


def test_large_sequence_numbers_survive_the_script_exactly(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    # Sequences start at the current time in microseconds (daemon/sequence.py).
    first = time.time_ns() // 1000
    events = make_events(3)
    assert sink.write(encode(events, first_seq=first)) == 3
    assert sink.committed_offset("st-1:alpha") == first + 2
    assert sink.write(encode(events[2:], first_seq=first + 2)) == 0
    assert sink.write(encode(make_events(1, first=3), first_seq=first + 3)) == 1


def test_memo_is_recorded_with_the_write_and_not_by_a_duplicate(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    events = make_events(5)
    entries = encode(events, memo=True)
    assert sink.write(entries) == 5
    assert sink.memo("st-1:alpha") == {ev.id: str(ev.t) for ev in events}
    # A replay of an already-written sequence carrying a different memo changes nothing.
    stale = ENCODER.encode([Sequenced("st-1:alpha", 3, events[2], (events[2].id, "999"))])
    assert sink.write(stale) == 0
    assert sink.memo("st-1:alpha")[events[2].id] == str(events[2].t)


def test_a_failed_batch_leaves_no_partial_writes_behind(
    sink: RedisStreamsSink, server: RedisProcess
) -> None:
    """A batch is all or nothing: a retry after a rejected batch must not duplicate."""
    client = rclient(server)
    client.set("geo:src:beta", "not a stream")  # a key clash makes XADD fail mid-batch
    batch = encode(make_events(5, "alpha")) + encode(make_events(5, "beta", seed=6),
                                                     producer="st-1:beta")
    with pytest.raises(SinkRejected):
        sink.write(batch)
    client.delete("geo:src:beta")
    assert sink.write(batch) == 10  # the retry after fixing the clash
    ids = [f["id"] for _, f in client.xrange("geo:events")]
    assert sorted(ids) == sorted({e.record["id"] for e in batch}), (
        f"{len(ids)} entries for 10 events: the failed attempt left partial writes"
    )


# -- connection failures and secrets -----------------------------------------------------


def test_unreachable_redis_raises_sink_unavailable(private_server: RedisProcess) -> None:
    private_server.stop()
    s = RedisStreamsSink(RedisOptions(url=private_server.url, socket_timeout_s=1.0), FIELDS)
    with pytest.raises(SinkUnavailable):
        s.open()
    with pytest.raises(SinkUnavailable):
        s.write(encode(make_events(1)))


def test_sink_reconnects_after_redis_restarts(private_server: RedisProcess) -> None:
    s = RedisStreamsSink(RedisOptions(url=private_server.url, socket_timeout_s=1.0), FIELDS)
    events = make_events(4)
    assert s.write(encode(events[:2])) == 2
    private_server.stop()
    with pytest.raises(SinkUnavailable):
        s.write(encode(events[2:3], first_seq=3))
    private_server.start()  # empty again: no persistence in the test server
    assert s.write(encode(events[2:], first_seq=3)) == 2  # script reloaded after NOSCRIPT
    assert rclient(private_server).xlen("geo:events") == 2
    s.close()


def _all_text(exc: BaseException) -> str:
    """Everything an exception could show: str, repr, and its cause/context chain."""
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts += [str(cur), repr(cur)]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(parts)


def assert_pipeline_failure_is_logged_without_secret(
    s: RedisStreamsSink, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Run a pipeline on a failing sink until it logs the failure; the log is clean.

    The batch lands in a spool, so the sink thread can finish when stopped instead of
    retrying in the background for the rest of the test session.
    """
    spool = DiskSpool(tmp_path / "spool")
    pipeline = Pipeline(ENCODER, s, SequenceStore(tmp_path / "seq.json", lambda p: 0), Metrics(),
                        spool=spool, batch_latency_s=0.01, retry_max_s=0.05)
    pipeline.start()
    pipeline.emitter("p")(make_events(1)[0])
    deadline = time.monotonic() + 5
    while not pipeline.last_error and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pipeline.last_error
    assert pipeline.stop(timeout_s=5)
    assert not pipeline.sink_thread_alive
    spool.close()
    assert "failing" in caplog.text
    assert SECRET not in caplog.text
    assert SECRET not in pipeline.last_error


def test_wrong_password_error_and_logs_never_show_the_password(
    private_server: RedisProcess, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    rclient(private_server).config_set("requirepass", "the-right-one")
    options = RedisOptions(url=private_server.url, password=SECRET, socket_timeout_s=1.0)
    assert SECRET not in repr(options)
    s = RedisStreamsSink(options, FIELDS)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SinkError) as info:
        s.open()
    assert isinstance(info.value, SinkRejected)
    with pytest.raises(SinkError) as info2:
        s.write(encode(make_events(1)))
    for exc in (info.value, info2.value):
        assert SECRET not in _all_text(exc)
    assert_pipeline_failure_is_logged_without_secret(s, tmp_path, caplog)


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@127.0.0.1:1/0",
        f"redis://someuser:{SECRET}@127.0.0.1:1/0",
        f"rediss://someuser:{SECRET}@127.0.0.1:1/0",
    ],
)
def test_unreachable_url_with_a_password_is_redacted_in_errors_and_logs(
    url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    options = RedisOptions(url=url, socket_timeout_s=0.5)
    assert SECRET not in options.display_url
    assert SECRET not in repr(options).replace(url, options.display_url)
    s = RedisStreamsSink(options, FIELDS)
    with pytest.raises(SinkUnavailable) as info:
        s.open()
    assert "127.0.0.1" in str(info.value)
    assert SECRET not in _all_text(info.value)
    # The pipeline logs the failure of its primary sink: that line must be clean too.
    assert_pipeline_failure_is_logged_without_secret(s, tmp_path, caplog)


def test_password_in_options_is_redacted_even_if_a_server_echoes_it(
    server: RedisProcess,
) -> None:
    # An error text that happens to contain the configured password is scrubbed.
    options = RedisOptions(url=server.url, password=SECRET)
    s = RedisStreamsSink(options, FIELDS)
    s.open()
    with pytest.raises(SinkRejected) as info:
        s._call(lambda c: c.execute_command("NOSUCHCOMMAND", SECRET))
    assert SECRET not in str(info.value)
    s.close()


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@host:6379/0",
        f"redis://user:{SECRET}@host:6379/0",
        # A raw '@' in the password: redis-py splits at the last '@', so this URL works,
        # and every part of the password must be hidden.
        "redis://user:pre@" + SECRET + "@host:6379/0",
    ],
)
def test_redact_hides_the_whole_url_password(url: str) -> None:
    shown = redact(f"cannot connect to {url}: refused")
    assert SECRET not in shown
    assert "pre@" not in shown
    assert "host:6379" in shown
