"""Source adapters. One module (or package) per type; adding a type is one line here.

Each adapter module exposes ``FIELDS`` (its config keys, see `daemon.config.Field`)
and ``build(name, cfg, ctx) -> Source``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.config import Table
    from daemon.sources.base import Source, SourceContext

SOURCE_MODULES: dict[str, str] = {
    "usgs": "daemon.sources.usgs",
    "jsonl": "daemon.sources.jsonl",
    "serial": "daemon.sources.serial",
    "adsb": "daemon.sources.adsb",
    "beast": "daemon.sources.adsb.beast",
    "raw": "daemon.sources.adsb.raw",
    "sbs": "daemon.sources.adsb.sbs",
    "rs41": "daemon.sources.sonde.rs41",
    "autorx": "daemon.sources.sonde.autorx",
    "sondehub": "daemon.sources.sonde.sondehub",
}


def source_types() -> list[str]:
    """The `type` values a `[sources.<name>]` table may have."""
    return sorted(SOURCE_MODULES)


def _module(type_name: str) -> ModuleType:
    return importlib.import_module(SOURCE_MODULES[type_name])


def source_schema(type_name: str) -> Table:
    """The config keys of a source type."""
    fields: Table = _module(type_name).FIELDS
    return fields


def build_source(name: str, cfg: dict[str, object], ctx: SourceContext) -> Source:
    """Instantiate the configured source `name`."""
    source: Source = _module(str(cfg["type"])).build(name, cfg, ctx)
    return source
