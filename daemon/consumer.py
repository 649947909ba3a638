"""Reading the streams back: a whole stream, one source, or a region.

A region (a circle) is turned into its S2 covering at `cell_stream_level`; the
per-cell streams of those cells are read and merged by entry id (time order),
and entries outside the exact circle are dropped (a covering is a superset).
This is what `geosensord tail --region` and downstream consumers use.

The client may be a single Redis or a Redis Cluster (`redis.cluster.RedisCluster`):
single-key reads are routed by the cluster client to the shard holding each cell
stream; following many streams, which XREAD can only do within one slot, polls
one XREAD per slot in a cluster pipeline (one round trip per master).
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from redis.cluster import RedisCluster

from daemon.s2index import cap_covering, distance_km
from sinks.redis_cluster import key_slot
from sinks.redis_streams import StreamKeys


@dataclass(frozen=True)
class Region:
    """A circle on the Earth: centre (WGS84 degrees) and radius (km)."""

    lat: float
    lon: float
    radius_km: float

    @classmethod
    def parse(cls, text: str) -> Region:
        """Parse ``LAT,LON,RADIUS_KM``; raises ValueError with what is wrong."""
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError(f"region {text!r} must be LAT,LON,RADIUS_KM")
        lat, lon, radius = (float(p) for p in parts)
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise ValueError(f"region centre {lat},{lon} is not a valid position")
        if radius <= 0:
            raise ValueError(f"region radius {radius} must be > 0 km")
        return cls(lat, lon, radius)

    def contains(self, lat: float, lon: float) -> bool:
        """Whether a point lies inside the circle."""
        return distance_km(self.lat, self.lon, lat, lon) <= self.radius_km


@dataclass(frozen=True)
class StreamRecord:
    """One entry read from a stream: its stream key and id, and its fields."""

    stream: str
    entry_id: str
    fields: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        """The entry with typed values (numbers, decoded data) for printing."""
        f = dict(self.fields)
        out: dict[str, Any] = {"stream": self.stream, "entry_id": self.entry_id, **f}
        for key in ("t", "rx"):
            if f.get(key):
                out[key] = int(f[key])
        for key in ("lat", "lon", "alt"):
            out[key] = float(f[key]) if f.get(key) else None
        if "data" in f:
            out["data"] = json.loads(f["data"])
        return out


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class StreamReader:
    """Reads the contract's streams from one Redis or a Redis Cluster."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        prefix: str = "geo",
        cell_stream_level: int = 8,
        poll_s: float = 0.05,
    ) -> None:
        self.client = client
        self.keys = StreamKeys(prefix)
        self.cell_stream_level = cell_stream_level
        self.poll_s = poll_s

    def region_keys(self, region: Region) -> list[str]:
        """The per-cell stream keys covering `region`."""
        tokens = cap_covering(region.lat, region.lon, region.radius_km, self.cell_stream_level)
        return [self.keys.cell(t) for t in tokens]

    def latest(self, key: str, count: int) -> list[StreamRecord]:
        """The newest `count` entries of one stream, oldest first."""
        rows: Any = self.client.xrevrange(key, count=count)
        return [StreamRecord(key, _s(i), _fields(f)) for i, f in reversed(rows)]

    def latest_region(self, region: Region, count: int, page: int = 1000) -> list[StreamRecord]:
        """The newest `count` entries inside `region` (exact circle), oldest first.

        Each cell stream is paged backwards until it yields `count` entries inside
        the circle (or ends): newer entries outside the circle must not hide older
        ones inside. `count` 0 reads everything.
        """
        inside: list[StreamRecord] = []
        for key in self.region_keys(region):
            found = 0
            upper = "+"
            while True:
                rows: Any = self.client.xrevrange(key, max=upper, count=page)
                for entry_id, fields in rows:
                    rec = StreamRecord(key, _s(entry_id), _fields(fields))
                    if region.contains(float(rec.fields["lat"]), float(rec.fields["lon"])):
                        inside.append(rec)
                        found += 1
                if len(rows) < page or (count and found >= count):
                    break
                upper = "(" + _s(rows[-1][0])
        inside.sort(key=lambda r: _id_key(r.entry_id))
        return inside[-count:] if count else inside

    def follow(
        self, keys: list[str], block_ms: int = 5000, region: Region | None = None
    ) -> Iterator[StreamRecord]:
        """New entries on `keys` as they arrive (XREAD BLOCK), merged in id order."""
        if isinstance(self.client, RedisCluster):
            yield from self._follow_cluster(keys, region)
            return
        last = dict.fromkeys(keys, "$")
        while True:
            reply: Any = self.client.xread(last, block=block_ms)  # type: ignore[arg-type]
            yield from _merged(reply, last, region)

    def _follow_cluster(self, keys: list[str], region: Region | None) -> Iterator[StreamRecord]:
        """`follow` on a cluster: every `poll_s`, one XREAD per slot, pipelined."""
        client: Any = self.client
        by_slot: dict[int, list[str]] = {}
        for key in keys:
            by_slot.setdefault(key_slot(key), []).append(key)
        # "$" is only meaningful to a blocking XREAD: start after each stream's last id.
        pipe = client.pipeline()
        for key in keys:
            pipe.xrevrange(key, count=1)
        last = {
            key: _s(rows[0][0]) if rows else "0-0"
            for key, rows in zip(keys, pipe.execute(), strict=True)
        }
        while True:
            pipe = client.pipeline()
            for slot, slot_keys in by_slot.items():
                pipe.execute_command(
                    "XREAD", "COUNT", 1000, "STREAMS", *slot_keys,
                    *(last[k] for k in slot_keys),
                    target_nodes=client.nodes_manager.get_node_from_slot(slot),
                )
            reply = [row for rows in pipe.execute() if rows for row in rows]
            if not reply:
                time.sleep(self.poll_s)
                continue
            yield from _merged(reply, last, region)


def _merged(
    reply: Any, last: dict[str, str], region: Region | None
) -> Iterator[StreamRecord]:
    """The entries of an XREAD reply in id order (inside `region`); advances `last`."""
    batch: list[tuple[tuple[int, int], StreamRecord]] = []
    for key, rows in reply or []:
        skey = _s(key)
        for entry_id, fields in rows:
            rec = StreamRecord(skey, _s(entry_id), _fields(fields))
            last[skey] = rec.entry_id
            batch.append((_id_key(rec.entry_id), rec))
    for _, rec in heapq.nsmallest(len(batch), batch, key=lambda p: p[0]):
        if region is None or region.contains(float(rec.fields["lat"]), float(rec.fields["lon"])):
            yield rec


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}
