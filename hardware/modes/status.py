"""ADS-B status messages, the cheap parts: TC 28 (emergency), 29 (target state), 31 (ops).

ME field (56 bits), bit 0 first::

    TC28 ST1   0..4 TC | 5..7 ST=1 | 8..10 emergency state | 11..23 Mode A ID13 | rest reserved
    TC29 ST1   0..4 TC | 5..6 ST=1 | 7 SIL-sup | 8 source (0 MCP/FCU, 1 FMS) |
               9..19 selected altitude (0 n/a, else (v-1)*32 ft) |
               20..28 QNH (0 n/a, else 800 + (v-1)*0.8 hPa) | 29 HDG valid |
               30..38 selected heading (v*180/256 deg) | 39..42 NACp | 43 NICbaro |
               44..45 SIL | 46 mode bits valid | 47 autopilot | 48 VNAV | 49 alt hold |
               50 (IMF) | 51 approach | 52 TCAS | 53 LNAV | 54..55 reserved
    TC31       0..4 TC | 5..7 ST (0 airborne, 1 surface) | 8..23 capability class |
               24..39 operational mode | 40..42 version | 43 NIC-A | 44..47 NACp |
               48..49 GVA (airborne) | 50..51 SIL | 52 NICbaro / TRK-HDG | 53 HRD | 54 SIL-sup

Emergency state: 0 none, 1 general, 2 medical, 3 minimum fuel, 4 no communications,
5 unlawful interference, 6 downed aircraft, 7 reserved. TC28 subtype 2 (ACAS RA
broadcast) and the capability/mode bit maps of TC31 are not decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.squawk import decode_id13

__all__ = [
    "EMERGENCY_STATES",
    "EmergencyStatus",
    "OperationalStatus",
    "TargetState",
    "decode_emergency_status",
    "decode_operational_status",
    "decode_target_state",
]

EMERGENCY_STATES = (
    "none",
    "general",
    "medical",
    "minimum fuel",
    "no communications",
    "unlawful interference",
    "downed aircraft",
    "reserved",
)


def _field(me: int, start: int, length: int) -> int:
    return (me >> (56 - start - length)) & ((1 << length) - 1)


@dataclass(frozen=True, slots=True)
class EmergencyStatus:
    """TC28 subtype 1: emergency/priority state and the Mode A code."""

    emergency: str  # one of EMERGENCY_STATES
    squawk: str


@dataclass(frozen=True, slots=True)
class TargetState:
    """TC29 subtype 1 (ADS-B version 2): autopilot targets."""

    selected_altitude_ft: int | None
    selected_altitude_source: str  # "mcp" (MCP/FCU) or "fms"
    qnh_hpa: float | None
    selected_heading_deg: float | None
    autopilot: bool | None  # None when the mode bits are not valid
    vnav: bool | None
    altitude_hold: bool | None
    approach: bool | None
    lnav: bool | None
    tcas_operational: bool


@dataclass(frozen=True, slots=True)
class OperationalStatus:
    """TC31: ADS-B version and the quality figures most users look at."""

    version: int
    surface: bool
    nic_a: int
    nac_p: int
    sil: int


def decode_emergency_status(me: int) -> EmergencyStatus:
    """Decode TC28 subtype 1 (emergency/priority status)."""
    tc, subtype = _field(me, 0, 5), _field(me, 5, 3)
    if tc != 28 or subtype != 1:
        raise UnsupportedTypeCodeError(tc, subtype)
    return EmergencyStatus(
        emergency=EMERGENCY_STATES[_field(me, 8, 3)],
        squawk=decode_id13(_field(me, 11, 13)),
    )


def decode_target_state(me: int) -> TargetState:
    """Decode TC29 subtype 1 (target state and status, ADS-B version 2)."""
    tc, subtype = _field(me, 0, 5), _field(me, 5, 2)
    if tc != 29 or subtype != 1:
        raise UnsupportedTypeCodeError(tc, subtype)
    alt = _field(me, 9, 11)
    qnh = _field(me, 20, 9)
    modes_valid = bool(_field(me, 46, 1))

    def mode(bit: int) -> bool | None:
        return bool(_field(me, bit, 1)) if modes_valid else None

    return TargetState(
        selected_altitude_ft=(alt - 1) * 32 if alt else None,
        selected_altitude_source="fms" if _field(me, 8, 1) else "mcp",
        qnh_hpa=800.0 + (qnh - 1) * 0.8 if qnh else None,
        selected_heading_deg=_field(me, 30, 9) * 180.0 / 256.0 if _field(me, 29, 1) else None,
        autopilot=mode(47),
        vnav=mode(48),
        altitude_hold=mode(49),
        approach=mode(51),
        lnav=mode(53),
        tcas_operational=bool(_field(me, 52, 1)),
    )


def decode_operational_status(me: int) -> OperationalStatus:
    """Decode TC31 (aircraft operational status), subtypes 0 (airborne) and 1 (surface)."""
    tc, subtype = _field(me, 0, 5), _field(me, 5, 3)
    if tc != 31 or subtype > 1:
        raise UnsupportedTypeCodeError(tc, subtype)
    return OperationalStatus(
        version=_field(me, 40, 3),
        surface=subtype == 1,
        nic_a=_field(me, 43, 1),
        nac_p=_field(me, 44, 4),
        sil=_field(me, 50, 2),
    )
