"""The daemon's GC settings: startup's survivors frozen, the raised thresholds in force."""

from __future__ import annotations

import gc

from daemon.gc_settings import GC_THRESHOLDS, settle_after_startup


def test_settle_after_startup_freezes_survivors_and_raises_the_thresholds() -> None:
    saved = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    survivor = [object()]  # a tracked container that outlives the settling
    try:
        settle_after_startup()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] > 700
        assert gc.get_freeze_count() > 0
        assert not any(o is survivor for o in gc.get_objects())  # frozen: out of the GC's view
    finally:
        gc.unfreeze()
        gc.set_threshold(*saved)
