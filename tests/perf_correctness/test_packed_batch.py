"""The packed batch layout of the Redis sink keeps every guarantee (issue 8).

The sink now sends a batch as one msgpack column blob, trims each stream once per
batch with XTRIM, and checks key types with XLEN. These tests aim at what that
could break: trimming per stream kind, the all-or-nothing type check on cell and
memo keys, duplicates inside one batch, values msgpack must carry byte for byte,
memos on some entries only, and one id per event across its streams.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis_proc import RedisProcess

from daemon.encode import EntryEncoder
from daemon.event import Event, Sequenced
from daemon.s2index import S2Indexer
from sinks.base import SinkRejected
from sinks.entry import StreamEntry
from sinks.redis_connection import RedisOptions
from sinks.redis_streams import RedisStreamsSink

ENCODER = EntryEncoder(S2Indexer((6, 10, 14), 8))


def sink_for(server: RedisProcess, **kwargs: Any) -> RedisStreamsSink:
    return RedisStreamsSink(RedisOptions(url=server.url), ENCODER.field_names, **kwargs)


def events(n: int, src: str = "a", centre: tuple[float, float] = (10.0, 10.0),
           seed: int = 1, data: dict[str, Any] | None = None) -> list[Event]:
    rng = random.Random(seed)
    return [
        Event(id=f"{src}:{i}", src=src, kind="k", t=1_700_000_000_000 + i, rx=1, station="s",
              lat=centre[0] + rng.uniform(-0.05, 0.05), lon=centre[1] + rng.uniform(-0.05, 0.05),
              alt=None, data=data if data is not None else {"i": i})
        for i in range(n)
    ]


def entries(evs: list[Event], producer: str = "p", first: int = 1,
            memo_every: int = 0) -> list[StreamEntry]:
    return ENCODER.encode([
        Sequenced(producer, first + i, ev,
                  (ev.id, str(i)) if memo_every and i % memo_every == 0 else None)
        for i, ev in enumerate(evs)
    ])


def test_cell_trim_applies_to_cell_streams_only(server: RedisProcess) -> None:
    sink = sink_for(server, maxlen=0, cell_maxlen=150)
    evs = events(1200)  # one small area: a handful of cells, hundreds of entries each
    for start in range(0, 1200, 300):
        assert sink.write(entries(evs[start:start + 300], first=start + 1)) == 300
    client: Any = server.client()
    assert client.xlen("geo:events") == 1200
    assert client.xlen("geo:src:a") == 1200
    cells = list(client.scan_iter("geo:cell:*"))
    assert cells
    assert all(client.xlen(k) <= 150 + 100 for k in cells)
    assert any(client.xlen(k) >= 150 for k in cells)
    sink.close()


def test_main_trim_leaves_cell_streams_alone(server: RedisProcess) -> None:
    sink = sink_for(server, maxlen=200, cell_maxlen=0)
    evs = events(1000)
    for start in range(0, 1000, 250):
        sink.write(entries(evs[start:start + 250], first=start + 1))
    client: Any = server.client()
    assert 200 <= client.xlen("geo:events") <= 300
    assert 200 <= client.xlen("geo:src:a") <= 300
    assert sum(client.xlen(k) for k in client.scan_iter("geo:cell:*")) == 1000
    sink.close()


@pytest.mark.parametrize("clash", ["cell", "memo"])
def test_a_wrong_type_cell_or_memo_key_refuses_the_whole_batch(
    server: RedisProcess, clash: str
) -> None:
    sink = sink_for(server)
    batch = entries(events(20), memo_every=4)
    client: Any = server.client()
    key = f"geo:cell:{{{batch[-1].cell}}}" if clash == "cell" else "geo:memo:p"
    client.set(key, "in the way")
    with pytest.raises(SinkRejected, match="WRONGTYPE"):
        sink.write(batch)
    assert client.xlen("geo:events") == 0
    assert client.hgetall("geo:offsets") == {}
    client.delete(key)
    assert sink.write(batch) == 20
    sink.close()


def test_a_sequence_repeated_inside_one_batch_is_written_once(server: RedisProcess) -> None:
    sink = sink_for(server)
    first = entries(events(10))
    batch = first[:6] + first[3:]  # seqs 1..6 then 4..10 again
    assert sink.write(batch) == 10
    assert sink.last_written == [True] * 6 + [False] * 3 + [True] * 4
    client: Any = server.client()
    assert [f["id"] for _, f in client.xrange("geo:events")] == [e.record["id"] for e in first]
    sink.close()


def test_values_cross_msgpack_byte_for_byte(server: RedisProcess) -> None:
    awkward = {"s": "\x00\x1f\x7f\xc1\xd9 ümlaut ☃ 😀 \\\" \r\n", "n": 2**53, "x": 1e-300}
    batch = entries(events(5, data=awkward))
    sink = sink_for(server)
    sink.write(batch)
    client: Any = server.client()
    for (_, fields), entry in zip(client.xrange("geo:events"), batch, strict=True):
        assert tuple(fields.values()) == entry.values
    sink.close()


def test_memos_are_recorded_for_the_entries_that_carry_one(server: RedisProcess) -> None:
    sink = sink_for(server)
    evs = events(12)
    assert sink.write(entries(evs, memo_every=5)) == 12
    assert sink.memo("p") == {evs[0].id: "0", evs[5].id: "5", evs[10].id: "10"}
    sink.close()


def test_one_event_has_one_id_in_its_global_source_and_cell_streams(
    server: RedisProcess,
) -> None:
    sink = sink_for(server)
    batch = entries(events(30, "a")) + entries(events(30, "b", centre=(-40.0, 170.0)), "q")
    sink.write(batch)
    client: Any = server.client()
    ids = {f["id"]: entry_id for entry_id, f in client.xrange("geo:events")}
    for key in [*client.scan_iter("geo:src:*"), *client.scan_iter("geo:cell:*")]:
        for entry_id, f in client.xrange(key):
            assert ids[f["id"]] == entry_id, key
    sink.close()


def test_disabled_global_stream_still_shares_ids_between_source_and_cell(
    server: RedisProcess,
) -> None:
    sink = sink_for(server, global_stream=False)
    sink.write(entries(events(15)))
    client: Any = server.client()
    assert not client.exists("geo:events")
    by_src = {f["id"]: i for i, f in client.xrange("geo:src:a")}
    cell_rows = [row for k in client.scan_iter("geo:cell:*") for row in client.xrange(k)]
    assert len(cell_rows) == 15
    assert all(by_src[f["id"]] == i for i, f in cell_rows)
    sink.close()
