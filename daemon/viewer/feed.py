"""Reading the streams for the browser: backfill, then live, for all or for a region.

A subscription is the set of stream keys to read and the shape that filters them:
no region reads ``<prefix>:events``; a region reads the per-cell streams of its S2
covering at `cell_stream_level` (or, when the covering is too large, the global
stream) and drops entries outside the exact shape.

The sink gives one event the same entry id in every stream it is written to, so a
single cursor (an entry id) positions every key of a subscription: backfill
returns the newest entries after `since`, and live reading continues from the
newest id seen with one XREAD over all keys. That id is the SSE event id, so a
reconnecting browser resumes exactly where it stopped.

An event for the browser (JSON)::

    {"eid": "1795672915404-1", "id": "adsb:4d2023:…", "src": "adsb",
     "kind": "aircraft.position", "t": 1795672914828, "lat": 37.11, "lon": 13.78,
     "alt": 7025.6, "cell": "131064", "data": {…}}

`cell` is the token of the entry's cell at `cell_stream_level` (from its leaf `s2`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from daemon.viewer.cluster import StreamsClient
from daemon.viewer.regions import Region, cell_token_at, cell_vertices, estimated_cells
from sinks.redis_streams import StreamKeys

ViewEvent = dict[str, Any]


@dataclass(frozen=True)
class Subscription:
    """What one browser connection reads: keys, the exact shape, and how it was covered."""

    keys: tuple[str, ...]
    region: Region | None = None
    cells: tuple[str, ...] = ()
    via: str = "events"  # "events" (global stream) or "cells" (per-cell streams)

    def accepts(self, lat: float, lon: float) -> bool:
        """Whether an entry at (lat, lon) belongs to this subscription."""
        return self.region is None or self.region.contains(lat, lon)

    def describe(self, with_vertices: bool = True) -> dict[str, Any]:
        """The subscription for the browser, with the covering cells' true corners."""
        out: dict[str, Any] = {
            "region": self.region.as_json() if self.region else None,
            "via": self.via,
            "n_keys": len(self.keys),
            "cells": list(self.cells),
        }
        if with_vertices:
            out["vertices"] = {t: cell_vertices(t) for t in self.cells}
        return out


def entry_id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable (ms, seq) pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class StreamFeed:
    """Builds subscriptions and reads them from one Redis (asyncio client)."""

    client: StreamsClient
    prefix: str = "geo"
    cell_stream_level: int = 8
    max_cells: int = 1000
    global_stream: bool = True
    keys: StreamKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = StreamKeys(self.prefix)

    def subscribe(self, region: Region | None) -> Subscription:
        """The keys to read for `region` (None = everything)."""
        if region is None:
            return Subscription((self.keys.events,))
        level = self.cell_stream_level
        if estimated_cells(region, level) <= self.max_cells:
            cells = tuple(region.covering(level))
            if len(cells) <= self.max_cells:
                return Subscription(tuple(self.keys.cell(t) for t in cells), region, cells, "cells")
        if not self.global_stream:
            raise ValueError(
                f"region needs more than {self.max_cells} cell streams and the global "
                "stream is disabled; draw a smaller region"
            )
        return Subscription((self.keys.events,), region)

    async def server_time_ms(self) -> int:
        """Redis's clock (entry ids come from it), epoch ms."""
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def backfill(
        self, sub: Subscription, since_ms: int, limit: int
    ) -> tuple[list[ViewEvent], str]:
        """The newest `limit` accepted entries with ids after `since_ms`, oldest first,
        and the cursor to continue from (the newest id read, else ``since_ms-0``)."""
        pipe = self.client.pipeline(transaction=False)
        for key in sub.keys:
            pipe.xrevrange(key, max="+", min=f"({since_ms}-0", count=limit)
        replies: list[Any] = await pipe.execute()
        events, cursor = self._merge(sub, zip(sub.keys, replies, strict=True), f"{since_ms}-0")
        return events[-limit:] if limit else [], cursor

    async def read_new(
        self, sub: Subscription, cursor: str, block_ms: int, count: int = 1000
    ) -> tuple[list[ViewEvent], str]:
        """Entries after `cursor` on every key (XREAD BLOCK), merged in id order; new cursor."""
        reply: Any = await self.client.xread(
            dict.fromkeys(sub.keys, cursor), count=count, block=block_ms
        )
        return self._merge(sub, ((_s(key), entries) for key, entries in reply or []), cursor)

    def _merge(
        self, sub: Subscription, replies: Iterable[tuple[str, list[Any]]], cursor: str
    ) -> tuple[list[ViewEvent], str]:
        """The accepted events of per-key stream replies ((key, [(id, fields)…])…), in
        id order, and the newest id read (`cursor` when none is newer)."""
        rows: list[tuple[tuple[int, int], ViewEvent]] = []
        newest = cursor
        for key, entries in replies:
            for raw_id, fields in entries:
                entry_id = _s(raw_id)
                if entry_id_key(entry_id) > entry_id_key(newest):
                    newest = entry_id
                event = self._accept(sub, key, entry_id, fields)
                if event is not None:
                    rows.append((entry_id_key(entry_id), event))
        rows.sort(key=lambda r: r[0])
        return [e for _, e in rows], newest

    def _accept(
        self, sub: Subscription, key: str, entry_id: str, raw: dict[Any, Any]
    ) -> ViewEvent | None:
        fields = {_s(k): _s(v) for k, v in raw.items()}
        try:
            event = view_event(entry_id, fields, self.cell_stream_level)
        except (KeyError, ValueError):
            return None  # not a contract entry (another writer's stream): skip it
        if not sub.accepts(event["lat"], event["lon"]):
            return None
        return event


def view_event(entry_id: str, fields: dict[str, str], cell_stream_level: int) -> ViewEvent:
    """A stream entry (flat string fields, design §2) as the browser's event JSON."""
    alt = fields.get("alt", "")
    data_text = fields.get("data", "")
    return {
        "eid": entry_id,
        "id": fields["id"],
        "src": fields["src"],
        "kind": fields["kind"],
        "t": int(fields["t"]),
        "lat": float(fields["lat"]),
        "lon": float(fields["lon"]),
        "alt": float(alt) if alt else None,
        "cell": cell_token_at(fields["s2"], cell_stream_level),
        "data": json.loads(data_text) if data_text else {},
    }


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
