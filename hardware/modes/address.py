"""Aircraft addresses as the aircraft table and the events carry them.

A Mode S address is 24 bits. DF18 also carries addresses that are not ICAO
addresses: anonymous ADS-B (CF 1), TIS-B tracks of non-ICAO targets (CF 5) and, when
their IMF bit is set, fine TIS-B (CF 2) and ADS-R (CF 6) tracks. Such a number can
equal the ICAO address of an unrelated aircraft, so it is kept apart with bit 24 set
(`NON_ICAO`) and written with a leading "~", as readsb and dump1090-fa do.
"""

from __future__ import annotations

__all__ = ["NON_ICAO", "address_hex", "track_address"]

NON_ICAO = 1 << 24
"""Set on an address that is not an ICAO address."""


def track_address(icao: int, non_icao: bool) -> int:
    """The aircraft-table key of a 24-bit address: `NON_ICAO` set for a non-ICAO one."""
    return icao | NON_ICAO if non_icao else icao


def address_hex(address: int) -> str:
    """Six upper-case hex digits, after a "~" when `NON_ICAO` is set."""
    prefix = "~" if address & NON_ICAO else ""
    return f"{prefix}{address & 0xFFFFFF:06X}"
