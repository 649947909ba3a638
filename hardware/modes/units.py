"""Unit conversions of Mode S fields (feet, knots, feet per minute) to SI.

Mode S and ADS-B carry aviation units; events carry SI (design §2). One place for
the factors (all exact by definition) and for the "unknown stays unknown" rule::

    altitude   ft  x 0.3048          -> m
    speed      kt  x 1852 / 3600     -> m/s   (one knot is 1852 m per hour)
    vert. rate fpm x 0.3048 / 60     -> m/s
"""

from __future__ import annotations

__all__ = ["FPM_TO_MPS", "FT_TO_M", "KT_TO_MPS", "fpm_to_mps", "ft_to_m", "kt_to_mps"]

#: Exact: the international foot.
FT_TO_M = 0.3048
#: Exact: one knot is 1852 m per hour.
KT_TO_MPS = 1852.0 / 3600.0
FPM_TO_MPS = FT_TO_M / 60.0


def ft_to_m(feet: float | None) -> float | None:
    """Metres of a height in feet; None stays None (field not known)."""
    return None if feet is None else feet * FT_TO_M


def kt_to_mps(knots: float | None) -> float | None:
    """Metres per second of a speed in knots; None stays None."""
    return None if knots is None else knots * KT_TO_MPS


def fpm_to_mps(feet_per_minute: float | None) -> float | None:
    """Metres per second of a vertical rate in feet per minute; None stays None."""
    return None if feet_per_minute is None else feet_per_minute * FPM_TO_MPS
