"""The shared reconnect backoff: doubling to a cap, ±50 % jitter, reset to the start."""

from __future__ import annotations

from hardware.backoff import Backoff


def test_delay_doubles_up_to_the_cap_and_the_wait_is_jittered_around_it() -> None:
    draws = iter([0.0, 0.5, 0.999, 0.5, 0.5])
    backoff = Backoff(0.5, 3.0, lambda: next(draws))
    waits = [backoff.next_wait_s() for _ in range(5)]
    # delays 0.5, 1, 2, 3 (capped), 3; wait = delay * (0.5 + draw)
    assert waits == [0.25, 1.0, 2.0 * 1.499, 3.0, 3.0]


def test_reset_starts_over_at_the_initial_delay() -> None:
    backoff = Backoff(1.0, 60.0, lambda: 0.5)
    for _ in range(4):
        backoff.next_wait_s()
    assert backoff.delay_s == 16.0
    backoff.reset()
    assert backoff.next_wait_s() == 1.0
    assert backoff.delay_s == 2.0
