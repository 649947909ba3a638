"""The disk spool on real files: order, reopen, torn tails, corruption, size policies."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.entry import StreamEntry
from sinks.spool import DiskSpool, SpoolFull, SpoolLocked
from sinks.spool_format import HEADER_BYTES, encode_record

REPO = Path(__file__).resolve().parents[2]


def make_batch(first_seq: int, n: int, producer: str = "quakes") -> list[StreamEntry]:
    """`n` entries with consecutive sequences from `first_seq` (distinct contents)."""
    out = []
    for seq in range(first_seq, first_seq + n):
        record = {"id": f"test:{seq}", "src": producer, "lat": -30.03, "lon": -51.23,
                  "data": {"mag": seq / 10, "place": "Pôrto Alegre", "tags": [1, None]}}
        out.append(StreamEntry(
            producer=producer, seq=seq, src=producer, cell="951977",
            values=("1", f"test:{seq}", producer, "quake", str(1_664_420_000_000 + seq)),
            record=record, memo=("us6000ip57", str(seq)) if seq % 3 == 0 else None,
        ))
    return out


def batches(count: int, size: int = 4) -> list[list[StreamEntry]]:
    return [make_batch(1 + i * size, size) for i in range(count)]


def drain(spool: DiskSpool) -> list[list[StreamEntry]]:
    """Replay everything the way the pipeline does: peek, (write), pop."""
    out = []
    while (batch := spool.peek()) is not None:
        out.append(batch)
        spool.pop()
    return out


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


@pytest.mark.parametrize("fsync", ["batch", "interval", "never"])
def test_batches_replay_in_order_across_segment_rolls(tmp_path: Path, fsync: str) -> None:
    written = batches(40)
    spool = DiskSpool(tmp_path / "spool", max_bytes=1 << 20, segment_bytes=1024, fsync=fsync)
    for batch in written:
        spool.append(batch)
    assert spool.depth() == 160
    assert len(segments(tmp_path / "spool")) > 3
    assert spool.bytes_on_disk() == sum(p.stat().st_size for p in segments(tmp_path / "spool"))

    assert drain(spool) == written
    assert spool.depth() == 0
    assert spool.bytes_on_disk() == 0
    assert segments(tmp_path / "spool") == []
    spool.close()


@pytest.mark.parametrize("compress_level", [0, 1, 9])
def test_entries_keep_every_field_exactly(tmp_path: Path, compress_level: int) -> None:
    batch = make_batch(1, 6)
    with DiskSpool(tmp_path, compress_level=compress_level) as spool:
        spool.append(batch)
        got = spool.peek()
    assert got == batch
    assert got is not None
    assert isinstance(got[0].values, tuple)
    assert got[2].memo == ("us6000ip57", "3")
    assert got[1].memo is None


def test_peek_leaves_the_batch_in_place(tmp_path: Path) -> None:
    with DiskSpool(tmp_path) as spool:
        spool.append(make_batch(1, 3))
        spool.append(make_batch(4, 2))
        assert spool.peek() == spool.peek() == make_batch(1, 3)
        assert spool.depth() == 5
        spool.pop()
        assert spool.peek() == make_batch(4, 2)
        assert spool.depth() == 2


def test_appends_while_replaying_come_after_older_batches(tmp_path: Path) -> None:
    written = batches(30)
    got = []
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        for i, batch in enumerate(written):
            spool.append(batch)
            if i % 3 == 2:
                got.append(spool.peek())
                spool.pop()
        got += drain(spool)
    assert got == written


def test_reopen_resumes_after_the_popped_batches(tmp_path: Path) -> None:
    written = batches(30)
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        for batch in written:
            spool.append(batch)
        for _ in range(11):
            spool.pop()
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        assert spool.depth() == 19 * 4
        more = make_batch(1000, 5)
        spool.append(more)
        assert drain(spool) == [*written[11:], more]


def test_killed_process_loses_nothing_and_resends_at_most_the_unrecorded_pops(
    tmp_path: Path,
) -> None:
    child = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from sinks.spool import DiskSpool
        from test_spool import batches
        spool = DiskSpool(Path({str(tmp_path)!r}), segment_bytes=4096)
        for batch in batches(30):
            spool.append(batch)
        for _ in range(11):
            spool.peek()
            spool.pop()
        spool.peek()  # the 12th batch was peeked (being written to Redis) when killed
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60)
    assert proc.returncode == -9, proc.stderr.decode()
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        assert drain(spool) == batches(30)[11:]


def test_stale_cursor_resends_but_never_skips(tmp_path: Path) -> None:
    written = batches(20)
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        for batch in written:
            spool.append(batch)
        for _ in range(3):
            spool.pop()
        old_cursor = (tmp_path / "cursor").read_bytes()
        for _ in range(9):
            spool.pop()
    # A power cut kept an old cursor (it is never fsynced) but the pops happened.
    (tmp_path / "cursor").write_bytes(old_cursor)
    with DiskSpool(tmp_path, segment_bytes=4096) as spool:
        replayed = drain(spool)
    # Some popped batches come again (Redis skips them); none of the rest is missing.
    first = written.index(replayed[0])
    assert 3 <= first <= 12
    assert replayed == written[first:]


def test_damaged_cursor_replays_from_the_oldest_segment(tmp_path: Path) -> None:
    written = batches(5)
    with DiskSpool(tmp_path) as spool:
        for batch in written:
            spool.append(batch)
        spool.pop()
    (tmp_path / "cursor").write_bytes(b"\xff" * 24)
    with DiskSpool(tmp_path) as spool:
        assert drain(spool) == written


def test_torn_tail_at_every_offset_opens_and_keeps_the_records_before(tmp_path: Path) -> None:
    written = [make_batch(1, 2), make_batch(3, 1), make_batch(4, 2)]
    src = tmp_path / "src"
    with DiskSpool(src) as spool:
        for batch in written:
            spool.append(batch)
        (seg,) = segments(src)
        data = seg.read_bytes()
    last_start = len(data) - len(encode_record(written[-1]))
    for cut in range(last_start, len(data)):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / seg.name).write_bytes(data[:cut])
        with DiskSpool(d) as spool:
            assert spool.truncated_bytes == cut - last_start, cut
            assert (d / seg.name).stat().st_size == last_start, cut
            assert spool.depth() == 3, cut
            assert drain(spool) == written[:2], cut
            assert spool.corrupt_records == 0


@pytest.mark.parametrize("fill", [b"\x00", b"\xff"])
def test_zero_filled_tail_after_power_cut_is_cut_away(tmp_path: Path, fill: bytes) -> None:
    # Delayed allocation can leave the file at its new size with the data blocks unwritten.
    written = batches(3)
    with DiskSpool(tmp_path) as spool:
        for batch in written:
            spool.append(batch)
    (seg,) = segments(tmp_path)
    data = bytearray(seg.read_bytes())
    last = len(encode_record(written[-1]))
    for keep_header in (False, True):
        start = len(data) - last + (HEADER_BYTES if keep_header else 0)
        damaged = bytes(data[:start]) + fill * (len(data) - start)
        seg.write_bytes(damaged)
        with DiskSpool(tmp_path) as spool:
            assert spool.truncated_bytes == last
            assert spool.depth() == 8
            assert spool.peek() == written[0]
        seg.write_bytes(bytes(data))
        (tmp_path / "cursor").unlink()


def _record_offsets(written: list[list[StreamEntry]]) -> list[int]:
    offsets, pos = [], 0
    for batch in written:
        offsets.append(pos)
        pos += len(encode_record(batch))
    return offsets


@pytest.mark.parametrize("where", ["magic", "length", "payload_crc", "payload"])
@pytest.mark.parametrize("newest", [True, False], ids=["newest-segment", "older-segment"])
def test_corrupt_record_in_the_middle_is_skipped_and_counted(
    tmp_path: Path, where: str, newest: bool
) -> None:
    written = batches(5)
    with DiskSpool(tmp_path) as spool:
        for batch in written:
            spool.append(batch)
    (seg,) = segments(tmp_path)
    data = bytearray(seg.read_bytes())
    at = _record_offsets(written)[2]
    index = {"magic": at, "length": at + 5, "payload_crc": at + 13, "payload": at + 40}[where]
    data[index] ^= 0x5A
    seg.write_bytes(bytes(data))
    if not newest:
        # A later segment makes the damaged one an older, header-walked one.
        with DiskSpool(tmp_path) as spool:
            spool.append(make_batch(100, 4))
        written = [*written, make_batch(100, 4)]
    with DiskSpool(tmp_path) as spool:
        assert spool.truncated_bytes == 0
        replayed = drain(spool)
        assert replayed == written[:2] + written[3:]
        assert spool.corrupt_records == 1
        assert spool.depth() == 0


def test_garbage_between_records_is_skipped_by_resync(tmp_path: Path) -> None:
    written = batches(4)
    records = [encode_record(b) for b in written]
    garbage = b"GSp1" + os.urandom(300) + b"GSp1\x00\x00"
    (tmp_path / "000000000001.seg").write_bytes(records[0] + garbage + b"".join(records[1:]))
    with DiskSpool(tmp_path) as spool:
        assert spool.depth() == 16
        assert drain(spool) == written
        assert spool.corrupt_records == 1


def test_drop_oldest_deletes_whole_segments_and_counts_every_event(tmp_path: Path) -> None:
    written = batches(200)
    max_bytes = 4 * 4096
    with DiskSpool(tmp_path, max_bytes=max_bytes, segment_bytes=4096, fsync="never") as spool:
        for batch in written:
            spool.append(batch)
            assert spool.bytes_on_disk() <= max_bytes
        assert len(segments(tmp_path)) <= 4
        replayed = drain(spool)
        dropped = spool.dropped_events
    assert dropped > 0
    assert dropped + sum(len(b) for b in replayed) == 200 * 4
    # What survives is the newest part, in order.
    assert replayed == written[len(written) - len(replayed):]


def test_drop_oldest_while_replaying_does_not_count_popped_events(tmp_path: Path) -> None:
    written = batches(200)
    with DiskSpool(tmp_path, max_bytes=4 * 4096, segment_bytes=4096, fsync="never") as spool:
        popped = []
        for i, batch in enumerate(written):
            spool.append(batch)
            if i % 2:
                got = spool.peek()
                assert got is not None
                popped.append(got)
                spool.pop()
        popped += drain(spool)
        assert spool.dropped_events + sum(len(b) for b in popped) == 800
        seqs = [e.seq for b in popped for e in b]
        assert seqs == sorted(seqs)


def test_pop_after_the_peeked_batch_was_dropped_removes_nothing_else(tmp_path: Path) -> None:
    written = batches(200)
    with DiskSpool(tmp_path, max_bytes=2 * 1024, segment_bytes=1024, fsync="never") as spool:
        spool.append(written[0])
        assert spool.peek() == written[0]  # being written to Redis…
        i = 1
        while spool.dropped_events == 0:  # …while appends push it out
            spool.append(written[i])
            i += 1
        depth = spool.depth()
        spool.pop()  # the caller's pop for written[0] must not take a newer batch
        assert spool.depth() == depth
        replayed = drain(spool)
    assert sum(len(b) for b in replayed) == depth
    assert replayed == written[i - len(replayed) : i]


def test_batch_larger_than_the_whole_spool_is_dropped_and_counted(tmp_path: Path) -> None:
    with DiskSpool(tmp_path, max_bytes=4096, segment_bytes=4096, compress_level=0) as spool:
        spool.append(make_batch(1, 200))
        assert spool.depth() == 0
        assert spool.dropped_events == 200


def test_block_policy_refuses_without_storing_and_accepts_after_replay(tmp_path: Path) -> None:
    with DiskSpool(tmp_path, max_bytes=3 * 4096, segment_bytes=4096, policy="block") as spool:
        accepted = []
        for batch in batches(200):
            try:
                spool.append(batch)
            except SpoolFull as exc:
                assert exc.events == len(batch)
                refused = batch
                break
            accepted.append(batch)
        else:
            pytest.fail("the spool never filled")
        depth, size = spool.depth(), spool.bytes_on_disk()
        with pytest.raises(SpoolFull):
            spool.append(refused)
        assert (spool.depth(), spool.bytes_on_disk()) == (depth, size)
        assert spool.dropped_events == 0
        # Replaying the oldest segment frees room; the refused batch then goes in last.
        replayed = []
        while spool.bytes_on_disk() == size:
            replayed.append(spool.peek())
            spool.pop()
        spool.append(refused)
        assert replayed + drain(spool) == [*accepted, refused]


def test_disk_refusing_a_write_raises_spool_full_and_leaves_no_partial_record(
    tmp_path: Path,
) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG past 3000 bytes, like a full disk.
    child = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path[:0] = [{str(REPO)!r}, {str(Path(__file__).parent)!r}]
        from pathlib import Path
        from sinks.spool import DiskSpool, SpoolFull
        from test_spool import batches
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
        spool = DiskSpool(Path({str(tmp_path)!r}), compress_level=0)
        for i, batch in enumerate(batches(50)):
            try:
                spool.append(batch)
            except SpoolFull as exc:
                print(i, exc.events)
                break
        spool.close()
    """)
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    accepted, refused_events = map(int, proc.stdout.split())
    assert refused_events == 4
    with DiskSpool(tmp_path) as spool:
        assert spool.truncated_bytes == 0
        assert drain(spool) == batches(50)[:accepted]


def test_second_spool_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with DiskSpool(tmp_path), pytest.raises(SpoolLocked):
        DiskSpool(tmp_path)
    DiskSpool(tmp_path).close()  # released on close


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"policy": "drop_newest"}, "policy"), ({"fsync": "always"}, "fsync"),
     ({"max_bytes": 1000, "segment_bytes": 4096}, "max_bytes")],
)
def test_bad_settings_name_the_parameter(
    tmp_path: Path, kwargs: dict[str, object], key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        DiskSpool(tmp_path, **kwargs)  # type: ignore[arg-type]


# Operations for the property test: ("append", n events) | ("pop", 0) | ("reopen", 0).
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(1, 12)),
        st.tuples(st.just("pop"), st.just(0)),
        st.tuples(st.just("reopen"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops=_ops, policy=st.sampled_from(["drop_oldest", "block"]))
def test_any_mix_of_appends_pops_and_reopens_keeps_order_and_accounts_for_every_event(
    ops: list[tuple[str, int]], policy: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)

        def open_spool() -> DiskSpool:
            return DiskSpool(directory, max_bytes=3 * 1024, segment_bytes=1024,
                             policy=policy, fsync="never")

        spool = open_spool()
        next_seq, refused, dropped = 1, 0, 0
        accepted: list[list[StreamEntry]] = []
        popped: list[list[StreamEntry]] = []
        for op in ops:
            if op[0] == "append":
                batch = make_batch(next_seq, op[1])
                next_seq += op[1]
                try:
                    spool.append(batch)
                    accepted.append(batch)
                except SpoolFull:
                    refused += 1
            elif op[0] == "pop":
                if (got := spool.peek()) is not None:
                    popped.append(got)
                spool.pop()
            else:
                dropped += spool.dropped_events
                spool.close()
                spool = open_spool()
            assert spool.bytes_on_disk() <= 3 * 1024
            assert spool.bytes_on_disk() == sum(p.stat().st_size for p in segments(directory))
        popped += drain(spool)
        dropped += spool.dropped_events
        spool.close()
    # Whatever came back is a subsequence of what went in, in order, batches intact…
    it = iter(accepted)
    assert all(any(b == a for a in it) for b in popped)
    # …and every accepted event either came back or was counted as dropped.
    assert sum(len(b) for b in popped) + dropped == sum(len(b) for b in accepted)
    if policy == "block":
        assert popped == accepted and dropped == 0
