"""The cluster sink against a real 3-master/3-replica Redis Cluster (issue 10).

It must write what the single-Redis sink writes (same streams, same fields, one entry
id per event across its streams), spread the per-cell streams over every master, and
stay exactly-once when a batch is written again after some of its slot groups failed.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest
from cluster_proc import LocalCluster
from redis_proc import RedisProcess

from daemon.consumer import Region, StreamReader
from daemon.encode import EntryEncoder
from daemon.event import Event, Sequenced
from daemon.s2index import S2Indexer
from sinks.base import SinkError, SinkRejected
from sinks.entry import StreamEntry
from sinks.redis_cluster import ClusterStreamsSink, key_slot, slot_tag
from sinks.redis_connection import RedisOptions
from sinks.redis_streams import RedisStreamsSink

ENCODER = EntryEncoder(S2Indexer((6, 10, 14), 8))


def world_events(n: int, src: str = "a", station: str = "s", seed: int = 1,
                 first: int = 0) -> list[Event]:
    """`n` events spread over the whole globe (one per cell, mostly)."""
    rng = random.Random(seed)
    return [
        Event(id=f"{src}:{i}", src=src, kind="k", t=1_700_000_000_000 + i, rx=1,
              station=station, lat=rng.uniform(-85, 85), lon=rng.uniform(-180, 180),
              alt=None, data={"i": i})
        for i in range(first, first + n)
    ]


def encode(events: list[Event], producer: str, first_seq: int = 1,
           memo_every: int = 0) -> list[StreamEntry]:
    return ENCODER.encode([
        Sequenced(producer, first_seq + i, ev,
                  (ev.id, str(i)) if memo_every and i % memo_every == 0 else None)
        for i, ev in enumerate(events)
    ])


def cluster_sink(cluster: LocalCluster, **kwargs: Any) -> ClusterStreamsSink:
    sink = ClusterStreamsSink(RedisOptions(url=cluster.url), ENCODER.field_names, **kwargs)
    sink.open()
    return sink


def stream_keys(client: Any) -> list[str]:
    return sorted(k.decode() if isinstance(k, bytes) else k
                  for k in client.scan_iter(match="geo:*", _type="stream"))


def fields_of(client: Any, key: str) -> list[dict[bytes, bytes]]:
    return [f for _, f in client.xrange(key)]


def test_slot_tags_hash_to_their_slot() -> None:
    for slot in (0, 1, 777, 8191, 16383):
        assert key_slot(f"geo:offsets:{{{slot_tag(slot)}}}") == slot
    assert key_slot("geo:cell:{89c25}") == key_slot("x{89c25}y")


def test_cluster_writes_the_entries_a_single_redis_writes(
    cluster: LocalCluster, redis_server: RedisProcess
) -> None:
    batch = encode(world_events(300), "s:a", memo_every=7)
    single = RedisStreamsSink(RedisOptions(url=redis_server.url), ENCODER.field_names)
    sink = cluster_sink(cluster)
    assert single.write(batch) == sink.write(batch) == 300
    c: Any = sink.cluster
    one = single.client
    keys = stream_keys(c)
    assert keys == stream_keys(one)
    for key in keys:
        assert fields_of(c, key) == fields_of(one, key), key
    assert sink.memo("s:a") == single.memo("s:a") != {}
    assert sink.committed_offset("s:a") == single.committed_offset("s:a") == 300
    # One entry id per event in all its streams, as with one Redis.
    ids = {f[b"id"]: entry_id for entry_id, f in c.xrange("geo:events")}
    for key in keys:
        for entry_id, f in c.xrange(key):
            assert ids[f[b"id"]] == entry_id
    # The per-cell streams spread over all three masters.
    per_master = Counter(
        cluster.master_of_slot(key_slot(k)) for k in keys if k.startswith("geo:cell:")
    )
    assert len(per_master) == 3, per_master
    assert max(per_master.values()) < 0.5 * sum(per_master.values())


@pytest.mark.parametrize("global_stream", [True, False])
def test_replay_after_a_partial_failure_writes_each_event_once(
    cluster: LocalCluster, global_stream: bool
) -> None:
    sink = cluster_sink(cluster, global_stream=global_stream)
    events = world_events(200)
    first, second = encode(events[:100], "s:a"), encode(events[100:], "s:a", first_seq=101)
    # A hash where one batch's cell stream must go makes that slot group fail (and
    # only it: the script checks key types before writing anything).
    blocked = sink.keys.cell(first[40].cell)
    c: Any = sink.cluster
    c.hset(blocked, "x", "1")
    with pytest.raises(SinkRejected):
        sink.write(first)
    written_before = sum(c.xlen(k) for k in stream_keys(c) if k.startswith("geo:cell:"))
    assert 0 < written_before < 100
    c.delete(blocked)
    # The pipeline replays the spooled batch, then the next one, then a retry of both.
    assert sink.write(first) == 100  # the entries written by the failed try count too
    assert sink.write(second) == 100
    assert sink.write(first) == 0
    assert sink.write(second) == 0
    expected = sorted(e.id for e in events)
    cells = [f[b"id"].decode() for k in stream_keys(c) if k.startswith("geo:cell:")
             for f in fields_of(c, k)]
    assert sorted(cells) == expected
    lead = "geo:events" if global_stream else "geo:src:a"
    lead_ids = [f[b"id"].decode() for f in fields_of(c, lead)]
    assert lead_ids == [e.id for e in events]  # once each, in producer order
    # The cell entries of the batch that failed half-way carry the ids of the lead
    # stream too (the sink kept them for the replay).
    by_id = {f[b"id"]: entry_id for entry_id, f in c.xrange(lead)}
    for key in stream_keys(c):
        for entry_id, f in c.xrange(key):
            assert by_id[f[b"id"]] == entry_id


def test_producers_split_over_many_slots_keep_their_sequences_apart(
    cluster: LocalCluster,
) -> None:
    """Two stations' producers interleave in the same slots; neither's offsets hide
    the other's events, and an old replay of either writes nothing."""
    sink = cluster_sink(cluster, global_stream=False)
    a = encode(world_events(150, src="r", station="a", seed=3), "a:r")
    b = encode(world_events(150, src="r", station="b", seed=3, first=1000), "b:r")
    assert sink.write(a[:100]) == 100
    assert sink.write(b) == 150
    assert sink.write(a) == 50
    assert sink.write(a) == sink.write(b) == 0
    assert sink.committed_offset("a:r") == sink.committed_offset("b:r") == 150
    got = Counter(f[b"id"] for f in fields_of(sink.cluster, "geo:src:r"))
    assert len(got) == 300 and set(got.values()) == {1}


def test_two_stations_publish_concurrently_without_interfering(cluster: LocalCluster) -> None:
    n = 3000
    errors: list[BaseException] = []

    def station(name: str, first: int) -> None:
        try:
            sink = cluster_sink(cluster)
            events = world_events(n, src="replay", station=name, seed=7, first=first)
            for start in range(0, n, 250):
                batch = encode(events[start : start + 250], f"{name}:replay",
                               first_seq=start + 1)
                sink.write(batch)
                sink.write(batch[:50])  # a client retry
            sink.close()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=station, args=(s, i * 100_000))
               for i, s in enumerate(("a", "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    c = cluster_sink(cluster).cluster
    glob = fields_of(c, "geo:events")
    assert len(glob) == 2 * n
    for name in ("a", "b"):
        ids = [f[b"id"] for f in glob if f[b"station"] == name.encode()]
        assert len(ids) == len(set(ids)) == n
        # In publish order within the station (ids are replay:<i>, i increasing).
        assert [int(i.split(b":")[1]) for i in ids] == sorted(int(i.split(b":")[1]) for i in ids)
    cells = Counter(f[b"id"] for k in stream_keys(c) if k.startswith("geo:cell:")
                    for f in fields_of(c, k))
    assert len(cells) == 2 * n and set(cells.values()) == {1}


def test_tail_region_reads_every_shard_and_matches_brute_force(cluster: LocalCluster) -> None:
    rng = random.Random(5)
    # Dense around a point so the region's covering spans many cells (and slots).
    events = [
        Event(id=f"z:{i}", src="z", kind="k", t=1_700_000_000_000 + i, rx=1, station="s",
              lat=47.0 + rng.uniform(-3, 3), lon=8.0 + rng.uniform(-4, 4), alt=None,
              data={})
        for i in range(2000)
    ]
    sink = cluster_sink(cluster)
    assert sink.write(encode(events, "s:z")) == 2000
    region = Region(47.0, 8.0, 150.0)
    reader = StreamReader(sink.cluster, "geo", 8)
    keys = reader.region_keys(region)
    masters = {cluster.master_of_slot(key_slot(k)) for k in keys}
    assert len(masters) >= 2, "the region's cells must span shards for this test to mean much"
    got = [r.fields["id"] for r in reader.latest_region(region, 0)]
    expected = [e.id for e in events if region.contains(e.lat, e.lon)]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(expected)
    assert got == [i for i in (e.id for e in events) if i in set(got)]  # time order
    assert [r.fields["id"] for r in reader.latest_region(region, 10)] == got[-10:]


def test_follow_region_sees_new_entries_from_every_shard(cluster: LocalCluster) -> None:
    sink = cluster_sink(cluster)
    region = Region(47.0, 8.0, 300.0)
    reader = StreamReader(sink.cluster, "geo", 8)
    keys = reader.region_keys(region)
    rng = random.Random(9)
    events = [
        Event(id=f"f:{i}", src="f", kind="k", t=1_700_000_000_000 + i, rx=1, station="s",
              lat=47.0 + rng.uniform(-2, 2), lon=8.0 + rng.uniform(-2.5, 2.5), alt=None,
              data={})
        for i in range(200)
    ]
    seen: list[str] = []
    follower = reader.follow(keys, block_ms=200, region=region)

    def consume() -> None:
        for rec in follower:
            seen.append(rec.fields["id"])
            if len(seen) >= len(expected):
                return

    expected = [e.id for e in events if region.contains(e.lat, e.lon)]
    t = threading.Thread(target=consume, daemon=True)
    t.start()
    threading.Event().wait(0.5)  # the follower has taken its "$" positions
    sink.write(encode(events, "s:f"))
    t.join(20)
    assert sorted(seen) == sorted(expected)


def test_cluster_down_is_a_sink_error_not_a_crash(tmp_path: Any) -> None:
    sink = ClusterStreamsSink(RedisOptions(url="redis+cluster://127.0.0.1:1"),
                              ENCODER.field_names)
    with pytest.raises(SinkError):
        sink.open()
    with pytest.raises(SinkError):
        sink.write(encode(world_events(3), "s:a"))


def test_bench_cluster_spreads_world_wide_cells_over_every_master(cluster: LocalCluster) -> None:
    from daemon.commands.bench_cluster import bench_cluster

    result = bench_cluster(8, 600, 200, cluster.url)
    assert len(result.shards) == 3
    assert all(s.cell_keys > 0 for s in result.shards)
    assert result.max_cell_key_share < 0.5
    # Every event reached its cell stream and its source stream (no global stream).
    assert sum(s.entries for s in result.shards) == 2 * 8 * 600
    assert "largest share" in result.report()
    # The bench's keys are gone afterwards.
    c: Any = cluster_sink(cluster).cluster
    assert not list(c.scan_iter(match="benchcluster*"))


def test_viewer_feed_reads_a_region_from_every_shard(cluster: LocalCluster) -> None:
    import asyncio

    from daemon.viewer.app import async_client
    from daemon.viewer.feed import StreamFeed
    from daemon.viewer.regions import parse_region

    rng = random.Random(11)
    events = [
        Event(id=f"v:{i}", src="v", kind="k", t=1_700_000_000_000 + i, rx=1, station="s",
              lat=47.0 + rng.uniform(-2, 2), lon=8.0 + rng.uniform(-3, 3), alt=None, data={})
        for i in range(600)
    ]
    sink = cluster_sink(cluster)
    sink.write(encode(events[:400], "s:v"))
    region = Region(47.0, 8.0, 120.0)
    inside = {e.id for e in events if region.contains(e.lat, e.lon)}

    async def read() -> tuple[list[str], list[str], int]:
        client = async_client(RedisOptions(url=cluster.url))
        feed = StreamFeed(client, "geo", 8)
        sub = feed.subscribe(parse_region(f"circle:{region.lat},{region.lon},{region.radius_km}"))
        old, cursor = await feed.backfill(sub, 0, 10_000)
        await asyncio.to_thread(sink.write, encode(events[400:], "s:v", first_seq=401))
        new, _ = await feed.read_new(sub, cursor, block_ms=1000)
        await client.aclose()
        return [e["id"] for e in old], [e["id"] for e in new], len(sub.keys)

    old, new, n_keys = asyncio.run(read())
    assert len({cluster.master_of_slot(key_slot(k)) for k in
                StreamReader(sink.cluster, "geo", 8).region_keys(region)}) >= 2
    assert n_keys > 1
    assert sorted(old) == sorted(i for i in inside if int(i[2:]) < 400)
    assert sorted(new) == sorted(i for i in inside if int(i[2:]) >= 400)
