"""Config schema and construction of the optional `[sinks.<name>]` outputs.

The Redis Streams sink is always the primary output (configured by `[redis]` and
`[streams]`); these are extra mirrors, written after each batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from daemon.config import Field, Table, non_empty
from sinks.base import Sink
from sinks.jsonl import JsonlSink

SINK_FIELDS: dict[str, Table] = {
    "jsonl": {
        "path": Field((str,), required=True, check=non_empty, doc="file, or - for stdout"),
        "fsync": Field((bool,), default=False),
    },
}


def sink_types() -> list[str]:
    """The `type` values a `[sinks.<name>]` table may have."""
    return sorted(SINK_FIELDS)


def sink_schema(type_name: str) -> Table:
    """The config keys of a sink type."""
    return SINK_FIELDS[type_name]


def build_sink(name: str, cfg: dict[str, Any], resolve: Any) -> Sink:
    """Instantiate a configured mirror sink; `resolve` maps config paths to real ones."""
    if cfg["type"] == "jsonl":
        path = cfg["path"] if cfg["path"] == "-" else str(resolve(cfg["path"]))
        return JsonlSink(name, Path(path) if path != "-" else path, fsync=cfg["fsync"])
    raise ValueError(f"unknown sink type {cfg['type']!r}")
