"""Decide whether a demodulated Mode S candidate frame can be trusted.

The demodulator calls `check_frame` for every candidate. The parity field (last 24
bits) is checked with the rule of the frame's downlink format::

    DF   bits  parity field holds             accepted when                     crc
    ---  ----  -----------------------------  --------------------------------  -------
    11   56    CRC ^ IID (II/SI, 7 bits)       residual == 0                     "ok"
                                              0 < residual < 0x80,
                                                address known                   "iid"
                                              1-bit repair -> residual 0,
                                                address known                   "fixed"
    17   112   CRC                            residual == 0                     "ok"
    18   112   CRC                            repaired (<= max_fix_bits),
                                                address known                   "fixed"
    0,4,5 56   CRC ^ address (AP)             residual is a known address       "ap"
    16,20,21,24
         112

Anything else (other DFs, a length that does not fit the DF, unrepairable parity) is
rejected with None: a failed check is ordinary traffic, not an exception.

Address policy (what keeps phantom aircraft out; modelled on readsb):

- An `AddressBook` holds addresses confirmed by *clean* frames that carry their
  address in clear with a full 24-bit CRC: DF11 with IID 0, DF17, and DF18 with CF 0
  (an ADS-B device using its own ICAO address). Each confirmation lasts `ttl_s`
  seconds of sample time.
- DF11 with a non-zero IID is accepted only when its address is already known, and it
  does not confirm: the IID eats 7 bits of parity, so a random frame passes with
  p = 2^-17, and on busy air hundreds of stray rows a second reach this check
  (readsb and dump1090-fa score such a frame -1 unless its address is known).
- DF18 with CF != 0 (non-ICAO, TIS-B, ADS-R) is accepted when clean but does not
  confirm: those addresses do not belong to transponders we can hear.
- A *repaired* DF11/17/18 is accepted only when its address (after repair) is already
  known, and it does not confirm. A one-bit repair can always "succeed" on noise, and
  the address it produces is arbitrary: that is how phantom aircraft are born.
- Address/parity formats never confirm; their address is the residual itself, and they
  are accepted only when it is a known address. They are never repaired (the residual
  is the address, so there is no syndrome to look up).
- Repairs never flip bits 0..4 (the DF field), so a repair cannot change the format
  and thereby the parity rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.modes.crc import DF_FIELD_BITS, residual, syndrome_table

__all__ = [
    "LONG_FORMATS",
    "SHORT_FORMATS",
    "AddressBook",
    "CheckedFrame",
    "check_frame",
    "downlink_format",
    "frame_length_bytes",
]

#: Downlink formats accepted as 56-bit (7 byte) and 112-bit (14 byte) frames.
SHORT_FORMATS = frozenset({0, 4, 5, 11})
LONG_FORMATS = frozenset({16, 17, 18, 20, 21, 24})
_AP_FORMATS = frozenset({0, 4, 5, 16, 20, 21, 24})

# One-bit tables are built at import (cheap: 51 and 107 entries); two-bit tables on
# first use, since 2-bit repair is off by default.
_SYNDROMES_56_1 = syndrome_table(56, 1)
_SYNDROMES_112_1 = syndrome_table(112, 1)

# Kept in sync with crc.DF_FIELD_BITS: the tables exclude exactly these bits.
assert DF_FIELD_BITS == 5


@dataclass(frozen=True, slots=True)
class CheckedFrame:
    """A Mode S frame that passed the parity rules of its downlink format."""

    msg: bytes  # the frame after any correction (7 or 14 bytes)
    df: int  # downlink format 0..24
    icao: int  # 24-bit address (AA field, or recovered from AP)
    corrected_bits: int  # 0, 1 (or 2 when enabled)
    crc: str  # "ok", "fixed", "ap" or "iid" (see the module docstring)


class AddressBook:
    """Addresses confirmed by clean DF11/17/18 frames, with expiry (seconds of sample time).

    Times are whatever clock the caller uses for `t_s` (sample index / sample rate is
    fine); an address is known for `ttl_s` seconds after its last confirmation.
    Expired entries are dropped lazily, so memory stays bounded by the traffic of one
    `ttl_s` window.
    """

    __slots__ = ("_last_prune_s", "_seen_s", "ttl_s")

    def __init__(self, ttl_s: float = 60.0) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.ttl_s = ttl_s
        self._seen_s: dict[int, float] = {}
        self._last_prune_s = float("-inf")

    def confirm(self, icao: int, t_s: float) -> None:
        """Record that `icao` was seen in a trusted frame at time `t_s` (seconds)."""
        prev = self._seen_s.get(icao)
        if prev is None or t_s > prev:
            self._seen_s[icao] = t_s
        if t_s - self._last_prune_s > self.ttl_s:
            self.prune(t_s)

    def is_known(self, icao: int, t_s: float) -> bool:
        """True if `icao` was confirmed within `ttl_s` seconds before (or after) `t_s`."""
        seen = self._seen_s.get(icao)
        return seen is not None and t_s - seen <= self.ttl_s

    def prune(self, t_s: float) -> int:
        """Drop addresses not confirmed within `ttl_s` of `t_s`; returns how many went."""
        self._last_prune_s = t_s
        stale = [a for a, seen in self._seen_s.items() if t_s - seen > self.ttl_s]
        for icao in stale:
            del self._seen_s[icao]
        return len(stale)

    def known(self, t_s: float) -> frozenset[int]:
        """All addresses known at `t_s`."""
        return frozenset(a for a, seen in self._seen_s.items() if t_s - seen <= self.ttl_s)

    def __len__(self) -> int:
        return len(self._seen_s)


def downlink_format(first_byte: int) -> int:
    """Downlink format from the first byte of a frame: bits 0..4, except 24 for '11xxx'."""
    df = first_byte >> 3
    return 24 if df >= 24 else df


def frame_length_bytes(first_byte: int) -> int:
    """Frame length implied by the first bit: 7 bytes (56 bits) for DF0..15, else 14."""
    return 14 if first_byte & 0x80 else 7


def _repair(msg: bytes, syndrome: int, table: dict[int, tuple[int, int]]) -> tuple[bytes, int]:
    """Apply the correction for `syndrome`, or return (msg, 0) when there is none."""
    entry = table.get(syndrome)
    if entry is None:
        return msg, 0
    mask, n_bits = entry
    fixed = (int.from_bytes(msg, "big") ^ mask).to_bytes(len(msg), "big")
    return fixed, n_bits


def check_frame(
    msg: bytes, book: AddressBook, t_s: float, max_fix_bits: int = 1
) -> CheckedFrame | None:
    """Return the checked (possibly repaired) frame, or None if it cannot be trusted.

    `msg` is 7 or 14 bytes as demodulated, `t_s` the frame time in seconds (used for
    the address book), `max_fix_bits` 0 (no repair), 1 (default) or 2. Clean
    DF11 (IID 0), DF17 and DF18 CF 0 frames confirm their address in `book`; the
    module docstring has the full policy.
    """
    if not msg:
        return None
    msg = bytes(msg)
    df = downlink_format(msg[0])
    n = len(msg)
    if n == 7:
        if df not in SHORT_FORMATS:
            return None
    elif n == 14:
        if df not in LONG_FORMATS:
            return None
    else:
        return None

    r = residual(msg)

    if df in _AP_FORMATS:
        if book.is_known(r, t_s):
            return CheckedFrame(msg, df, r, 0, "ap")
        return None

    if df == 11:
        if r == 0:
            icao = int.from_bytes(msg[1:4], "big")
            book.confirm(icao, t_s)
            return CheckedFrame(msg, 11, icao, 0, "ok")
        if r < 0x80:
            icao = int.from_bytes(msg[1:4], "big")
            if book.is_known(icao, t_s):
                return CheckedFrame(msg, 11, icao, 0, "iid")
            return None
        # Two-bit repair of 56-bit frames is not offered: with the IID overlay and only
        # 32 data bits the chance of a wrong but plausible repair is too high.
        if max_fix_bits < 1:
            return None
        fixed, n_bits = _repair(msg, r, _SYNDROMES_56_1)
        if n_bits == 0:
            return None
        icao = int.from_bytes(fixed[1:4], "big")
        if book.is_known(icao, t_s):
            return CheckedFrame(fixed, 11, icao, n_bits, "fixed")
        return None

    # DF17 / DF18: full 24-bit parity over the address in clear.
    if r == 0:
        icao = int.from_bytes(msg[1:4], "big")
        if df == 17 or (msg[0] & 0x07) == 0:
            book.confirm(icao, t_s)
        return CheckedFrame(msg, df, icao, 0, "ok")
    if max_fix_bits < 1:
        return None
    table = _SYNDROMES_112_1 if max_fix_bits == 1 else syndrome_table(112, max_fix_bits)
    fixed, n_bits = _repair(msg, r, table)
    if n_bits == 0:
        return None
    icao = int.from_bytes(fixed[1:4], "big")
    if book.is_known(icao, t_s):
        return CheckedFrame(fixed, df, icao, n_bits, "fixed")
    return None
