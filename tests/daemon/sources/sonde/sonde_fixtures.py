"""Helpers for the sonde source tests: a collecting Emit, contexts, configs, references."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import source_kit
from source_kit import Collect

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


def write_config(tmp_path: Path, redis_url: str, source_block: str) -> Path:
    """A daemon config at STATION with `source_block` (source_kit.write_config)."""
    return source_kit.write_config(tmp_path, redis_url, STATION, source_block)


def run_once(tmp_path: Path, redis_url: str, source_block: str) -> subprocess.CompletedProcess[str]:
    """`geosensord run --once` at STATION with one source (source_kit.run_once)."""
    return source_kit.run_once(tmp_path, redis_url, STATION, source_block)
