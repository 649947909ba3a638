"""Sensor line protocols: key=value, CSV and JSON lines.

One line is one reading. The optional ``*HH`` checksum suffix (see
`hardware.serial.checksum`) is checked before a parser sees the line.

``kv`` — whitespace (or comma) separated ``key=value`` tokens::

    temp=21.5 hum=40 a0=512 state=ok*54

``csv`` — a header line names the columns (or they are configured), then one
row per reading; empty cells are left out::

    temp,hum,a0
    21.5,40,512

``json`` — one object per line, scalar values (nested values are kept as is)::

    {"temp": 21.5, "hum": 40, "state": "ok"}

Values that parse as numbers become ``int`` or ``float``; anything else stays a
string. Non-finite numbers (``nan``, ``inf``) stay strings, so they survive JSON
encoding. Keys match ``[A-Za-z_][A-Za-z0-9_.-]*``; the names ``units`` and
``fix`` are reserved for what the daemon adds to a reading.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

from hardware.serial.errors import FieldError, LineError

__all__ = [
    "RESERVED_FIELDS",
    "CsvParser",
    "JsonParser",
    "KvParser",
    "LineParser",
    "parse_number",
]

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
RESERVED_FIELDS = frozenset({"units", "fix"})
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

Reading = dict[str, Any]


class LineParser(Protocol):
    """Turns one sensor line (checksum already removed) into a reading.

    Returns None for a line that carries no reading (a CSV header); raises
    LineError for a malformed one.
    """

    def parse(self, line: str) -> Reading | None: ...


def parse_number(text: str) -> int | float | str:
    """`text` as an int or a finite float when it is one, else the text unchanged."""
    s = text.strip()
    if _INT_RE.match(s):
        return int(s)
    if _FLOAT_RE.match(s):
        value = float(s)
        if math.isfinite(value):
            return value
    return text


def _check_key(key: str, value: str) -> None:
    if not KEY_RE.match(key):
        raise FieldError(key, value, "bad_key")
    if key in RESERVED_FIELDS:
        raise FieldError(key, value, "reserved_field")


class KvParser:
    """``key=value`` tokens separated by whitespace or commas."""

    _split = re.compile(r"[\s,]+")

    def parse(self, line: str) -> Reading | None:
        """The reading in one kv line; LineError if a token is not ``key=value``."""
        out: Reading = {}
        for token in self._split.split(line.strip()):
            if not token:
                continue
            key, sep, value = token.partition("=")
            if not sep:
                raise FieldError(token, "", "bad_token")
            _check_key(key, value)
            if key in out:
                raise FieldError(key, value, "duplicate_field")
            out[key] = parse_number(value)
        if not out:
            raise LineError("empty_reading", "no key=value tokens")
        return out


class CsvParser:
    """CSV rows named by configured `columns`, or by the last header line seen.

    A header is a line whose cells are all valid key names and none is a number.
    With configured columns, a line equal to them (a sketch printing its header
    after a reset) is skipped, and other header-like lines are data errors.
    """

    def __init__(self, columns: Sequence[str] = (), delimiter: str = ",") -> None:
        for name in columns:
            _check_key(name, "")
        self.configured = tuple(columns)
        self.columns: tuple[str, ...] = self.configured
        self.delimiter = delimiter

    def parse(self, line: str) -> Reading | None:
        """The reading in one CSV row, or None (and the columns learnt) for a header."""
        cells = [c.strip() for c in line.strip().split(self.delimiter)]
        if self._is_header(cells):
            if self.configured:
                if tuple(cells) == self.configured:
                    return None
                raise LineError("csv_header_mismatch",
                                f"header {cells} differs from configured columns")
            for name in cells:
                _check_key(name, "")
            if len(set(cells)) != len(cells):
                raise LineError("csv_header_duplicate", f"duplicate names in header {cells}")
            self.columns = tuple(cells)
            return None
        if not self.columns:
            raise LineError("csv_no_header", "data row before any header line")
        if len(cells) != len(self.columns):
            raise LineError("csv_columns",
                            f"{len(cells)} cells for {len(self.columns)} columns")
        out: Reading = {name: parse_number(cell)
                        for name, cell in zip(self.columns, cells, strict=True) if cell}
        if not out:
            raise LineError("empty_reading", "all cells are empty")
        return out

    @staticmethod
    def _is_header(cells: list[str]) -> bool:
        return all(KEY_RE.match(c) for c in cells) and not any(
            isinstance(parse_number(c), int | float) for c in cells
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"non-finite number {text}")
    return value


class JsonParser:
    """One JSON object per line."""

    def parse(self, line: str) -> Reading | None:
        """The reading in one JSON line; LineError if it is not an object of valid keys."""
        try:
            obj = json.loads(line, parse_constant=_reject_constant, parse_float=_finite_float)
        except ValueError as exc:
            raise LineError("bad_json", str(exc)) from None
        if not isinstance(obj, dict):
            raise LineError("bad_json", f"a JSON {type(obj).__name__}, not an object")
        if not obj:
            raise LineError("empty_reading", "empty object")
        for key, value in obj.items():
            _check_key(key, repr(value))
        return obj
