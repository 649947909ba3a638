"""Time maps: time since the previous event against time to the next."""

from __future__ import annotations

import numpy as np

from daemon.viewer.timemap import time_map


def test_periodic_events_sit_on_the_diagonal_at_their_period() -> None:
    before, after = time_map(np.arange(0, 60_000, 5_000))
    assert np.allclose(before, 5.0)
    assert np.allclose(after, 5.0)
    assert before.size == 10


def test_points_pair_each_gap_with_the_next_one_in_time_order() -> None:
    t_ms = [10_000, 0, 1_000, 1_500]  # unsorted: 0, 1000, 1500, 10000
    before, after = time_map(t_ms)
    assert before.tolist() == [1.0, 0.5]
    assert after.tolist() == [0.5, 8.5]


def test_simultaneous_events_are_raised_to_the_floor() -> None:
    before, after = time_map([0, 0, 0, 2000], floor_s=0.001)
    assert before.tolist() == [0.001, 0.001]
    assert after.tolist() == [0.001, 2.0]


def test_fewer_than_three_events_give_no_points() -> None:
    for t in ([], [1], [1, 2]):
        before, after = time_map(t)
        assert before.size == after.size == 0
