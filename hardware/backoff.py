"""Exponential backoff with jitter, for the loops that reconnect to a device or a server.

    attempt:      1          2            3            …   n
    delay d:      initial    2·initial    4·initial    …   min(2^(n-1)·initial, max)
    wait:         d · U[0.5, 1.5)   (±50 % so many daemons replugged or restarted
                                     together do not retry in lockstep)

`reset()` starts over at `initial_s`; loops call it once a connection delivered
data (or a run went on for a long while), so a long-lived link that drops is
retried quickly again. Used by the serial reader and writer here and by the
daemon's network feeds, IQ inputs and source supervisor.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """The delays of one retry loop (module docstring). Not thread-safe."""

    def __init__(self, initial_s: float, max_s: float,
                 uniform01: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.delay_s = initial_s
        self._uniform01 = uniform01

    def next_wait_s(self) -> float:
        """Seconds to wait before the next attempt (jittered); the delay behind it doubles."""
        wait_s = self.delay_s * (0.5 + self._uniform01())
        self.delay_s = min(self.delay_s * 2, self.max_s)
        return wait_s

    def reset(self) -> None:
        """Start over at `initial_s` (the last attempt succeeded)."""
        self.delay_s = self.initial_s
