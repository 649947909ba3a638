"""Beast binary format (dump1090/readsb TCP port 30005): parser and encoder.

A frame on the wire::

    0x1a  type  timestamp (6 bytes, big-endian)  signal (1 byte)  message
    type '1' (0x31) Mode A/C        message 2 bytes
         '2' (0x32) Mode S short    message 7 bytes  (56 bits)
         '3' (0x33) Mode S long     message 14 bytes (112 bits)

- Every 0x1a inside timestamp, signal or message is sent twice (``1a 1a``); a single
  0x1a always starts a frame, so a receiver resynchronises at the next lone 0x1a.
- The timestamp counts a 12 MHz clock (dump1090: sample index * 6 at 2 MS/s, * 5 at
  2.4 MS/s); its origin is arbitrary (receiver start), it wraps at 2^48. Zero means
  "no timestamp". Some feeds put GPS time here instead (ignored by this parser).
- The signal byte is sqrt(power) * 255 relative to full scale, so
  ``rssi_dbfs = 20·log10(signal/255)``; zero means unknown.
- Other types (status '4', receiver id 0xe3, …) are skipped and counted.

The parser is incremental: feed it whatever the socket returned; it keeps a partial
frame for the next call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hardware.modes.errors import DecodeError

__all__ = [
    "BEAST_CLOCK_HZ",
    "BeastError",
    "BeastFrame",
    "BeastParser",
    "encode_beast",
    "signal_byte",
]

BEAST_CLOCK_HZ = 12_000_000
ESC = 0x1A
_PAYLOAD_BYTES = {0x31: 2, 0x32: 7, 0x33: 14}
_TYPE_FOR_LENGTH = {2: 0x31, 7: 0x32, 14: 0x33}
_MAX_TIMESTAMP = (1 << 48) - 1


class BeastError(DecodeError):
    """A Beast frame that cannot be encoded (the parser counts bad input instead)."""

    def __init__(self, field: str, value: int) -> None:
        self.field = field
        self.value = value
        super().__init__(f"beast {field}={value}: out of range")


@dataclass(frozen=True, slots=True)
class BeastFrame:
    """One Beast frame: `msg` is 2 (Mode A/C), 7 or 14 bytes (Mode S)."""

    type_byte: int
    timestamp_12mhz: int
    signal: int
    msg: bytes

    @property
    def is_mode_s(self) -> bool:
        return self.type_byte in (0x32, 0x33)

    @property
    def signal_dbfs(self) -> float | None:
        """Signal level in dB relative to full scale, None when the feed gives none."""
        return None if self.signal == 0 else 20.0 * math.log10(self.signal / 255.0)


def encode_beast(msg: bytes, timestamp_12mhz: int = 0, signal: int = 0) -> bytes:
    """One escaped Beast frame for a 2-, 7- or 14-byte message."""
    type_byte = _TYPE_FOR_LENGTH.get(len(msg))
    if type_byte is None:
        raise BeastError("length", len(msg))
    if not 0 <= timestamp_12mhz <= _MAX_TIMESTAMP:
        raise BeastError("timestamp", timestamp_12mhz)
    if not 0 <= signal <= 255:
        raise BeastError("signal", signal)
    body = timestamp_12mhz.to_bytes(6, "big") + bytes((signal,)) + bytes(msg)
    return bytes((ESC, type_byte)) + body.replace(b"\x1a", b"\x1a\x1a")


def signal_byte(signal_dbfs: float) -> int:
    """The Beast signal byte (1..255) for a level in dBFS (inverse of `signal_dbfs`)."""
    level: float = 255.0 * 10.0 ** (signal_dbfs / 20.0)
    return max(1, min(255, round(level)))


class BeastParser:
    """Incremental Beast parser. `resyncs` counts frames cut short by a lone 0x1a,
    `skipped` frames of types other than '1', '2', '3' (and stray bytes)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.resyncs = 0
        self.skipped = 0

    def feed(self, data: bytes) -> list[BeastFrame]:
        """Frames completed by `data`, in order."""
        buf = self._buf
        buf += data
        n = len(buf)
        out: list[BeastFrame] = []
        i = 0
        while True:
            start = buf.find(ESC, i)
            if start < 0:
                if i < n:
                    self.skipped += 1
                i = n
                break
            if start > i:
                self.skipped += 1  # bytes between frames: a frame of an unknown type
            i = start
            if i + 1 >= n:
                break
            type_byte = buf[i + 1]
            length = _PAYLOAD_BYTES.get(type_byte)
            if length is None:
                i += 2 if type_byte == ESC else 1
                continue
            body, end = _unescape(buf, i + 2, 7 + length)
            if body is None:
                if end < 0:
                    break  # incomplete: wait for more bytes
                self.resyncs += 1
                i = end
                continue
            out.append(
                BeastFrame(type_byte, int.from_bytes(body[:6], "big"), body[6], bytes(body[7:]))
            )
            i = end
        del buf[:i]
        return out


def _unescape(buf: bytearray, start: int, want: int) -> tuple[bytes | None, int]:
    """(`want` unescaped bytes, index after them); (None, -1) when `buf` ends first;
    (None, j) when a lone 0x1a at j starts a new frame before this one is complete."""
    chunk = buf[start : start + want]
    if ESC not in chunk:
        if len(chunk) < want:
            return None, -1
        return bytes(chunk), start + want
    out = bytearray()
    j = start
    n = len(buf)
    # Per byte, but only for the few frames that contain an escaped 0x1a.
    while len(out) < want:
        if j >= n:
            return None, -1
        b = buf[j]
        if b == ESC:
            if j + 1 >= n:
                return None, -1
            if buf[j + 1] != ESC:
                return None, j
            j += 1
        out.append(b)
        j += 1
    return bytes(out), j
