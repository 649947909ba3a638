"""glibc malloc tuning: accepted by glibc, effective, repeatable, a no-op without mallopt."""

from __future__ import annotations

import ctypes
import json
import logging
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.malloc_settings import tune_malloc

REPO = Path(__file__).resolve().parents[2]
GLIBC = platform.libc_ver()[0] == "glibc"

# Run in a fresh interpreter (glibc's defaults, no numpy): tune or not, then report
# whether blocks just under and over the mmap threshold were mmapped, using
# mallinfo2's hblkhd (bytes in mmapped blocks).
PROBE = """
import ctypes, ctypes.util, json, sys
from daemon.malloc_settings import MMAP_THRESHOLD_BYTES, tune_malloc

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
applied = [tune_malloc(), tune_malloc()] if sys.argv[1] == "tune" else []

def mmapped(size):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    grew = libc.mallinfo2().hblkhd > before
    libc.free(block)
    return grew

print(json.dumps({
    "applied": applied,
    "under": mmapped(MMAP_THRESHOLD_BYTES - (1 << 20)),
    "over": mmapped(MMAP_THRESHOLD_BYTES + (1 << 20)),
}))
"""


def probe(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], cwd=REPO, capture_output=True, text=True,
        check=True, timeout=60,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(not GLIBC, reason="mallopt and mallinfo2 are glibc's")
def test_tuning_is_accepted_twice_and_serves_blocks_below_the_threshold_from_the_heap() -> None:
    default = probe("default")
    tuned = probe("tune")
    assert default["under"] is True  # glibc's 128 KiB default threshold mmaps it
    assert tuned["applied"] == [True, True]
    assert tuned["under"] is False
    assert tuned["over"] is True


def dynamic_loader() -> ctypes.CDLL:
    """The dynamic loader mapped into this process: a library without mallopt
    (and with no dependencies through which dlsym could find libc's)."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split()[-1]
        if "/ld-linux" in path:
            return ctypes.CDLL(path)
    pytest.skip("no ld-linux loader mapped (not glibc on Linux)")


@pytest.mark.skipif(not GLIBC, reason="the glibc dynamic loader serves as the library")
def test_a_c_library_without_mallopt_is_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    loader = dynamic_loader()
    assert not hasattr(loader, "mallopt")
    with caplog.at_level(logging.DEBUG, logger="daemon.malloc_settings"):
        assert tune_malloc(loader) is False
    assert any("no mallopt" in record.getMessage() for record in caplog.records)

