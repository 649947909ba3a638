"""Time maps (Watson 2010): time since the previous event against time to the next.

For event times t_0 < t_1 < … < t_n, each inner event i gives the point

    x_i = t_i - t_(i-1)      (seconds since the previous event)
    y_i = t_(i+1) - t_i      (seconds until the next event)

drawn on log-log axes. Regular activity sits on the diagonal at its period;
bursts fill the lower-left corner; a burst's first event lies far right and
low, its last one high and left. Gaps of zero (two events in the same
millisecond) cannot be drawn on log axes and are raised to `floor_s`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def time_map(
    t_ms: npt.ArrayLike, floor_s: float = 0.001
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(before_s, after_s) per inner event of `t_ms` (epoch ms, any order), gaps >= floor_s."""
    t = np.sort(np.asarray(t_ms, dtype=np.float64))
    if t.size < 3:
        empty = np.zeros(0, dtype=np.float64)
        return empty, empty
    gaps_s = np.maximum(np.diff(t) / 1000.0, floor_s)
    return gaps_s[:-1], gaps_s[1:]
