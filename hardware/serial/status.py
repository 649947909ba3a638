"""Status lines from the daemon to a device with a small display (daemon -> device).

Wire format, one line, at most `MAX_STATUS_BYTES` including the LF::

    >redis up|spool 0|bench 0.5/s|adsb 118/s*14\\n
    ^ prefix  ^ rows separated by '|'       ^ *HH: XOR of everything before '*'

Each row is one line of the display: at most 21 characters (128 px / 6 px font
of an SSD1306), at most 8 rows (64 px / 8 px). Rows hold printable ASCII; the
separators ``|`` and ``*`` inside a row are replaced by ``/`` and ``x``.
The sketch in ``hardware/arduino/geosensor`` parses exactly this.
"""

from __future__ import annotations

from collections.abc import Sequence

from hardware.serial.checksum import append_checksum, verify_checksum
from hardware.serial.errors import LineError

STATUS_PREFIX = ">"
ROW_CHARS = 21
MAX_ROWS = 8
MAX_STATUS_BYTES = 120


def _clean(row: str) -> str:
    text = row.replace("|", "/").replace("*", "x")
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:ROW_CHARS]


def format_status(rows: Sequence[str]) -> str:
    """The status line (without LF) showing `rows`; rows beyond the limits are cut."""
    kept: list[str] = []
    size = len(STATUS_PREFIX) + 4  # "*HH" + LF
    for row in rows[:MAX_ROWS]:
        text = _clean(row)
        extra = len(text) + (1 if kept else 0)
        if size + extra > MAX_STATUS_BYTES:
            break
        kept.append(text)
        size += extra
    return append_checksum(STATUS_PREFIX + "|".join(kept))


def parse_status(line: str) -> list[str]:
    """The rows of a status line; LineError if it is not one or its checksum is wrong."""
    text = line.rstrip("\r\n")
    if not text.startswith(STATUS_PREFIX):
        raise LineError("not_status", f"status lines start with {STATUS_PREFIX!r}")
    if len(text) + 1 > MAX_STATUS_BYTES:
        raise LineError("overlong_line", f"{len(text) + 1} bytes > {MAX_STATUS_BYTES}")
    body = verify_checksum(text, required=True)
    return body[len(STATUS_PREFIX):].split("|")
