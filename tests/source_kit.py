"""What the source tests share: an Emit that records, a source config from its FIELDS
defaults, `geosensord run --once` with one source, and reading a stream back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import redis

from daemon.config import Field
from daemon.event import Event
from daemon.sources.base import Station

REPO = Path(__file__).resolve().parents[1]


class Collect:
    """An Emit that keeps what it was given: the events and, per call, its seq, memo and
    producer (thread-safe: sources may emit from their own threads)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.seqs: list[int | None] = []
        self.memos: list[tuple[str, str] | None] = []
        self.producers: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event, *, seq: int | None = None,
                 memo: tuple[str, str] | None = None, producer: str | None = None) -> None:
        assert isinstance(event, Event)
        with self.lock:
            self.events.append(event)
            self.seqs.append(seq)
            self.memos.append(memo)
            self.producers.append(producer)

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The keyword arguments of each call: seq, memo, producer."""
        with self.lock:
            return [{"seq": s, "memo": m, "producer": p}
                    for s, m, p in zip(self.seqs, self.memos, self.producers, strict=True)]


def make_cfg(fields: Mapping[str, Field], type_name: str, **overrides: Any) -> dict[str, Any]:
    """A source table: every key at its default (lists copied), `type`, then `overrides`."""
    cfg = {k: (list(f.default) if isinstance(f.default, list) else f.default)
           for k, f in fields.items()}
    cfg.update(type=type_name, **overrides)
    return cfg


def write_config(tmp_path: Path, redis_url: str, station: Station, source_block: str) -> Path:
    """A daemon config at `station` publishing into `redis_url`, with `source_block`."""
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [station]
        id = "{station.id}"
        lat = {station.lat}
        lon = {station.lon}

        [redis]
        url = "{redis_url}"

        [state]
        dir = "{tmp_path / 'state'}"

        [http]
        listen = ""

        """) + textwrap.dedent(source_block))
    return config


def run_once(tmp_path: Path, redis_url: str, station: Station,
             source_block: str) -> subprocess.CompletedProcess[str]:
    """`geosensord run --once` with one source, publishing into `redis_url`."""
    config = write_config(tmp_path, redis_url, station, source_block)
    return subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--once", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def stream_events(redis_url: str, key: str = "geo:events") -> list[dict[str, str]]:
    """The fields of every entry of stream `key`, in stream order."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange(key))
        return [fields for _, fields in entries]
    finally:
        client.close()
