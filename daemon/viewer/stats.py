"""Side-panel statistics: per-source rates, receiver statistics, range outlines.

Derived from the streams: a background task reads each source stream
(``<prefix>:src:<name>``, or the global stream when per-source streams are off)
from `since` onwards, then follows it, and feeds every entry to a `StatsBook`.
Rates count entries by their stream id time (when Redis received them), in 10 s
buckets over the last hour. When the daemon's ``[http] listen`` endpoint is
configured, its Prometheus ``/metrics`` are scraped as well and shown beside
them (`parse_prometheus`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from daemon.viewer.cluster import StreamsClient
from daemon.viewer.feed import entry_id_key
from daemon.viewer.rangeplot import RangeOutline

log = logging.getLogger(__name__)

BUCKET_MS = 10_000
HISTORY_MS = 3_600_000
AIRCRAFT_LIVE_MS = 60_000


@dataclass
class SourceStats:
    """Counts of one source: total, per kind, and per 10 s bucket of arrival time."""

    total: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    buckets: deque[list[int]] = field(default_factory=deque)  # [bucket_start_ms, count]
    last_t_ms: int = 0
    last_entry_ms: int = 0

    def add(self, entry_ms: int, kind: str, t_ms: int) -> None:
        """Count one entry (stream id time and event time in epoch ms)."""
        self.total += 1
        self.kinds[kind] += 1
        self.last_t_ms = max(self.last_t_ms, t_ms)
        self.last_entry_ms = max(self.last_entry_ms, entry_ms)
        start = entry_ms - entry_ms % BUCKET_MS
        if self.buckets and self.buckets[-1][0] == start:
            self.buckets[-1][1] += 1
        elif not self.buckets or self.buckets[-1][0] < start:
            self.buckets.append([start, 1])
        else:  # an older bucket (merged streams arrive slightly out of order)
            for bucket in reversed(self.buckets):
                if bucket[0] == start:
                    bucket[1] += 1
                    break
        while self.buckets and self.buckets[0][0] < entry_ms - HISTORY_MS:
            self.buckets.popleft()

    def rate_per_min(self, now_ms: int, window_ms: int) -> float:
        """Entries per minute over the last `window_ms` (whole buckets)."""
        cut = now_ms - window_ms
        n = sum(c for start, c in self.buckets if start >= cut - cut % BUCKET_MS)
        return n * 60_000.0 / window_ms

    def history(self, now_ms: int) -> list[int]:
        """Counts per minute over the last hour, oldest first (60 values)."""
        counts = [0] * 60
        for start, c in self.buckets:
            age_min = (now_ms - start) // 60_000
            if 0 <= age_min < 60:
                counts[59 - int(age_min)] += c
        return counts


@dataclass
class ReceiverStats:
    """An ADS-B receiver: live aircraft, signal, and its range outline."""

    outline: RangeOutline
    last_seen_ms: dict[str, int] = field(default_factory=dict)  # icao -> event time
    rssi_db: deque[float] = field(default_factory=lambda: deque(maxlen=200))
    positions: int = 0

    def add(self, kind: str, lat: float, lon: float, t_ms: int, data: dict[str, Any]) -> None:
        """Account one aircraft event."""
        icao = data.get("icao")
        if isinstance(icao, str):
            self.last_seen_ms[icao] = max(self.last_seen_ms.get(icao, 0), t_ms)
        if kind != "aircraft.position":
            return
        self.positions += 1
        self.outline.add(lat, lon, t_ms)
        rssi = data.get("rssi_db")
        if isinstance(rssi, int | float) and math.isfinite(rssi):
            self.rssi_db.append(float(rssi))

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """Receiver statistics for the side panel."""
        latest = max(self.last_seen_ms.values(), default=0)
        # A recording replayed with its own clock is judged by its newest event, not ours.
        ref_ms = now_ms if latest <= now_ms else latest
        live = sum(1 for t in self.last_seen_ms.values() if ref_ms - t <= AIRCRAFT_LIVE_MS)
        rng = self.outline.snapshot(now_ms)
        return {
            "receiver": rng["receiver"],
            "aircraft_live": live,
            "aircraft_seen": len(self.last_seen_ms),
            "positions": self.positions,
            "rssi_db_mean": (sum(self.rssi_db) / len(self.rssi_db)) if self.rssi_db else None,
            "max_range_24h_km": rng["max_24h_km"],
            "max_range_all_km": rng["max_all_km"],
        }


class StatsBook:
    """Everything the side panel and the range plot show, fed entry by entry."""

    def __init__(self, receivers: dict[str, tuple[float, float]], state_dir: Path | None) -> None:
        self.sources: dict[str, SourceStats] = {}
        self.receivers = {
            name: ReceiverStats(RangeOutline(lat, lon)) for name, (lat, lon) in receivers.items()
        }
        self.state_dir = state_dir
        self.cursor = "0-0"
        for name, rx in self.receivers.items():
            path = self._range_path(name)
            if path is not None:
                rx.outline.load(path)

    def _range_path(self, name: str) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"range_{name}.json"

    def ingest(self, entry_id: str, fields: dict[str, str]) -> None:
        """Account one stream entry (flat string fields)."""
        src, kind = fields.get("src", "?"), fields.get("kind", "?")
        try:
            t_ms = int(fields["t"])
        except (KeyError, ValueError):
            return
        entry_ms = entry_id_key(entry_id)[0]
        self.sources.setdefault(src, SourceStats()).add(entry_ms, kind, t_ms)
        rx = self.receivers.get(src)
        if rx is not None and kind.startswith("aircraft."):
            try:
                lat, lon = float(fields["lat"]), float(fields["lon"])
                data = json.loads(fields.get("data") or "{}")
            except (KeyError, ValueError):
                return
            rx.add(kind, lat, lon, t_ms, data if isinstance(data, dict) else {})

    def save(self) -> None:
        """Persist the all-time range outlines."""
        for name, rx in self.receivers.items():
            path = self._range_path(name)
            if path is not None:
                try:
                    rx.outline.save(path)
                except OSError as exc:
                    log.warning("cannot save range outline %s: %s", path, exc)

    def snapshot(self, now_ms: int) -> dict[str, Any]:
        """Rates per source and receiver statistics."""
        return {
            "now_ms": now_ms,
            "sources": {
                name: {
                    "total": s.total,
                    "kinds": dict(s.kinds),
                    "rate_1m": s.rate_per_min(now_ms, 60_000),
                    "rate_15m": s.rate_per_min(now_ms, 900_000),
                    "history_per_min": s.history(now_ms),
                    "last_t_ms": s.last_t_ms,
                    "last_entry_ms": s.last_entry_ms,
                }
                for name, s in sorted(self.sources.items())
            },
            "receivers": {name: rx.snapshot(now_ms) for name, rx in self.receivers.items()},
        }


async def follow_stats(
    client: StreamsClient,
    book: StatsBook,
    since_ms: dict[str, int],
    block_ms: int = 2000,
    chunk: int = 5000,
    discover: Callable[[], Awaitable[dict[str, int]]] | None = None,
    discover_every_s: float = 10.0,
) -> None:
    """Feed `book` with every entry of each key after its `since_ms`, then follow them.

    `discover` (called every `discover_every_s`) returns keys to read as well, with
    their `since_ms`: streams of sources that appeared after the start. Connection
    errors are logged and retried; cancel the task to stop it.
    """
    cursors = {key: f"{ms}-0" for key, ms in since_ms.items()}
    next_discovery = time.monotonic() + discover_every_s
    while True:
        if discover is not None and time.monotonic() >= next_discovery:
            next_discovery = time.monotonic() + discover_every_s
            for key, ms in (await discover()).items():
                cursors.setdefault(key, f"{ms}-0")
        if not cursors:
            await asyncio.sleep(min(discover_every_s, block_ms / 1000.0))
            continue
        try:
            reply: Any = await client.xread(cursors, count=chunk, block=block_ms)  # type: ignore[arg-type]
        except (aioredis.RedisError, OSError) as exc:
            log.warning("stats: reading the streams failed: %s", exc)
            await asyncio.sleep(2.0)
            continue
        for raw_key, entries in reply or []:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            for raw_id, raw in entries:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                fields = {_s(k): _s(v) for k, v in raw.items()}
                book.ingest(entry_id, fields)
                cursors[key] = entry_id
            book.cursor = max(book.cursor, cursors[key], key=entry_id_key)
        # Give the event loop to the browsers while a large history is being read.
        await asyncio.sleep(0)


def parse_prometheus(text: str) -> dict[str, Any]:
    """Prometheus text into ``{"by_source": {src: {metric: value}}, "global": {metric: value}}``.

    The namespace prefix (``geosensord_``) is dropped; series of one metric that differ
    only in labels other than `source` are summed (e.g. ``adsb_messages_total{df}``).
    """
    by_source: dict[str, dict[str, float]] = {}
    global_: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value_text = line.rpartition(" ")
        try:
            value = float(value_text)
        except ValueError:
            continue
        name, _, label_text = head.partition("{")
        name = name.removeprefix("geosensord_")
        labels = _parse_labels(label_text.rstrip("}"))
        target = by_source.setdefault(labels["source"], {}) if "source" in labels else global_
        target[name] = target.get(name, 0.0) + value
    return {"by_source": by_source, "global": global_}


def _parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i = 0
    while i < len(text):
        eq = text.find("=", i)
        if eq < 0 or eq + 1 >= len(text) or text[eq + 1] != '"':
            break
        name = text[i:eq].strip().lstrip(",").strip()
        j, value = eq + 2, []
        while j < len(text) and text[j] != '"':
            if text[j] == "\\" and j + 1 < len(text):
                j += 1
                value.append({"n": "\n"}.get(text[j], text[j]))
            else:
                value.append(text[j])
            j += 1
        labels[name] = "".join(value)
        i = j + 1
    return labels


def scrape_metrics(url: str, timeout_s: float = 2.0) -> dict[str, Any]:
    """GET the daemon's /metrics and parse it (blocking; run it in a thread)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return parse_prometheus(resp.read().decode("utf-8", "replace"))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
