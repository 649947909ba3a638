"""Configuration loading and validation (TOML).

The whole file is validated at load time, and every problem is reported as
``PATH:LINE: <dotted.key>: <what is wrong>``: TOML syntax errors, unknown keys
(with the nearest valid key suggested), wrong types and out-of-range values.

Layout (see the documented default `config.toml` at the repository root)::

    [station]   id, lat, lon, alt
    [redis]     url ("embedded" | redis:// | rediss:// | unix:// | redis+cluster://), username,
                password, wait_replicas, wait_timeout_ms,
                password_file, tls_ca_file, tls_cert_file, tls_key_file, …
    [streams]   prefix, maxlen, cell_maxlen, max_age_s, index_levels, cell_stream_level, …
    [pipeline]  queue_size, batch_size, batch_latency_ms
    [state]     dir
    [http]      listen (health and metrics endpoint)
    [log]       level
    [spool]     max_mb, segment_mb, policy, fsync, fsync_interval_s
    [supervisor] restart_initial_s, restart_max_s
    [view]      listen, minutes, max_backfill, max_cells, tiles (geosensord view)
    [sources.<name>]  type = "usgs" | "jsonl" | …, plus the keys of that type, plus
                      stall_timeout_s (any type)
    [sinks.<name>]    type = "jsonl", path
    [status_display]  port or source, baud, interval_s (a serial OLED status line)
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Config",
    "ConfigError",
    "ConfigErrors",
    "Field",
    "Table",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """One problem in a config file, located by file, line and dotted key."""

    def __init__(self, path: str, line: int | None, key: str, message: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.message = message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


class ConfigErrors(ValueError):
    """All the problems found in one config file (at least one)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Field:
    """One config key: its type(s), default, and an optional value check.

    `types` are Python types the TOML value may have (int is accepted for float).
    `check` returns a message when the value is out of range, else None.
    A field without a default (`required=True`) must be present.
    """

    types: tuple[type, ...]
    default: Any = None
    required: bool = False
    check: Check | None = None
    doc: str = ""


def between(lo: float, hi: float) -> Check:
    """A check that a number lies in [lo, hi]."""

    def _check(v: Any) -> str | None:
        return None if lo <= v <= hi else f"{v!r} is outside [{lo:g}, {hi:g}]"

    return _check


def at_least(lo: float) -> Check:
    """A check that a number is >= lo."""

    def _check(v: Any) -> str | None:
        return None if v >= lo else f"{v!r} must be >= {lo:g}"

    return _check


def positive(v: Any) -> str | None:
    """A check that a number is > 0."""
    return None if v > 0 else f"{v!r} must be > 0"


def one_of(*choices: str) -> Check:
    """A check that a string is one of `choices`."""

    def _check(v: Any) -> str | None:
        return None if v in choices else f"{v!r} is not one of: {', '.join(choices)}"

    return _check


def non_empty(v: Any) -> str | None:
    """A check that a string is not empty."""
    return None if str(v).strip() else "must not be empty"


def levels_check(v: Any) -> str | None:
    """A check for a list of S2 levels (ints in 0..30, strictly increasing)."""
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return "must be a list of integers"
    if not all(0 <= x <= 30 for x in v):
        return f"{v!r}: S2 levels are 0..30"
    if list(v) != sorted(set(v)):
        return f"{v!r} must be strictly increasing"
    return None


Table = Mapping[str, Field]

STATION: dict[str, Field] = {
    "id": Field((str,), required=True, check=non_empty, doc="station id"),
    "lat": Field((float,), required=True, check=between(-90, 90)),
    "lon": Field((float,), required=True, check=between(-180, 180)),
    "alt": Field((float,), default=0.0, check=between(-500, 10000)),
}


def redis_url_check(v: Any) -> str | None:
    """A check for `[redis] url`: "embedded", a redis://, rediss:// or unix:// URL, or a
    cluster's seed nodes ``redis+cluster://host:port[,host:port…]`` (``rediss+cluster://``)."""
    schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
    if v == "embedded" or str(v).startswith(schemes):
        return None
    return (
        f'{v!r} is not "embedded", a redis://, rediss:// or unix:// URL, '
        "or redis+cluster://host:port[,host:port…]"
    )


REDIS: dict[str, Field] = {
    "url": Field((str,), default="embedded", check=redis_url_check),
    "username": Field((str,), default=""),
    "password": Field((str,), default=""),
    "password_file": Field((str,), default=""),
    "tls_ca_file": Field((str,), default=""),
    "tls_cert_file": Field((str,), default=""),
    "tls_key_file": Field((str,), default=""),
    "tls_verify": Field((bool,), default=True),
    "socket_timeout_s": Field((float,), default=5.0, check=positive),
    "server_binary": Field((str,), default=""),
    "maxmemory_mb": Field((int,), default=0, check=at_least(0)),
    # Cluster only: a write counts once this many replicas of each master it touched
    # have it (WAIT), so a failover cannot lose it; 0 = do not wait (docs/cluster.md).
    "wait_replicas": Field((int,), default=0, check=between(0, 5)),
    "wait_timeout_ms": Field((int,), default=1000, check=between(1, 60_000)),
}

STREAMS: dict[str, Field] = {
    "prefix": Field((str,), default="geo", check=non_empty),
    "maxlen": Field((int,), default=1_000_000, check=at_least(0)),
    "cell_maxlen": Field((int,), default=10_000, check=at_least(0)),
    "max_age_s": Field((int,), default=0, check=at_least(0)),
    "index_levels": Field((list,), default=[6, 10, 14], check=levels_check),
    "cell_stream_level": Field((int,), default=8, check=between(0, 30)),
    "global_stream": Field((bool,), default=True),
    "source_streams": Field((bool,), default=True),
    "cell_streams": Field((bool,), default=True),
}

PIPELINE: dict[str, Field] = {
    "queue_size": Field((int,), default=10_000, check=at_least(1)),
    "batch_size": Field((int,), default=500, check=between(1, 100_000)),
    "batch_latency_ms": Field((int,), default=100, check=between(1, 60_000)),
}

STATE: dict[str, Field] = {
    "dir": Field((str,), default="", doc="state directory; default $STATE_DIRECTORY or ./state"),
}


def listen_check(v: Any) -> str | None:
    """A check for ``HOST:PORT`` (or "" to disable)."""
    from daemon.health import parse_listen

    try:
        if v:
            parse_listen(str(v))
    except ValueError as exc:
        return str(exc)
    return None


HTTP: dict[str, Field] = {
    "listen": Field((str,), default="127.0.0.1:9108", check=listen_check),
}

# `geosensord view` (daemon/commands/view.py); its flags override these.
VIEW: dict[str, Field] = {
    "listen": Field((str,), default="127.0.0.1:8080", check=listen_check, doc="HOST:PORT"),
    "minutes": Field((float,), default=60.0, check=positive, doc="backfill on page load"),
    "max_backfill": Field((int,), default=20_000, check=at_least(1)),
    "max_cells": Field((int,), default=1000, check=at_least(1)),
    "tiles": Field((str,), default="", doc="map tile URL template ({z}/{x}/{y})"),
}

# The disk spool (sinks/spool.py) that holds batches while Redis cannot take them.
SPOOL: dict[str, Field] = {
    "max_mb": Field((float,), default=256.0, check=positive, doc="size bound, MiB"),
    "segment_mb": Field((float,), default=4.0, check=positive, doc="segment file size, MiB"),
    "policy": Field((str,), default="drop_oldest", check=one_of("drop_oldest", "block")),
    "fsync": Field((str,), default="batch", check=one_of("batch", "interval", "never")),
    "fsync_interval_s": Field((float,), default=1.0, check=positive),
}

# Source supervision (daemon/supervisor.py): restart delays after a failure or a stall.
SUPERVISOR: dict[str, Field] = {
    "restart_initial_s": Field((float,), default=1.0, check=positive),
    "restart_max_s": Field((float,), default=300.0, check=positive),
}

# Keys every [sources.<name>] table accepts besides its type's own (handled by the
# supervisor, not the adapter).
SOURCE_COMMON: dict[str, Field] = {
    "stall_timeout_s": Field(
        (float,), default=0.0, check=at_least(0), doc="restart after this long without progress"
    ),
}

LOG: dict[str, Field] = {
    "level": Field((str,), default="info", check=one_of("debug", "info", "warning", "error")),
}

TOP_TABLES: dict[str, Table] = {
    "station": STATION,
    "redis": REDIS,
    "streams": STREAMS,
    "pipeline": PIPELINE,
    "state": STATE,
    "http": HTTP,
    "log": LOG,
    "spool": SPOOL,
    "supervisor": SUPERVISOR,
    "view": VIEW,
}
EXTRA_TABLES = ("sources", "sinks", "status_display")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Config:
    """A validated configuration: plain dicts with defaults filled in."""

    path: str
    station: dict[str, Any]
    redis: dict[str, Any]
    streams: dict[str, Any]
    pipeline: dict[str, Any]
    state: dict[str, Any]
    http: dict[str, Any]
    log: dict[str, Any]
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    sinks: dict[str, dict[str, Any]] = field(default_factory=dict)
    status_display: dict[str, Any] = field(default_factory=dict)
    spool: dict[str, Any] = field(default_factory=lambda: _defaults(SPOOL))
    supervisor: dict[str, Any] = field(default_factory=lambda: _defaults(SUPERVISOR))
    view: dict[str, Any] = field(default_factory=lambda: _defaults(VIEW))

    @property
    def state_dir(self) -> Path:
        """Where the daemon keeps its state (spool, sequences, embedded Redis data)."""
        configured = self.state["dir"]
        if configured:
            return self.resolve(configured)
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        return self.resolve("state")

    def resolve(self, value: str) -> Path:
        """A path from the config, relative paths taken from the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.path).resolve().parent / p)


def _defaults(schema: Table) -> dict[str, Any]:
    """A table filled with its defaults (for Configs built without a file)."""
    return {k: spec.default for k, spec in schema.items() if not spec.required}


class _Locator:
    """Finds the line of a dotted key in TOML text (tomllib keeps no positions)."""

    _header = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
    _key = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        table = ""
        for n, raw in enumerate(text.splitlines(), start=1):
            m = self._header.match(raw)
            if m:
                table = self._norm(m.group(1))
                self.lines.setdefault(table, n)
                continue
            m = self._key.match(raw)
            if m:
                key = self._norm(m.group(1))
                self.lines.setdefault(f"{table}.{key}" if table else key, n)

    @staticmethod
    def _norm(dotted: str) -> str:
        return ".".join(part.strip().strip("\"'") for part in dotted.split("."))

    def line(self, dotted: str) -> int | None:
        parts = dotted.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return None


class _Validator:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.loc = _Locator(text)
        self.errors: list[ConfigError] = []

    def error(self, key: str, message: str) -> None:
        self.errors.append(ConfigError(self.path, self.loc.line(key), key, message))

    def table(
        self, prefix: str, raw: Any, schema: Table, extra_ok: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if not isinstance(raw, dict):
            self.error(prefix, f"must be a table, not {type(raw).__name__}")
            raw = {}
        for key, value in raw.items():
            dotted = f"{prefix}.{key}"
            if key in extra_ok:
                continue
            spec = schema.get(key)
            if spec is None:
                self.error(dotted, f"unknown key{_did_you_mean(key, [*schema, *extra_ok])}")
                continue
            checked = self.value(dotted, value, spec)
            if checked is not None:
                out[key] = checked
        for key, spec in schema.items():
            if key in raw:
                continue
            if spec.required:
                self.error(f"{prefix}.{key}", "required key is missing")
            else:
                out[key] = list(spec.default) if isinstance(spec.default, list) else spec.default
        return out

    def value(self, dotted: str, value: Any, spec: Field) -> Any:
        ok = isinstance(value, spec.types) and not (
            isinstance(value, bool) and bool not in spec.types
        )
        if (
            not ok
            and float in spec.types
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            value, ok = float(value), True
        if not ok:
            want = " or ".join(_type_name(t) for t in spec.types)
            self.error(
                dotted,
                f"expected {want}, got {_type_name(type(value))} {value!r}",
            )
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(dotted, f"{value!r} is not a finite number")
            return None
        if spec.check is not None:
            problem = spec.check(value)
            if problem:
                self.error(dotted, problem)
                return None
        return value


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "a table",
}


def _type_name(t: type) -> str:
    return _TYPE_NAMES.get(t, t.__name__)


def _did_you_mean(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{close[0]}"?'
    return f" (valid keys: {', '.join(sorted(valid))})" if valid else ""


def parse_config(text: str, path: str = "<config>") -> Config:
    """Validate TOML text; raise ConfigErrors listing every problem found."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        # "at end of document" carries no position: that is the last line.
        line = int(m.group(1)) if m else max(1, len(text.splitlines()))
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        if m:
            msg += f" (column {m.group(2)})"
        raise ConfigErrors([ConfigError(path, line, "", f"TOML syntax error: {msg}")]) from None

    # Imported here: the registries import this module for Field and checks.
    from daemon.sinks_registry import sink_schema, sink_types
    from daemon.sources import source_schema, source_types
    from daemon.status_display import FIELDS as display_fields
    from daemon.status_display import validate as validate_display

    v = _Validator(path, text)
    tables: dict[str, dict[str, Any]] = {}
    for key in raw:
        if key not in TOP_TABLES and key not in EXTRA_TABLES:
            v.error(key, f"unknown table{_did_you_mean(key, [*TOP_TABLES, *EXTRA_TABLES])}")
    for name, schema in TOP_TABLES.items():
        tables[name] = v.table(name, raw.get(name, {}), schema)
    if "station" not in raw:
        v.errors.append(ConfigError(path, None, "station", "required table [station] is missing"))
        v.errors = [e for e in v.errors if not e.key.startswith("station.")]

    spool = tables["spool"]
    if "max_mb" in spool and "segment_mb" in spool and spool["max_mb"] < spool["segment_mb"]:
        v.error("spool.max_mb", "must be at least spool.segment_mb")

    def with_common(type_name: str) -> Table:
        return {**source_schema(type_name), **SOURCE_COMMON}

    sources = _instances(v, raw.get("sources", {}), "sources", source_types(), with_common)
    for name, cfg in sources.items():
        # Generic keys appear in a source's table only when written (adapters and their
        # tests see exactly their own keys); readers use cfg.get(key, default).
        given = raw["sources"][name]
        for key in SOURCE_COMMON:
            if key not in given:
                cfg.pop(key, None)
    sinks = _instances(v, raw.get("sinks", {}), "sinks", sink_types(), sink_schema)
    display = v.table("status_display", raw.get("status_display", {}), display_fields)
    for key, message in validate_display(display, sources):
        v.error(key, message)
    if v.errors:
        raise ConfigErrors(v.errors)
    return Config(path=path, sources=sources, sinks=sinks, status_display=display, **tables)


def _instances(
    v: _Validator,
    raw: Any,
    kind: str,
    types: list[str],
    schema_of: Callable[[str], Table],
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not isinstance(raw, dict):
        v.error(kind, "must be a table of named tables")
        return out
    for name, body in raw.items():
        prefix = f"{kind}.{name}"
        if not NAME_RE.match(name):
            v.error(prefix, "name must be 1-64 of letters, digits, '_', '-', '.'")
        if isinstance(body, list):
            v.error(prefix, f"use [{prefix}] (one table per instance), not [[{prefix}]]")
            continue
        if not isinstance(body, dict):
            v.error(prefix, "must be a table")
            continue
        type_name = body.get("type")
        if type_name is None:
            v.error(prefix, f'missing "type" (one of: {", ".join(types)})')
            continue
        if type_name not in types:
            v.error(
                f"{prefix}.type",
                f"unknown type {type_name!r}{_did_you_mean(str(type_name), types)}",
            )
            continue
        try:
            schema = schema_of(type_name)
        except (ImportError, AttributeError) as exc:
            # e.g. an optional dependency missing on this machine: a config error, not a crash
            v.error(f"{prefix}.type", f"cannot load the {type_name!r} adapter: {exc}")
            continue
        cfg = v.table(prefix, body, schema, extra_ok=frozenset({"type"}))
        cfg["type"] = type_name
        out[name] = cfg
    return out


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise ConfigErrors (or OSError if unreadable)."""
    p = Path(path)
    return parse_config(p.read_text(encoding="utf-8"), str(path))
