"""Raw hex lines (dump1090/readsb TCP port 30002, AVR format): parser and encoder.

One message per line::

    *8D4D2023587FF6E6B4E3A4CD3B7E;          message only
    @0000001E8480 8D4D2023587FF6E6B4E3A4CD3B7E;   (no space on the wire)
     ^ 12 hex digits: 12 MHz timestamp (48 bits, as in Beast), then the message

The message is 4 (Mode A/C), 14 (56-bit) or 28 (112-bit) hex digits and ends with
``;``. Lines end with ``\\n`` (``\\r\\n`` accepted). Mode A/C lines are returned with
their 2 bytes; callers keep Mode S (7/14 bytes). A line that is none of these raises
`RawLineError`; the incremental parser counts those by reason and goes on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hardware.modes.errors import DecodeError

__all__ = ["RawFrame", "RawHexParser", "RawLineError", "encode_raw", "parse_raw_line"]

_MSG_DIGITS = (4, 14, 28)
_TS_DIGITS = 12


class RawLineError(DecodeError):
    """A line that is not a raw hex message; `reason` says why."""

    def __init__(self, reason: str, line: str) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"raw line {line[:40]!r}: {reason}")


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One message; `timestamp_12mhz` is None for ``*`` lines."""

    msg: bytes
    timestamp_12mhz: int | None = None

    @property
    def is_mode_s(self) -> bool:
        return len(self.msg) in (7, 14)


def parse_raw_line(line: str) -> RawFrame:
    """Parse one ``*HEX;`` or ``@TTTTTTTTTTTTHEX;`` line (surrounding whitespace ignored)."""
    text = line.strip()
    if not text.endswith(";"):
        raise RawLineError("no_terminator", text)
    if text.startswith("*"):
        ts_digits = 0
    elif text.startswith("@"):
        ts_digits = _TS_DIGITS
    else:
        raise RawLineError("bad_prefix", text)
    body = text[1:-1]
    digits = len(body) - ts_digits
    if digits not in _MSG_DIGITS:
        raise RawLineError("bad_length", text)
    try:
        raw = bytes.fromhex(body)
    except ValueError:
        raise RawLineError("not_hex", text) from None
    if ts_digits:
        return RawFrame(raw[6:], int.from_bytes(raw[:6], "big"))
    return RawFrame(raw)


def encode_raw(msg: bytes, timestamp_12mhz: int | None = None) -> str:
    """The line (with ``\\n``) for a message, with ``@`` and the timestamp when given."""
    if timestamp_12mhz is None:
        return f"*{msg.hex().upper()};\n"
    return f"@{timestamp_12mhz:012X}{msg.hex().upper()};\n"


class RawHexParser:
    """Incremental line parser; `errors` counts bad lines by reason."""

    def __init__(self, max_line_bytes: int = 256) -> None:
        self._pending = b""
        self.max_line_bytes = max_line_bytes
        self.errors: Counter[str] = Counter()

    def feed(self, data: bytes) -> list[RawFrame]:
        """Frames from the complete lines in `pending + data`."""
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        if len(self._pending) > self.max_line_bytes:
            self.errors["line_too_long"] += 1
            self._pending = b""
        out: list[RawFrame] = []
        for raw in lines:
            if not raw.strip():
                continue
            try:
                out.append(parse_raw_line(raw.decode("ascii")))
            except UnicodeDecodeError:
                self.errors["not_ascii"] += 1
            except RawLineError as exc:
                self.errors[exc.reason] += 1
        return out
