"""TC28 emergency, TC29 target state, TC31 operational status."""

from __future__ import annotations

import pytest

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.status import (
    decode_emergency_status,
    decode_operational_status,
    decode_target_state,
)


def put(me: int, start: int, length: int, value: int) -> int:
    return me | value << (56 - start - length)


def test_emergency_state_and_squawk() -> None:
    # Squawk 7700: A=7 (A4 A2 A1 at ID13 bits 7, 9, 11), B=7 (B4 B2 B1 at 1, 3, 5).
    id13 = sum(1 << p for p in (7, 9, 11, 1, 3, 5))
    me = put(put(put(28 << 51, 5, 3, 1), 8, 3, 1), 11, 13, id13)
    status = decode_emergency_status(me)
    assert (status.emergency, status.squawk) == ("general", "7700")


def test_acas_ra_subtype_is_not_decoded() -> None:
    with pytest.raises(UnsupportedTypeCodeError):
        decode_emergency_status(put(28 << 51, 5, 3, 2))


def test_target_state_selected_altitude_qnh_heading_and_modes() -> None:
    me = put(29 << 51, 5, 2, 1)
    me = put(me, 9, 11, 36000 // 32 + 1)
    me = put(me, 20, 9, 267)  # 800 + 266 * 0.8 = 1012.8 hPa
    me = put(me, 29, 1, 1)
    me = put(me, 30, 9, 128)  # 90 degrees
    me = put(put(put(me, 46, 1, 1), 47, 1, 1), 53, 1, 1)
    ts = decode_target_state(me)
    assert ts.selected_altitude_ft == 36000
    assert ts.selected_altitude_source == "mcp"
    assert ts.qnh_hpa == pytest.approx(1012.8)
    assert ts.selected_heading_deg == 90.0
    assert (ts.autopilot, ts.lnav, ts.vnav, ts.approach) == (True, True, False, False)


def test_target_state_without_valid_modes_reports_unknown() -> None:
    ts = decode_target_state(put(29 << 51, 5, 2, 1))
    assert (ts.selected_altitude_ft, ts.qnh_hpa, ts.selected_heading_deg) == (None, None, None)
    assert ts.autopilot is None


def test_operational_status_version_and_quality() -> None:
    me = put(put(put(put(31 << 51, 40, 3, 2), 43, 1, 1), 44, 4, 9), 50, 2, 3)
    ops = decode_operational_status(me)
    assert (ops.version, ops.nic_a, ops.nac_p, ops.sil, ops.surface) == (2, 1, 9, 3, False)
    assert decode_operational_status(put(31 << 51, 5, 3, 1)).surface
