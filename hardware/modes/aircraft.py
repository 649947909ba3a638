"""Aircraft table: the latest state per ICAO address, built from decoded messages.

Position policy (what turns CPR frames into trusted fixes):

1. Every position message stores its CPR frame as the aircraft's latest even or odd.
2. Global decode when the other format is also held, same kind (airborne/surface), and
   the two were received within `pair_max_age_s` (10 s airborne, `surface_pair_max_age_s`
   50 s on the surface where aircraft are slow). The newer frame gives the fix.
   Surface global decodes need a reference (receiver, else the last position) to
   pick the quadrant.
3. Otherwise local decode against a reference that is provably within half a CPR zone:
   - the aircraft's own last fix, if it is recent enough that the aircraft cannot have
     moved half a zone since (age * max_speed_mps < half zone; 333 km airborne,
     83 km surface);
   - else the receiver position, for surface frames always (surface traffic is heard
     only within line of sight), for airborne frames only when `max_range_m` is under
     the airborne half zone (so the aircraft is guaranteed within it).
4. Plausibility: the fix must lie within `max_range_m` of the receiver (when the
   receiver is known), and the implied speed from the previous fix must not exceed
   `max_speed_mps` (plus a 500 m allowance for CPR quantisation). A rejected fix is
   counted; two rejected *global* fixes in a row drop the previous position, so one bad
   old fix cannot block the aircraft forever.
5. A new track (no position yet, or just dropped) publishes nothing until two global
   fixes agree (the speed rule between them, 1000 m/s if the speed check is off): a
   pair whose frames are further apart than their timestamps admit decodes a whole
   zone (about 660 km) off and passes every other check.

6. Squawk and barometric altitude: one message alone never changes a value the
   aircraft has already reported to something implausible. A new squawk is taken when
   a second message repeats it at least `confirm_s` (0.25 s) later; an altitude that
   would need more than `max_climb_fpm` (10 000 ft/min) from the last one, while that
   is under `stale_s` (30 s) old, is taken when a second message agrees with it. The
   first value, and any value after `stale_s`, is taken at once. An address/parity
   reply (DF0/4/5/16/20/21) whose garbled parity happens to match a known aircraft
   would otherwise set that aircraft's squawk or altitude at random (readsb
   debounces squawks alike).

Times are seconds on the caller's clock (sample time is fine); expiry removes aircraft
not heard for `ttl_s`. Aircraft are keyed by `DecodedMessage.address`: a non-ICAO
address (anonymous ADS-B, a TIS-B or ADS-R track) is a different aircraft from the
ICAO address with the same 24 bits (address.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from hardware.modes.address import address_hex
from hardware.modes.cpr import (
    AIRBORNE_HALF_ZONE_M,
    SURFACE_HALF_ZONE_M,
    CprFrame,
    global_airborne,
    global_surface,
    local_decode,
)
from hardware.modes.errors import CprError
from hardware.modes.message import DecodedMessage
from hardware.modes.units import fpm_to_mps, ft_to_m, kt_to_mps

__all__ = ["Aircraft", "AircraftTable", "distance_m"]

EARTH_RADIUS_M = 6_371_000.0
_CPR_SLACK_M = 500.0
# Used to confirm a new track's first fix when the speed check is switched off.
_MAX_SPEED_MPS = 1000.0


def distance_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance in metres (haversine, spherical Earth)."""
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp = p2 - p1
    dl = math.radians(lon2_deg - lon1_deg)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(slots=True)
class Aircraft:
    """State of one aircraft. Owned and updated by AircraftTable; read it, do not write."""

    icao: int  # the table key: the ICAO address, or a non-ICAO one with NON_ICAO set
    first_seen_s: float
    last_seen_s: float
    messages: int = 0
    signal_level: float | None = None  # as given by the caller for the latest message
    callsign: str | None = None
    category: str | None = None
    squawk: str | None = None
    emergency: str | None = None
    on_ground: bool | None = None
    altitude_ft: int | None = None  # barometric
    altitude_t_s: float | None = None
    gnss_height_m: float | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    position_t_s: float | None = None
    position_source: str | None = None  # "global", "local-aircraft", "local-receiver"
    positions: int = 0  # accepted fixes
    rejected_positions: int = 0
    speed_kt: float | None = None
    track_deg: float | None = None
    heading_deg: float | None = None
    airspeed_kt: float | None = None
    vrate_fpm: int | None = None
    vrate_source: str | None = None
    velocity_t_s: float | None = None
    _even: tuple[CprFrame, float] | None = field(default=None, repr=False)
    _odd: tuple[CprFrame, float] | None = field(default=None, repr=False)
    _global_rejects: int = field(default=0, repr=False)
    # A changed value waiting for a second message: (value, time first seen).
    _squawk_pending: tuple[str, float] | None = field(default=None, repr=False)
    _altitude_pending: tuple[int, float] | None = field(default=None, repr=False)
    _candidate: tuple[tuple[float, float], float] | None = field(default=None, repr=False)

    @property
    def icao_hex(self) -> str:
        """Six hex digits, "~" first for a non-ICAO address."""
        return address_hex(self.icao)

    @property
    def alt_m(self) -> float | None:
        return ft_to_m(self.altitude_ft)

    @property
    def speed_mps(self) -> float | None:
        return kt_to_mps(self.speed_kt)

    @property
    def vrate_mps(self) -> float | None:
        return fpm_to_mps(self.vrate_fpm)


class AircraftTable:
    """Per-ICAO aircraft state with CPR pairing, plausibility checks and expiry."""

    def __init__(
        self,
        receiver_lat_deg: float | None = None,
        receiver_lon_deg: float | None = None,
        *,
        max_range_m: float = 500_000.0,
        max_speed_mps: float | None = 500.0,
        pair_max_age_s: float = 10.0,
        surface_pair_max_age_s: float = 50.0,
        ttl_s: float = 300.0,
        confirm_s: float = 0.25,
        max_climb_fpm: float = 10_000.0,
        stale_s: float = 30.0,
    ) -> None:
        if (receiver_lat_deg is None) != (receiver_lon_deg is None):
            raise ValueError("give both receiver_lat_deg and receiver_lon_deg, or neither")
        self.receiver: tuple[float, float] | None = (
            None
            if receiver_lat_deg is None or receiver_lon_deg is None
            else (receiver_lat_deg, receiver_lon_deg)
        )
        self.max_range_m = max_range_m
        self.max_speed_mps = max_speed_mps
        self.pair_max_age_s = pair_max_age_s
        self.surface_pair_max_age_s = surface_pair_max_age_s
        self.ttl_s = ttl_s
        self.confirm_s = confirm_s
        self.max_climb_fpm = max_climb_fpm
        self.stale_s = stale_s
        self._aircraft: dict[int, Aircraft] = {}

    def __len__(self) -> int:
        return len(self._aircraft)

    def __iter__(self) -> Iterator[Aircraft]:
        return iter(list(self._aircraft.values()))

    def __contains__(self, icao: object) -> bool:
        return icao in self._aircraft

    def __getitem__(self, icao: int) -> Aircraft:
        return self._aircraft[icao]

    def get(self, icao: int) -> Aircraft | None:
        return self._aircraft.get(icao)

    def expire(self, t_s: float) -> list[int]:
        """Remove aircraft not heard for `ttl_s` seconds; returns their addresses."""
        gone = [a.icao for a in self._aircraft.values() if t_s - a.last_seen_s > self.ttl_s]
        for icao in gone:
            del self._aircraft[icao]
        return gone

    def update(
        self, msg: DecodedMessage, t_s: float, signal_level: float | None = None
    ) -> frozenset[str]:
        """Apply one decoded message received at `t_s`; returns what changed.

        The result holds any of "new", "position", "altitude", "velocity", "callsign",
        "squawk", "category", "emergency", so an adapter can emit events only on news.
        """
        changed: set[str] = set()
        key = msg.address
        ac = self._aircraft.get(key)
        if ac is None:
            ac = Aircraft(icao=key, first_seen_s=t_s, last_seen_s=t_s)
            self._aircraft[key] = ac
            changed.add("new")
        ac.last_seen_s = max(ac.last_seen_s, t_s)
        ac.messages += 1
        if signal_level is not None:
            ac.signal_level = signal_level
        if msg.on_ground is not None:
            ac.on_ground = msg.on_ground

        for name in ("callsign", "category", "emergency"):
            value = getattr(msg, name)
            if value is not None and value != getattr(ac, name):
                setattr(ac, name, value)
                changed.add(name)
        if msg.squawk is not None:
            self._update_squawk(ac, msg.squawk, t_s, changed)
        if msg.altitude_ft is not None:
            self._update_altitude(ac, msg.altitude_ft, t_s, changed)
        if msg.gnss_height_m is not None:
            ac.gnss_height_m = msg.gnss_height_m
            changed.add("altitude")
        if msg.tc == 19 or (msg.cpr is not None and msg.cpr.surface):
            self._update_velocity(ac, msg, t_s, changed)
        if msg.cpr is not None and self._update_position(ac, msg.cpr, t_s):
            changed.add("position")
        return frozenset(changed)

    def _update_squawk(self, ac: Aircraft, squawk: str, t_s: float, changed: set[str]) -> None:
        """Take `squawk` if it is the first, or repeats a pending change `confirm_s` on."""
        if squawk == ac.squawk:
            ac._squawk_pending = None
            return
        pending = ac._squawk_pending
        if ac.squawk is not None and (pending is None or pending[0] != squawk):
            ac._squawk_pending = (squawk, t_s)
            return
        if pending is not None and t_s - pending[1] < self.confirm_s:
            return
        ac.squawk, ac._squawk_pending = squawk, None
        changed.add("squawk")

    def _update_altitude(
        self, ac: Aircraft, altitude_ft: int, t_s: float, changed: set[str]
    ) -> None:
        """Take `altitude_ft` unless it jumps from a fresh altitude faster than
        `max_climb_fpm`; such a jump is taken when a second message agrees with it."""
        last, last_t = ac.altitude_ft, ac.altitude_t_s
        if (
            last is not None
            and last_t is not None
            and t_s - last_t < self.stale_s
            and not self._climb_ok(last, last_t, altitude_ft, t_s)
        ):
            pending = ac._altitude_pending
            if pending is None or not self._climb_ok(*pending, altitude_ft, t_s):
                ac._altitude_pending = (altitude_ft, t_s)
                return
        ac.altitude_ft, ac.altitude_t_s, ac._altitude_pending = altitude_ft, t_s, None
        changed.add("altitude")

    def _climb_ok(self, alt_ft: int, t_s: float, new_ft: int, new_t_s: float) -> bool:
        """Whether going from `alt_ft` to `new_ft` in the time between needs at most
        `max_climb_fpm` (with 100 ft for the altitude's quantisation)."""
        allowed = self.max_climb_fpm * abs(new_t_s - t_s) / 60.0 + 100.0
        return abs(new_ft - alt_ft) <= allowed

    def _update_velocity(
        self, ac: Aircraft, msg: DecodedMessage, t_s: float, changed: set[str]
    ) -> None:
        updated = False
        for name in (
            "speed_kt",
            "track_deg",
            "heading_deg",
            "airspeed_kt",
            "vrate_fpm",
            "vrate_source",
        ):
            value = getattr(msg, name)
            if value is not None:
                setattr(ac, name, value)
                updated = True
        if updated:
            ac.velocity_t_s = t_s
            changed.add("velocity")

    def _update_position(self, ac: Aircraft, frame: CprFrame, t_s: float) -> bool:
        if frame.odd:
            ac._odd = (frame, t_s)
        else:
            ac._even = (frame, t_s)
        fix = self._global_fix(ac, frame, t_s)
        if fix is not None:
            return self._take_global(ac, fix, t_s)
        local = self._local_fix(ac, frame, t_s)
        if local is None:
            return False
        fix, source = local
        if not self._plausible(ac, fix, t_s):
            ac.rejected_positions += 1
            return False
        return self._accept(ac, fix, t_s, source)

    def _take_global(self, ac: Aircraft, fix: tuple[float, float], t_s: float) -> bool:
        if not self._in_range(fix):
            ac.rejected_positions += 1
            return False
        if self._last_fix(ac) is None:
            # A new track: publish only once two global fixes agree. A pair whose frames
            # are further apart than their timestamps say (lost messages, a compressed
            # recording) decodes one zone off, and nothing else would catch it.
            candidate = ac._candidate
            ac._candidate = (fix, t_s)
            if candidate is None or not self._consistent(candidate[0], candidate[1], fix, t_s):
                return False
            ac._candidate = None
            return self._accept(ac, fix, t_s, "global")
        if self._plausible(ac, fix, t_s):
            ac._global_rejects = 0
            return self._accept(ac, fix, t_s, "global")
        ac.rejected_positions += 1
        ac._global_rejects += 1
        if ac._global_rejects >= 2:
            # Two pairs in a row disagree with the old fix: the old fix is the suspect.
            # Start over as a new track with this fix as the candidate.
            ac.lat_deg = ac.lon_deg = ac.position_t_s = None
            ac._global_rejects = 0
            ac._candidate = (fix, t_s)
        return False

    def _global_fix(self, ac: Aircraft, frame: CprFrame, t_s: float) -> tuple[float, float] | None:
        other = ac._even if frame.odd else ac._odd
        if other is None or other[0].surface != frame.surface:
            return None
        max_age_s = self.surface_pair_max_age_s if frame.surface else self.pair_max_age_s
        if abs(t_s - other[1]) > max_age_s:
            return None
        even, odd = (other[0], frame) if frame.odd else (frame, other[0])
        try:
            if not frame.surface:
                return global_airborne(
                    even.lat_cpr, even.lon_cpr, odd.lat_cpr, odd.lon_cpr, frame.odd
                )
            ref = self.receiver or self._last_fix(ac)
            if ref is None:
                return None
            return global_surface(
                even.lat_cpr, even.lon_cpr, odd.lat_cpr, odd.lon_cpr, frame.odd, *ref
            )
        except CprError:
            return None

    def _last_fix(self, ac: Aircraft) -> tuple[float, float] | None:
        if ac.lat_deg is None or ac.lon_deg is None:
            return None
        return ac.lat_deg, ac.lon_deg

    def _local_fix(
        self, ac: Aircraft, frame: CprFrame, t_s: float
    ) -> tuple[tuple[float, float], str] | None:
        half_zone_m = SURFACE_HALF_ZONE_M if frame.surface else AIRBORNE_HALF_ZONE_M
        last = self._last_fix(ac)
        if last is not None and ac.position_t_s is not None:
            age_s = abs(t_s - ac.position_t_s)
            if self.max_speed_mps is not None and age_s * self.max_speed_mps < half_zone_m:
                try:
                    return local_decode(frame, *last), "local-aircraft"
                except CprError:
                    return None
        if self.receiver is not None and (frame.surface or self.max_range_m < half_zone_m):
            try:
                return local_decode(frame, *self.receiver), "local-receiver"
            except CprError:
                return None
        return None

    def _in_range(self, fix: tuple[float, float]) -> bool:
        return self.receiver is None or distance_m(*self.receiver, *fix) <= self.max_range_m

    def _consistent(
        self, a: tuple[float, float], a_t_s: float, b: tuple[float, float], b_t_s: float
    ) -> bool:
        """Could the aircraft have flown from fix a to fix b in the time between them?"""
        max_speed_mps = self.max_speed_mps if self.max_speed_mps is not None else _MAX_SPEED_MPS
        return distance_m(*a, *b) <= max_speed_mps * abs(b_t_s - a_t_s) + _CPR_SLACK_M

    def _plausible(self, ac: Aircraft, fix: tuple[float, float], t_s: float) -> bool:
        if not self._in_range(fix):
            return False
        last = self._last_fix(ac)
        if self.max_speed_mps is None or last is None or ac.position_t_s is None:
            return True
        return self._consistent(last, ac.position_t_s, fix, t_s)

    def _accept(self, ac: Aircraft, fix: tuple[float, float], t_s: float, source: str) -> bool:
        ac.lat_deg, ac.lon_deg = fix
        ac.position_t_s = t_s
        ac.position_source = source
        ac.positions += 1
        return True
