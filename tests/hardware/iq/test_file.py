"""u8 IQ file source: deterministic block times, loop, real-time pacing."""

from __future__ import annotations

import time
from pathlib import Path

from hardware.iq.file import IqFileSource


def write(tmp_path: Path, n_samples: int) -> Path:
    path = tmp_path / "iq.bin"
    path.write_bytes(bytes(i % 256 for i in range(2 * n_samples)))
    return path


def test_blocks_cover_the_file_with_times_from_the_start_time(tmp_path: Path) -> None:
    path = write(tmp_path, 2500)
    src = IqFileSource(path, 2_000_000, block_samples=1000, start_time_s=1000.0)
    blocks = []
    while (b := src.read_block()) is not None:
        blocks.append(b)
    src.close()
    assert [b.first_sample for b in blocks] == [0, 1000, 2000]
    assert [b.n_samples for b in blocks] == [1000, 1000, 500]
    assert [b.host_time_s for b in blocks] == [1000.0, 1000.0005, 1000.001]
    assert b"".join(b.iq.tobytes() for b in blocks) == path.read_bytes()


def test_default_start_time_is_the_file_mtime(tmp_path: Path) -> None:
    path = write(tmp_path, 10)
    src = IqFileSource(path)
    block = src.read_block()
    src.close()
    assert block is not None and block.host_time_s == path.stat().st_mtime


def test_loop_keeps_counting_samples_and_marks_each_new_pass(tmp_path: Path) -> None:
    path = write(tmp_path, 1500)
    src = IqFileSource(path, block_samples=1000, loop=True, start_time_s=0.0)
    blocks = [src.read_block() for _ in range(5)]
    src.close()
    assert all(b is not None for b in blocks)
    firsts = [b.first_sample for b in blocks if b is not None]
    marks = [b.discontinuity for b in blocks if b is not None]
    assert firsts == [0, 1000, 1500, 2500, 3000]
    assert marks == [False, False, True, False, True]
    assert src.passes == 2


def test_realtime_returns_blocks_no_faster_than_the_sample_rate(tmp_path: Path) -> None:
    path = write(tmp_path, 100_000)  # 50 ms at 2 MS/s
    src = IqFileSource(path, 2_000_000, block_samples=10_000, realtime=True)
    started = time.monotonic()
    while src.read_block() is not None:
        pass
    src.close()
    assert time.monotonic() - started >= 0.045
