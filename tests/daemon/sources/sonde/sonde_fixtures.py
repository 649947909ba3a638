"""Helpers for the sonde source tests: a collecting Emit, contexts, configs, references."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis

from daemon.config import Field
from daemon.event import Event
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station

REPO = Path(__file__).resolve().parents[4]
RS41_DIR = REPO / "recordings" / "rs41"
WAV = RS41_DIR / "rs41pre_20150802.wav"
REFERENCE_JSONL = RS41_DIR / "rs41pre_20150802.rs41mod.jsonl"
STATION = Station("poa", -30.03, -51.23)
GPS_MINUS_UTC_2015 = timedelta(seconds=17)


def reference() -> list[dict[str, Any]]:
    """rs41mod's JSON for the bundled wav, one dict per frame (GPS-scale datetimes)."""
    return [json.loads(line) for line in REFERENCE_JSONL.read_text().splitlines()]


def reference_utc_ms(ref: dict[str, Any]) -> int:
    """A reference frame's time in UTC epoch ms (GPS time minus the 17 s of 2015)."""
    gps = datetime.fromisoformat(ref["datetime"].replace("Z", "+00:00")).astimezone(UTC)
    return round((gps - GPS_MINUS_UTC_2015).timestamp() * 1000)


class Collect:
    """An Emit that keeps what it was given (event, seq, memo, producer)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, event: Event, *, seq: int | None = None,
                 memo: tuple[str, str] | None = None, producer: str | None = None) -> None:
        with self.lock:
            self.events.append(event)
            self.calls.append({"seq": seq, "memo": memo, "producer": producer})


@dataclass
class MemoStore:
    """The memo hashes a Redis sink would keep, fed from what a Collect saw."""

    hashes: dict[str, dict[str, str]] = field(default_factory=dict)

    def __call__(self, producer: str) -> dict[str, str]:
        return dict(self.hashes.get(producer, {}))

    def record(self, producer: str, collect: Collect) -> None:
        for call in collect.calls:
            if call["memo"] is not None:
                key, value = call["memo"]
                self.hashes.setdefault(call["producer"] or producer, {})[key] = value


def make_ctx(tmp_path: Path, memo: MemoStore | None = None) -> SourceContext:
    return SourceContext(station=STATION, metrics=Metrics(), state_dir=tmp_path / "state",
                         config_dir=tmp_path, memo=memo or MemoStore())


def make_cfg(fields: dict[str, Field], type_name: str, **overrides: Any) -> dict[str, Any]:
    cfg = {k: (list(f.default) if isinstance(f.default, list) else f.default)
           for k, f in fields.items()}
    cfg.update(type=type_name, **overrides)
    return cfg


def write_config(tmp_path: Path, redis_url: str, source_block: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(textwrap.dedent(f"""\
        [station]
        id = "{STATION.id}"
        lat = {STATION.lat}
        lon = {STATION.lon}

        [redis]
        url = "{redis_url}"

        [state]
        dir = "{tmp_path / 'state'}"

        [http]
        listen = ""

        """) + textwrap.dedent(source_block))
    return config


def run_once(tmp_path: Path, redis_url: str, source_block: str) -> subprocess.CompletedProcess[str]:
    """`geosensord run --once` with one source, publishing into `redis_url`."""
    config = write_config(tmp_path, redis_url, source_block)
    return subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--once", "--config", str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def stream_events(redis_url: str, key: str = "geo:events") -> list[dict[str, str]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = cast(list[tuple[str, dict[str, str]]], client.xrange(key))
        return [fields for _, fields in entries]
    finally:
        client.close()
