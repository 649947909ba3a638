"""The disk spool: encoded batches kept on disk while Redis cannot take them.

The pipeline appends a batch when the primary sink fails (and every batch after
it while the spool is non-empty, to keep order), and replays oldest first with
`peek()` → write to Redis → `pop()`. Re-sending a batch is harmless (the Redis
script skips every (producer, seq) at or below the committed offset), losing one
is not; every choice below follows from that asymmetry.

Layout of ``directory`` (e.g. ``<state_dir>/spool/``)::

    000000000001.seg   segments: records appended, never rewritten (spool_format.py)
    000000000002.seg   …the highest number is the one being appended to
    cursor             where replay resumes: u8[4] b"GSc1", u64 segment, u64 offset,
                       u32 CRC-32 of the 20 bytes before it (24 bytes, rewritten in place)
    lock               flock()ed while a DiskSpool has the directory open

Segments roll when the next record would pass `segment_bytes`; a segment replayed
to its end is deleted, and when replay catches up with the writer the whole spool
is deleted, so an idle spool holds no segment at all. Each process appends to a
new segment, so a segment written before a crash is never appended to again.

Crash and power-cut safety:

- Open verifies every record (header and payload CRC) of the newest segment and
  truncates after the last good one: a torn write (partial header, partial
  payload, zero-filled blocks) is cut away, counted in `truncated_bytes`.
- Older segments are walked by header only (20 bytes per batch), so opening a full
  spool stays cheap; a damaged record there is found at replay, skipped and counted
  in `corrupt_records`, and replay resumes at the next valid header (found by
  scanning for the magic; the header CRC rejects false matches).
- The cursor is written after each `pop()` without fsync: a stale or torn cursor
  only makes the next run re-send batches that Redis will skip. Segments below the
  cursor's segment are deleted on open (they were replayed).

Durability, `fsync`:

- ``"batch"`` (default): fdatasync after every append. A batch handed to the
  spool survives a power cut (design §4: what SIGKILL or a power cut loses is
  bounded by the batch window, not by the page cache).
- ``"interval"``: fdatasync when the last one is older than `fsync_interval_s`
  (checked at each append; also at roll and close). There is no timer thread: a
  power cut loses the appends since the last fdatasync, which is at most
  `fsync_interval_s` of them while batches keep coming, or up to the kernel's
  writeback delay for the last ones before appends stopped. A process crash
  (SIGKILL) loses nothing: the bytes are in the page cache.
- ``"never"``: leave it to the kernel's writeback (≈30 s on default Linux).

Write amplification: bytes the kernel is asked to write per byte of stream-entry
values (/proc/self/io write_bytes; `python bench/spool_write.py`, ext4 on a
virtio disk, 3 000 aircraft.position events of 266 value bytes; "cycle" adds the
full replay and removal; SQLite = one row per batch, WAL mode, the same payload)::

    events/   segments (zlib 1)            segments   sqlite WAL       sqlite WAL
    batch     batch   interval  never      batch/raw  FULL (cycle)     NORMAL (cycle)
    1         17.0    3.1       1.6        17.7       35.4 (79.1)      20.0 (48.4)
    10        2.0     0.61      0.44       3.7        4.0  (10.0)      2.4  (6.9)
    100       0.49    0.34      0.32       2.4        0.88 (2.4)       0.72 (2.1)
    500       0.33    0.29      0.30       2.2        0.45 (1.1)       0.42 (1.1)

(segments: cycle ≈ spool; replay only rewrites the 24-byte cursor, deletion is an
unlink. "interval" assumes a batch every 100 ms, the pipeline's batch window.)

Choice: append-only segments. At every batch size they write less than SQLite
with the same durability (half at 1-10 events per batch, three quarters at 500)
and a third or less over a whole outage, because SQLite writes every page twice
(WAL, then checkpoint) and pays again to delete the replayed rows.

The payload is zlib level 1 by default: a plain msgpack record is 2.1 bytes per
value byte (the record dict repeats the values) and compression brings it to
about 0.3 (synthetic, repetitive data; expect less on mixed traffic).
fsync="batch" stays the default for the design's guarantee; its cost is the
4 KiB page rewritten per fdatasync, so it hurts only with tiny batches (one event
per batch: 17x). A deployment that spools for long at a low event rate on an SD
card should choose "interval" (3.1x; see above for what a power cut can lose).

Size bound and policy (`max_bytes`, counting segment files whole):

- ``"drop_oldest"`` (default): the oldest segments are deleted until the new batch
  fits; their not-yet-replayed events are added to `dropped_events`. A batch larger
  than `max_bytes` on its own is dropped and counted.
- ``"block"``: `append` raises `SpoolFull` and stores nothing. The pipeline must
  keep the batch in memory and retry later (its deliver step returns "not
  delivered", the sink thread backs off, the queue fills and sources feel
  backpressure); a retry first replays the spool, which frees space once Redis
  is back.

`SpoolFull` is also raised (under either policy) when the disk itself refuses the
write (ENOSPC, EIO); the partial record is truncated away first.

Threads: one thread (the pipeline's sink thread) appends, peeks and pops;
`depth()`, `bytes_on_disk()`, `dropped_events` and `corrupt_records` are plain
ints that any thread (metrics) may read without a lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sinks.base import SinkError
from sinks.entry import StreamEntry
from sinks.spool_format import (
    HEADER_BYTES,
    RecordError,
    RecordHeader,
    decode_payload,
    encode_record,
    find_header,
    parse_header,
)

__all__ = ["FSYNC_POLICIES", "FULL_POLICIES", "DiskSpool", "MiB", "SpoolFull", "SpoolLocked"]

log = logging.getLogger(__name__)

MiB = 1024 * 1024
FSYNC_POLICIES = ("batch", "interval", "never")
FULL_POLICIES = ("drop_oldest", "block")
SEGMENT_SUFFIX = ".seg"

_CURSOR = struct.Struct("<4sQQ")
_CURSOR_MAGIC = b"GSc1"
_CURSOR_BYTES = _CURSOR.size + 4


class SpoolFull(SinkError):
    """The spool cannot take this batch (policy ``block`` at `max_bytes`, or the disk
    refused the write); nothing of it was stored. `events` is the batch size."""

    def __init__(self, message: str, events: int) -> None:
        super().__init__(message)
        self.events = events


class SpoolLocked(RuntimeError):
    """Another DiskSpool (another daemon) has this directory open."""


@dataclass(slots=True)
class _Segment:
    """One segment file: its size on disk and its events not yet replayed."""

    number: int
    path: Path
    size_bytes: int
    events: int


class DiskSpool:
    """Append-only segment files with checksums; implements the pipeline's Spool."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = 256 * MiB,
        segment_bytes: int = 4 * MiB,
        policy: str = "drop_oldest",
        fsync: str = "batch",
        fsync_interval_s: float = 1.0,
        compress_level: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if policy not in FULL_POLICIES:
            raise ValueError(f"policy: {policy!r} is not one of {', '.join(FULL_POLICIES)}")
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync: {fsync!r} is not one of {', '.join(FSYNC_POLICIES)}")
        if segment_bytes <= HEADER_BYTES:
            raise ValueError(f"segment_bytes: {segment_bytes} is too small")
        if max_bytes < segment_bytes:
            raise ValueError(f"max_bytes: {max_bytes} is below segment_bytes ({segment_bytes})")
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level: {compress_level} is not a zlib level 0..9")
        if fsync_interval_s < 0:
            raise ValueError(f"fsync_interval_s: {fsync_interval_s} is negative")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.policy = policy
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.compress_level = compress_level
        self._clock = clock  # seconds, for the "interval" fsync policy
        self.dropped_events = 0
        self.corrupt_records = 0
        self.truncated_bytes = 0
        self._depth = 0
        self._bytes = 0
        self._segments: dict[int, _Segment] = {}  # ascending numbers: oldest first
        self._next_number = 1
        self._cursor_segment = 0
        self._cursor_offset = 0
        self._write_fd: int | None = None  # the newest segment, when this process appends
        self._read_fd: int | None = None
        self._read_number = 0
        self._peeked: tuple[list[StreamEntry], RecordHeader] | None = None
        self._peeked_dropped = False  # the peeked batch was dropped before its pop()
        self._last_sync_s = clock()
        self._closed = False

        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLocked(f"{self.directory} is in use by another process") from None
        self._cursor_fd = os.open(self.directory / "cursor", os.O_RDWR | os.O_CREAT, 0o600)
        self._recover()

    # -- the Spool protocol -------------------------------------------------
    def append(self, batch: Sequence[StreamEntry]) -> None:
        """Store a batch behind the ones already spooled.

        Raises SpoolFull (nothing stored) under policy ``block`` when the batch does
        not fit in `max_bytes`, and under either policy when the disk refuses it.
        """
        if not batch:
            return
        record = encode_record(batch, self.compress_level)
        if not self._make_room(len(record), len(batch)):
            return
        seg: _Segment | None = None
        try:
            seg = self._writable_segment(len(record))
            assert self._write_fd is not None
            _write_all(self._write_fd, record)
            if self.fsync == "batch" or (
                self.fsync == "interval"
                and self._clock() - self._last_sync_s >= self.fsync_interval_s
            ):
                self._sync_writer()
        except OSError as exc:
            # ENOSPC/EIO: cut the partial record so the segment stays well formed.
            if seg is not None and self._write_fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._write_fd, seg.size_bytes)
            raise SpoolFull(f"spool {self.directory}: {exc.strerror}", len(batch)) from None
        seg.size_bytes += len(record)
        seg.events += len(batch)
        self._bytes += len(record)
        self._depth += len(batch)

    def peek(self) -> list[StreamEntry] | None:
        """The oldest spooled batch (left in place), or None when the spool is empty."""
        while self._peeked is None:
            seg = self._read_segment()
            if seg is None:
                return None
            offset = self._cursor_offset
            if offset >= seg.size_bytes:
                if self._is_writing(seg):
                    return None
                self._finish_segment(seg)
                continue
            fd = self._reader(seg)
            header_bytes = os.pread(fd, HEADER_BYTES, offset)
            try:
                header = parse_header(header_bytes, 0, base=offset)
                if header.end > seg.size_bytes:
                    raise RecordError(offset, "record runs past the end of its segment")
            except RecordError as exc:
                self._resync(seg, fd, exc)
                continue
            payload = os.pread(fd, header.payload_len, offset + HEADER_BYTES)
            try:
                self._peeked = (decode_payload(header, payload), header)
                self._peeked_dropped = False
            except RecordError as exc:
                log.warning("spool %s: skipping %d events: %s", seg.path.name, header.n_events, exc)
                self.corrupt_records += 1
                self._consume(seg, header.end, header.n_events)
        return self._peeked[0]

    def pop(self) -> None:
        """Remove the batch the last `peek()` returned (after the caller wrote it).

        A no-op when the spool is empty, or when that batch was meanwhile dropped
        to make room (so a pop never removes a batch nobody has seen).
        """
        if self._peeked_dropped:
            self._peeked_dropped = False
            return
        if self._peeked is None and self.peek() is None:
            return
        assert self._peeked is not None
        batch, header = self._peeked
        self._peeked = None
        seg = self._segments[self._cursor_segment]
        self._consume(seg, header.end, len(batch))

    def depth(self) -> int:
        """Events spooled and not yet replayed (cheap; safe from any thread)."""
        return self._depth

    # -- the rest of the public surface -------------------------------------
    def bytes_on_disk(self) -> int:
        """Bytes of segment files in the directory (replayed parts of the oldest included)."""
        return self._bytes

    def close(self) -> None:
        """Make appended batches durable (unless fsync is "never") and release the directory."""
        if self._closed:
            return
        self._closed = True
        if self._write_fd is not None:
            if self.fsync != "never":
                os.fdatasync(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = None
        self._close_reader()
        self._save_cursor()
        os.close(self._cursor_fd)
        os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> DiskSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening ------------------------------------------------------------
    def _recover(self) -> None:
        """Rebuild the segment table from the directory after a clean stop or a crash."""
        cursor = self._load_cursor()
        numbers = sorted(
            int(p.name[: -len(SEGMENT_SUFFIX)])
            for p in self.directory.glob("*" + SEGMENT_SUFFIX)
            if p.name[: -len(SEGMENT_SUFFIX)].isdigit()
        )
        self._next_number = max([*numbers, cursor[0] if cursor else 0]) + 1
        for n in numbers:
            path = self._path(n)
            if cursor is not None and n < cursor[0]:
                path.unlink()  # replayed in full before the crash; deletion had not happened
                continue
            start = cursor[1] if cursor is not None and n == cursor[0] else 0
            seg = _Segment(n, path, path.stat().st_size, 0)
            if n == numbers[-1]:
                self._scan_newest(seg, start)
            else:
                seg.events = _count_events(seg, start)
            self._segments[n] = seg
            self._bytes += seg.size_bytes
            self._depth += seg.events
        if cursor is not None and cursor[0] in self._segments:
            self._cursor_segment = cursor[0]
            self._cursor_offset = min(cursor[1], self._segments[cursor[0]].size_bytes)
        else:
            self._cursor_segment = next(iter(self._segments), self._next_number)
            self._cursor_offset = 0
        if self._depth:
            log.info("spool %s: %d events in %d segments to replay",
                     self.directory, self._depth, len(self._segments))

    def _scan_newest(self, seg: _Segment, start: int) -> None:
        """Verify the newest segment fully, cut a torn tail, count events from `start`."""
        data = seg.path.read_bytes()
        good_end = 0
        events = 0
        for header in _walk(data, 0):
            payload = data[header.offset + HEADER_BYTES : header.end]
            if zlib.crc32(payload) == header.payload_crc:
                good_end = header.end
        for header in _walk(data[:good_end], min(start, good_end)):
            events += header.n_events
        if good_end < len(data):
            log.warning("spool %s: cutting %d bytes of torn tail at byte %d",
                        seg.path.name, len(data) - good_end, good_end)
            self.truncated_bytes += len(data) - good_end
            os.truncate(seg.path, good_end)
            seg.size_bytes = good_end
        seg.events = events

    # -- appending ----------------------------------------------------------
    def _make_room(self, record_bytes: int, n_events: int) -> bool:
        """Apply the full policy; False when the batch itself was dropped."""
        if self._bytes + record_bytes <= self.max_bytes:
            return True
        if self.policy == "block":
            raise SpoolFull(
                f"spool {self.directory} is full ({self._bytes} of {self.max_bytes} bytes)",
                n_events,
            )
        if record_bytes > self.max_bytes:
            log.warning("spool: dropping a batch of %d events larger than max_bytes", n_events)
            self.dropped_events += n_events
            return False
        while self._segments and self._bytes + record_bytes > self.max_bytes:
            oldest = next(iter(self._segments.values()))
            if oldest.events:
                log.warning("spool full: dropping %d events (%s)", oldest.events, oldest.path.name)
            self.dropped_events += oldest.events
            self._depth -= oldest.events
            oldest.events = 0
            self._finish_segment(oldest)
        return True

    def _writable_segment(self, record_bytes: int) -> _Segment:
        """The segment to append to, rolling to a new one when this record would overflow it."""
        if self._write_fd is not None:
            seg = next(reversed(self._segments.values()))
            if seg.size_bytes == 0 or seg.size_bytes + record_bytes <= self.segment_bytes:
                return seg
            self._seal()
        number = self._next_number
        self._next_number += 1
        seg = _Segment(number, self._path(number), 0, 0)
        self._write_fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                                 0o600)
        self._segments[number] = seg
        if len(self._segments) == 1:
            self._cursor_segment, self._cursor_offset = number, 0
        if self.fsync != "never":
            # The new name must survive a power cut too, not only the bytes in it.
            _fsync_directory(self.directory)
        return seg

    def _seal(self) -> None:
        """Stop appending to the newest segment; it is never written again."""
        assert self._write_fd is not None
        if self.fsync != "never":
            os.fdatasync(self._write_fd)
        os.close(self._write_fd)
        self._write_fd = None

    def _sync_writer(self) -> None:
        assert self._write_fd is not None
        os.fdatasync(self._write_fd)
        self._last_sync_s = self._clock()

    def _is_writing(self, seg: _Segment) -> bool:
        return self._write_fd is not None and seg.number == next(reversed(self._segments))

    # -- replaying ----------------------------------------------------------
    def _read_segment(self) -> _Segment | None:
        """The segment the cursor is in (the oldest), or None when there is none."""
        if not self._segments:
            return None
        first = next(iter(self._segments))
        if self._cursor_segment != first:
            self._cursor_segment, self._cursor_offset = first, 0
        return self._segments[first]

    def _reader(self, seg: _Segment) -> int:
        if self._read_fd is None or self._read_number != seg.number:
            self._close_reader()
            self._read_fd = os.open(seg.path, os.O_RDONLY)
            self._read_number = seg.number
        return self._read_fd

    def _close_reader(self) -> None:
        if self._read_fd is not None:
            os.close(self._read_fd)
            self._read_fd = None

    def _resync(self, seg: _Segment, fd: int, exc: RecordError) -> None:
        """Skip a damaged region: move the cursor to the next valid header in the segment."""
        offset = self._cursor_offset
        rest = os.pread(fd, seg.size_bytes - offset, offset)
        nxt = find_header(rest, 1, base=offset)
        resume = seg.size_bytes if nxt is None else nxt.offset
        log.warning("spool %s: skipping %d damaged bytes: %s", seg.path.name, resume - offset, exc)
        self.corrupt_records += 1
        self._consume(seg, resume, 0)

    def _consume(self, seg: _Segment, new_offset: int, n_events: int) -> None:
        """Advance the cursor past replayed (or skipped) events; tidy up finished segments."""
        seg.events -= n_events
        self._depth -= n_events
        self._cursor_offset = new_offset
        if new_offset >= seg.size_bytes:
            if not self._is_writing(seg):
                self._finish_segment(seg)
                return
            if len(self._segments) == 1:
                # Replay caught up with the writer: delete the spool rather than keep
                # a file of replayed batches; the next append starts a new segment.
                self._seal()
                self._finish_segment(seg)
                return
        self._save_cursor()

    def _finish_segment(self, seg: _Segment) -> None:
        """Delete a segment that was replayed to its end or dropped."""
        if self._is_writing(seg):
            self._seal()
        if self._read_fd is not None and self._read_number == seg.number:
            self._close_reader()
        if self._peeked is not None and self._cursor_segment == seg.number:
            self._peeked = None
            self._peeked_dropped = True
        del self._segments[seg.number]
        self._bytes -= seg.size_bytes
        seg.path.unlink(missing_ok=True)
        if self._cursor_segment == seg.number:
            self._cursor_segment = next(iter(self._segments), self._next_number)
            self._cursor_offset = 0
        self._save_cursor()

    # -- the cursor file ----------------------------------------------------
    def _save_cursor(self) -> None:
        # No fsync: a stale cursor only re-sends batches the Redis script will skip.
        body = _CURSOR.pack(_CURSOR_MAGIC, self._cursor_segment, self._cursor_offset)
        os.pwrite(self._cursor_fd, body + struct.pack("<I", zlib.crc32(body)), 0)

    def _load_cursor(self) -> tuple[int, int] | None:
        raw = os.pread(self._cursor_fd, _CURSOR_BYTES, 0)
        if len(raw) != _CURSOR_BYTES:
            return None
        magic, segment, offset = _CURSOR.unpack_from(raw)
        (crc,) = struct.unpack_from("<I", raw, _CURSOR.size)
        if magic != _CURSOR_MAGIC or crc != zlib.crc32(raw[: _CURSOR.size]):
            log.warning("spool %s: cursor file damaged; replaying from the oldest segment",
                        self.directory)
            return None
        return int(segment), int(offset)

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}{SEGMENT_SUFFIX}"


def _walk(data: bytes, start: int) -> list[RecordHeader]:
    """Headers of the records in `data` from `start`, resyncing past damaged regions.

    Replay (`DiskSpool.peek`) moves through a segment by exactly these steps, so the
    events counted here on open are the events replay will subtract.
    """
    headers = []
    pos = start
    while pos < len(data):
        try:
            header = parse_header(data, pos)
        except RecordError:
            header = None
        if header is None or header.end > len(data):
            header = find_header(data, pos + 1)
            if header is None:
                break
        headers.append(header)
        pos = header.end
    return headers


def _count_events(seg: _Segment, start: int) -> int:
    """Events from `start` in a sealed segment, reading 20 bytes per record."""
    events = 0
    pos = start
    with seg.path.open("rb") as f:
        while pos < seg.size_bytes:
            f.seek(pos)
            try:
                header = parse_header(f.read(HEADER_BYTES), 0, base=pos)
            except RecordError:
                header = None
            if header is None or header.end > seg.size_bytes:
                # A damaged region: scan the rest the way replay will resync through it.
                f.seek(pos)
                return events + sum(h.n_events for h in _walk(f.read(), 0))
            events += header.n_events
            pos = header.end
    return events


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
