"""The cyclic garbage collector's settings for a long-running daemon (issue 8).

Per event the pipeline allocates a few container objects (queue items, entries,
value tuples) that die young and almost never form cycles (reference counting
frees them). At CPython's default gen-0 threshold (700 net allocations) that
garbage sets off a collection every ~100 events, and each one walks the young
objects: 5-7 µs per event in all on the bench's 2-core box (bench/daemon_gc.py,
which times the GC through gc.callbacks). A gen-0 threshold of 20 000 runs it
every few thousand events for ~1 µs per event, with the same peak RSS; the few
cycles there are live a little longer.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (20_000, 20, 20)
"""gc.set_threshold's (gen0, gen1, gen2) for the daemon's steady state."""


def settle_after_startup() -> None:
    """Once startup has built what lives as long as the process (modules, config,
    lookup tables, clients): collect its garbage, freeze the survivors out of the
    cyclic GC's reach (so full collections scan only what came later) and raise
    the thresholds to `GC_THRESHOLDS`."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
