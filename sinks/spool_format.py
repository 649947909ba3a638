"""The on-disk record format of the spool (`sinks.spool`): one record per batch.

A segment file is a plain concatenation of records. All integers little-endian::

    offset  size  field
    0       4     magic          b"GSp1" (47 53 70 31); the 1 is the format version
    4       4     payload_len    u32, bytes of payload that follow the header
    8       4     n_events       u32, StreamEntries in the payload (depth without decoding)
    12      4     payload_crc    u32, CRC-32 (zlib) of the payload
    16      4     header_crc     u32, CRC-32 of bytes 0..15, so a torn or flipped length
                                 is caught before it is trusted to skip ahead
    20      1     codec          0 = body is msgpack, 1 = body is zlib (deflate) of msgpack
    21      n-1   body           msgpack array, one element per StreamEntry:
                                 [producer, seq, src, cell, [values…], record, memo|nil]
                                 memo is [field, value] or nil

`payload_len` and `payload_crc` cover codec and body. zlib level 1 shrinks a
batch 5-7 times on the bench's data (the `record` dict repeats the values, and
entries of one source repeat each other): that much less SD-card wear and that
many more events per `max_bytes`, for a few µs per event (bench/spool_write.py).

The header CRC lets a reader walk a segment by headers alone (20 bytes per batch)
and lets a scan for the magic resynchronise after a damaged region: a false
magic inside a payload also has to carry a matching header CRC (odds 2^-32) and a
length that fits the file.

Error family::

    RecordError(ValueError)     a record that cannot be used; `offset` says where
    ├── TornRecord              the file ends inside this record (header or payload)
    └── CorruptRecord           the bytes are all there but a CRC or the msgpack is wrong
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from sinks.entry import StreamEntry

MAGIC = b"GSp1"
HEADER = struct.Struct("<4sIII")  # magic, payload_len, n_events, payload_crc
HEADER_CRC = struct.Struct("<I")
HEADER_BYTES = HEADER.size + HEADER_CRC.size  # 20

# A wire tuple per entry: positional, so field names are not repeated per event.
_WireEntry = tuple[str, int, str, str, tuple[str, ...], dict[str, Any], tuple[str, str] | None]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[_WireEntry])


class RecordError(ValueError):
    """A record that cannot be used; `offset` is where it starts in its segment."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"record at byte {offset}: {message}")
        self.offset = offset


class TornRecord(RecordError):
    """The data ends inside the record: a write cut short (power loss, crash)."""


class CorruptRecord(RecordError):
    """The record is complete but a checksum or its msgpack payload is wrong."""


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """A verified header: where its record starts and what it says about the payload."""

    offset: int
    payload_len: int
    n_events: int
    payload_crc: int

    @property
    def end(self) -> int:
        """Offset of the byte after this record (the next record's start)."""
        return self.offset + HEADER_BYTES + self.payload_len


CODEC_MSGPACK = 0
CODEC_ZLIB = 1


def encode_record(batch: Sequence[StreamEntry], compress_level: int = 1) -> bytes:
    """Header plus payload for one batch (the bytes appended to a segment).

    `compress_level` is the zlib level (1 fastest … 9 smallest); 0 stores plain msgpack.
    """
    body = _encoder.encode([
        (e.producer, e.seq, e.src, e.cell, e.values, e.record, e.memo) for e in batch
    ])
    if compress_level:
        payload = bytes((CODEC_ZLIB,)) + zlib.compress(body, compress_level)
    else:
        payload = bytes((CODEC_MSGPACK,)) + body
    head = HEADER.pack(MAGIC, len(payload), len(batch), zlib.crc32(payload))
    return head + HEADER_CRC.pack(zlib.crc32(head)) + payload


def parse_header(buf: bytes, offset: int = 0, base: int = 0) -> RecordHeader:
    """The header at `buf[offset:]`; `base` is the file offset of `buf[0]`.

    Raises TornRecord when fewer than 20 bytes remain, CorruptRecord when the
    magic or the header CRC is wrong. Does not check that the payload is present.
    """
    if len(buf) - offset < HEADER_BYTES:
        raise TornRecord(base + offset, f"{len(buf) - offset} of {HEADER_BYTES} header bytes")
    magic, payload_len, n_events, payload_crc = HEADER.unpack_from(buf, offset)
    if magic != MAGIC:
        raise CorruptRecord(base + offset, f"magic {magic!r}, expected {MAGIC!r}")
    (header_crc,) = HEADER_CRC.unpack_from(buf, offset + HEADER.size)
    if zlib.crc32(buf[offset:offset + HEADER.size]) != header_crc:
        raise CorruptRecord(base + offset, "header CRC mismatch")
    return RecordHeader(base + offset, payload_len, n_events, payload_crc)


def decode_payload(header: RecordHeader, payload: bytes) -> list[StreamEntry]:
    """The batch in `payload` after checking its length and CRC against `header`."""
    if len(payload) < header.payload_len:
        raise TornRecord(header.offset, f"{len(payload)} of {header.payload_len} payload bytes")
    if zlib.crc32(payload) != header.payload_crc:
        raise CorruptRecord(header.offset, "payload CRC mismatch")
    codec, body = payload[:1], payload[1:]
    try:
        if codec == bytes((CODEC_ZLIB,)):
            body = zlib.decompress(body)
        elif codec != bytes((CODEC_MSGPACK,)):
            raise CorruptRecord(header.offset, f"unknown codec {codec!r}")
        wire = _decoder.decode(body)
    except (msgspec.DecodeError, zlib.error) as exc:
        # The CRC matched, so this is a writer bug or a format change, not disk damage.
        raise CorruptRecord(header.offset, f"payload does not decode: {exc}") from None
    if len(wire) != header.n_events:
        raise CorruptRecord(header.offset, f"{len(wire)} entries, header says {header.n_events}")
    return [
        StreamEntry(producer=p, seq=s, src=src, cell=cell, values=values, record=record, memo=memo)
        for p, s, src, cell, values, record, memo in wire
    ]


def find_header(buf: bytes, start: int, base: int = 0, whole: bool = False) -> RecordHeader | None:
    """The first valid header at or after `buf[start:]` whose record fits in `buf`.

    Used to resynchronise after a damaged region: scans for the magic and accepts a
    candidate only if its header CRC matches and its payload ends inside `buf`
    (with `whole`, the payload CRC must match too). None when no record follows.
    """
    pos = buf.find(MAGIC, start)
    while pos >= 0:
        try:
            header = parse_header(buf, pos, base)
        except RecordError:
            pass
        else:
            end = pos + HEADER_BYTES + header.payload_len
            if end <= len(buf) and (
                not whole or zlib.crc32(buf[pos + HEADER_BYTES:end]) == header.payload_crc
            ):
                return header
        pos = buf.find(MAGIC, pos + 1)
    return None
