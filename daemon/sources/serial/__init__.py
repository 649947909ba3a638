"""Arduino-style serial sensors (design §5.4): readings over a serial port.

The port is read with `hardware.serial.SerialLineReader` (exclusive open,
settle time after open, bounded lines, reconnect with backoff after unplug);
lines are parsed per `protocol`, optionally interleaved with NMEA from a GPS
(`gps = true`), and published as ``sensor.reading`` events with ids
``serial:<name>:<seq>``. See README.md beside this file for the sample config
block and the event's fields.
"""

from __future__ import annotations

import re
from typing import Any

from daemon.config import Field, at_least, between, non_empty, one_of, positive
from daemon.sources.base import SourceContext
from daemon.sources.serial.source import SerialSource

__all__ = ["FIELDS", "SerialSource", "build"]

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
BAUD_RATES = (300, 1200, 2400, 4800, 9600, 14400, 19200, 28800, 38400, 57600, 76800,
              115200, 230400, 250000, 460800, 500000, 921600, 1000000, 2000000)


def _baud(v: Any) -> str | None:
    if v in BAUD_RATES:
        return None
    return f"{v!r} is not a standard rate ({', '.join(map(str, BAUD_RATES))})"


def _columns(v: Any) -> str | None:
    if not all(isinstance(c, str) and _KEY_RE.match(c) for c in v):
        return "must be a list of field names ([A-Za-z_][A-Za-z0-9_.-]*)"
    if len(set(v)) != len(v):
        return "column names must be unique"
    return None


def _units(v: Any) -> str | None:
    bad = [k for k, u in v.items() if not isinstance(u, str)]
    return f"units must be strings (field -> unit), not for {', '.join(bad)}" if bad else None


def _deadband(v: Any) -> str | None:
    for k, d in v.items():
        if isinstance(d, bool) or not isinstance(d, int | float) or d < 0:
            return f"deadband.{k}: {d!r} must be a number >= 0"
    return None


def _delimiter(v: Any) -> str | None:
    return None if len(v) == 1 and v not in "\r\n\"" else f"{v!r} must be one character"


FIELDS: dict[str, Field] = {
    "port": Field((str,), required=True, check=non_empty,
                  doc="device path (prefer /dev/serial/by-id/…) or a pyserial URL"),
    "baud": Field((int,), default=9600, check=_baud),
    "protocol": Field((str,), default="kv", check=one_of("kv", "csv", "json", "nmea")),
    "gps": Field((bool,), default=False, doc="NMEA sentences may be interleaved"),
    "checksum": Field((str,), default="none", check=one_of("none", "xor", "auto"),
                      doc="sensor line *HH: none, xor (required), auto (checked if present)"),
    "columns": Field((list,), default=[], check=_columns, doc="csv column names"),
    "csv_delimiter": Field((str,), default=",", check=_delimiter),
    "units": Field((dict,), default={}, check=_units, doc="field -> unit string"),
    "deadband": Field((dict,), default={}, check=_deadband, doc="field -> min change"),
    "min_interval_s": Field((float,), default=0.0, check=at_least(0)),
    "max_interval_s": Field((float,), default=0.0, check=at_least(0)),
    "gps_max_age_s": Field((float,), default=10.0, check=positive),
    "read_timeout_s": Field((float,), default=0.5, check=between(0.01, 1.0)),
    "exclusive": Field((bool,), default=True),
    "settle_s": Field((float,), default=2.0, check=between(0, 60)),
    "max_line_bytes": Field((int,), default=512, check=between(16, 65536)),
    "encoding": Field((str,), default="ascii", check=one_of("ascii", "utf-8")),
    "reconnect_initial_s": Field((float,), default=0.5, check=between(0.01, 60)),
    "reconnect_max_s": Field((float,), default=30.0, check=between(0.01, 3600)),
    "idle_reconnect_s": Field((float,), default=0.0, check=at_least(0),
                              doc="reopen after this long without a byte (0: never)"),
    "once_timeout_s": Field((float,), default=15.0, check=positive,
                            doc="--once: give up waiting for a first reading after this"),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> SerialSource:
    """Factory used by the source registry."""
    return SerialSource(name, cfg, ctx)
