"""glibc malloc tuning for the Mode S receiver's numpy temporaries (issue 3 speed).

Every receiver batch (2^20 samples by default) allocates and frees a few dozen
numpy temporaries of up to ~2.5 MB each. Under glibc's defaults the heap top is
trimmed (brk shrinks) once a batch has freed them and grown again by the next
batch, whose first touch of each page is a minor fault the kernel must zero-fill:

    bench/modes_demod.py, modes1.bin x100, per copy of the recording (~5 ms CPU):
                          main thread (the bench)     a source thread (the daemon)
    glibc defaults        40-52 minor faults,         13 minor faults,
                          0.08-0.24 ms system time    0.04-0.12 ms system time
    tune_malloc()         0 faults, ~0 system time    0 faults, ~0 system time

    (faults from resource.getrusage, system time in 4 ms ticks over 100 copies.)

End to end the host's CPU time drifts by 20-40 % between processes, so the
gain is known only roughly. Alternating processes (ABBA), modes1.bin x100:
  - bench default vs --plain (GC and malloc settings), 32 rounds: faster in 23
    of 32, paired median +6 % x real time (29x -> 33x median run), ratio to the
    C reference 0.575 -> 0.61 (median), system time 0.116 -> 0.022 ms per copy;
  - GC settings alone vs GC + this tuning, 16 rounds: faster in 13 of 16 (paired
    median -15 % CPU, a magnitude the noise does not let us trust).
The saving that is certain is the system time (~2 % of ~5 ms per copy); the GC
settings save another ~0.7 % (3.3 ms of GC per 100 copies, measured by gc.callbacks).

The two settings, both process-wide (every arena) and fixed, with no config:

- ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's largest allowed value on 64-bit): blocks
  below it come from the heap, whose freed memory is reused, instead of a fresh
  mmap each. The largest per-batch temporary is ~2.5 MB at the default batch
  (strace with a low threshold) and, scaled, ~20 MB at the largest configurable
  one (2^23 samples). Setting it disables glibc's dynamic threshold (which
  raises the threshold to the size of each mmapped block freed, up to 32 MiB,
  and the trim threshold to twice that).
  That is also why the trim threshold must be set with it: setting either alone
  turns the dynamic adjustment off and leaves the other at its 128 KiB default.
- ``M_TRIM_THRESHOLD`` = 64 MiB: the heap top is returned to the kernel only when
  more than this is free there. At the default batch 16 MiB already gives zero
  faults and 8 MiB does not (30 faults per copy); 64 MiB leaves room for 4x larger
  batches. At the largest batch (2^23) in the main thread the faults fall from
  ~440 to ~37 per copy (128 MiB would reach 0). In a thread's arena at 2^23 no
  setting helps (its heaps are at most 64 MiB, so ~20 MB blocks come and go with
  whole heaps): 20 faults per copy by default, 50 tuned, ~0.3 ms either way.

``M_TOP_PAD`` (extra heap grown per brk) is left at its default: 8 MiB instead of
128 KiB saved ~20 brk calls over a whole 6-run bench process and no faults.

Memory cost: the heap keeps its peak size (up to 64 MiB of it free) instead of
shrinking between batches; peak RSS of the bench was unchanged (124-126 MiB).
Where the C library has no `mallopt` (musl, macOS) `tune_malloc` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MMAP_THRESHOLD_BYTES", "TRIM_THRESHOLD_BYTES", "tune_malloc"]

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD_BYTES = 32 << 20
"""Blocks below this come from the heap (glibc's maximum on 64-bit hosts)."""
TRIM_THRESHOLD_BYTES = 64 << 20
"""Free memory at the heap top kept before trimming it back to the kernel."""


def tune_malloc(libc: ctypes.CDLL | None = None) -> bool:
    """Set glibc's mmap and trim thresholds for the receiver's batch temporaries.

    `libc` is the C library to call (default: the one `ctypes.util.find_library`
    names). Returns True when both settings were accepted, False (logged at debug,
    nothing changed) where there is no C library or it has no `mallopt`. Safe to
    call again: the same values are set again."""
    if libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            log.debug("malloc tuning skipped: no C library found")
            return False
        try:
            libc = ctypes.CDLL(name)
        except OSError as exc:
            log.debug("malloc tuning skipped: cannot load %s: %s", name, exc)
            return False
    try:
        mallopt = libc.mallopt
    except AttributeError:
        log.debug("malloc tuning skipped: %s has no mallopt (not glibc)", libc._name)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success, 0 for a value it rejects.
    accepted = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
    if not accepted:
        log.debug("malloc tuning: %s rejected the thresholds", libc._name)
    return accepted
