"""decode(): per-DF dispatch, address recovery and the golden modes1 messages."""

from __future__ import annotations

import json

import pytest
from modes_reference import ReferenceLine

from hardware.modes.address import address_hex
from hardware.modes.crc import with_parity
from hardware.modes.errors import (
    FieldError,
    FrameLengthError,
    UnsupportedFormatError,
    UnsupportedTypeCodeError,
)
from hardware.modes.frame_check import AddressBook, check_frame
from hardware.modes.message import decode, decode_checked

ICAO = 0x4D2023


def test_df4_altitude_and_flight_status_with_address_from_parity() -> None:
    m = decode(bytes.fromhex("20000F1F684A6C"))
    assert (m.df, m.icao_hex, m.altitude_ft, m.on_ground, m.alert, m.spi) == (
        4, "4D2023", 23375, False, False, False)  # fmt: skip
    assert m.alt_m == pytest.approx(23375 * 0.3048)


def test_df5_squawk() -> None:
    m = decode(bytes.fromhex("280010248C796B"))
    assert (m.df, m.icao, m.squawk) == (5, ICAO, "0112")


def test_df0_vertical_status_and_altitude() -> None:
    on_ground = with_parity(bytes([0x04, 0x00, 0x0F, 0x1F]), ICAO)
    m = decode(on_ground)
    assert (m.df, m.icao, m.on_ground, m.altitude_ft) == (0, ICAO, True, 23375)


def test_df11_capability_and_address() -> None:
    m = decode(bytes.fromhex("5D4D20237A55A6"))
    assert (m.df, m.icao, m.on_ground, m.tc) == (11, ICAO, False, None)


def test_df17_identification() -> None:
    m = decode(bytes.fromhex("8D406B902015A678D4D220AA4BDA"))
    assert (m.df, m.icao_hex, m.tc, m.callsign, m.category) == (17, "406B90", 4, "EZY85MH", "A0")


def test_df17_velocity_in_both_units() -> None:
    m = decode(bytes.fromhex("8D485020994409940838175B284F"))
    assert m.speed_kt == pytest.approx(159.2, abs=0.01)
    assert m.speed_mps == pytest.approx(81.90, abs=0.01)
    assert m.vrate_fpm == -832
    assert m.vrate_mps == pytest.approx(-4.2266, abs=1e-4)


def test_df17_position_carries_the_cpr_frame_and_altitude() -> None:
    m = decode(bytes.fromhex("8F4D2023587F345E35837E2218B2"))
    assert m.cpr is not None and m.cpr.odd and not m.cpr.surface
    assert (m.altitude_ft, m.on_ground) == (24275, False)


def test_df18_non_icao_address_is_flagged() -> None:
    anon = with_parity(bytes([0x91]) + bytes.fromhex("406B902015A678D4D220"))
    m = decode(anon)
    assert (m.df, m.non_icao, m.callsign) == (18, True, "EZY85MH")


AIRBORNE_ME = bytes.fromhex("587F345E35837E")  # TC 11, the ME of 8F4D2023587F...
VELOCITY_ME = bytes.fromhex("994409940838175B")[:7]  # TC 19 subtype 1


def df18(cf: int, me: bytes) -> bytes:
    return with_parity(bytes([18 << 3 | cf]) + ICAO.to_bytes(3, "big") + me)


def with_me_bit(me: bytes, bit: int) -> bytes:
    """`me` with its bit `bit` set (1 = the first ME bit)."""
    value = int.from_bytes(me, "big") | 1 << (56 - bit)
    return value.to_bytes(7, "big")


@pytest.mark.parametrize(
    ("cf", "me", "non_icao"),
    [
        (0, AIRBORNE_ME, False),  # ADS-B from a non-transponder device, ICAO address
        (1, AIRBORNE_ME, True),  # anonymous address
        (5, AIRBORNE_ME, True),  # fine TIS-B of a non-ICAO target
        (2, AIRBORNE_ME, False),  # fine TIS-B, IMF 0: the AA is an ICAO address
        (2, with_me_bit(AIRBORNE_ME, 8), True),  # IMF 1 (airborne position: ME bit 8)
        (6, VELOCITY_ME, False),  # ADS-R, IMF 0
        (6, with_me_bit(VELOCITY_ME, 9), True),  # IMF 1 (velocity: ME bit 9)
        (6, with_me_bit(VELOCITY_ME, 8), False),  # bit 8 is no IMF in a velocity ME
    ],
    ids=["cf0", "cf1", "cf5", "cf2", "cf2-imf", "cf6", "cf6-imf", "cf6-bit8"],
)
def test_df18_says_whether_its_address_is_an_icao_address(
    cf: int, me: bytes, non_icao: bool
) -> None:
    m = decode(df18(cf, me))
    assert (m.df, m.icao, m.non_icao) == (18, ICAO, non_icao)
    assert m.address == (ICAO | 1 << 24 if non_icao else ICAO)
    assert address_hex(m.address) == ("~4D2023" if non_icao else "4D2023")


def test_df18_imf_leaves_the_rest_of_the_frame_alone() -> None:
    plain, flagged = decode(df18(2, AIRBORNE_ME)), decode(df18(2, with_me_bit(AIRBORNE_ME, 8)))
    assert flagged.cpr == plain.cpr
    assert flagged.altitude_ft == plain.altitude_ft == 24275


def test_a_repeated_frame_decodes_to_the_same_record() -> None:
    frame = bytes.fromhex("8D485020994409940838175B284F")
    first = decode(frame)
    assert decode(bytearray(frame)) is first
    assert decode(frame, 0x123456) is not first  # the address is part of the question
    assert decode(frame, 0x123456).icao == 0x123456


def test_a_remembered_field_error_holds_no_traceback() -> None:
    unknown_tc = with_parity(bytes([0x8D]) + ICAO.to_bytes(3, "big") + bytes([0xB8]) + bytes(6))
    m = decode(unknown_tc)
    assert m.error is not None and m.error.__traceback__ is None


def test_df20_keeps_the_raw_comm_b() -> None:
    msg = with_parity(bytes.fromhex("A0000F1F") + bytes.fromhex("10203040506070"), ICAO)
    m = decode(msg)
    assert (m.df, m.icao, m.altitude_ft, m.mb) == (20, ICAO, 23375, bytes.fromhex("10203040506070"))


def test_an_unreadable_field_is_reported_not_raised() -> None:
    bad_gillham = with_parity(bytes([0x20, 0x00, 0x00, 0x02]), ICAO)  # C bits all zero
    m = decode(bad_gillham)
    assert m.altitude_ft is None
    assert isinstance(m.error, FieldError)
    reserved_tc = with_parity(bytes.fromhex("8D4D2023") + bytes([25 << 3]) + bytes(6))
    m = decode(reserved_tc)
    assert (m.tc, m.icao) == (25, ICAO)
    assert isinstance(m.error, UnsupportedTypeCodeError)


@pytest.mark.parametrize(
    ("msg", "error"),
    [
        (bytes(5), FrameLengthError),
        (bytes.fromhex("8D4D2023587F34"), FrameLengthError),
        (with_parity(bytes([0x98]) + bytes(10)), UnsupportedFormatError),
        (with_parity(bytes([0xC0]) + bytes(10)), UnsupportedFormatError),
    ],
)
def test_frames_no_decoder_applies_to_raise(msg: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        decode(msg)


def test_as_dict_is_json_with_si_units() -> None:
    out = decode(bytes.fromhex("8F4D2023587F345E35837E2218B2")).as_dict()
    text = json.dumps(out)
    assert json.loads(text)["icao"] == "4D2023"
    assert out["altitude_ft"] == 24275
    assert out["alt_m"] == pytest.approx(7399.02)
    assert out["cpr"] == {"odd": True, "lat_cpr": 12058, "lon_cpr": 99198, "surface": False}


def test_every_reference_message_decodes_to_the_one_aircraft(
    reference: list[ReferenceLine],
) -> None:
    book = AddressBook()
    icaos, callsigns, squawks = set(), set(), set()
    for line in reference:
        frame = check_frame(line.msg, book, line.t_s)
        assert frame is not None
        m = decode_checked(frame)
        assert m.error is None, (line, m.error)
        icaos.add(m.icao_hex)
        if m.callsign:
            callsigns.add(m.callsign)
        if m.squawk:
            squawks.add(m.squawk)
    assert icaos == {"4D2023", "2124D3"}  # 2124D3 is the known false decode (see frame_check)
    assert callsigns == {"AMC421"}
    assert squawks == {"0112"}
