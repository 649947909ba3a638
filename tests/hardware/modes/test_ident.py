"""TC1..4 identification: callsign characters and emitter category."""

from __future__ import annotations

import pytest
from modes_reference import ReferenceLine

from hardware.modes.errors import UnsupportedTypeCodeError
from hardware.modes.ident import decode_callsign, decode_identification

CHARS = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"


def me_of(hex_msg: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_msg)[4:11], "big")


def encode_me(tc: int, ca: int, callsign: str) -> int:
    me = (tc << 51) | (ca << 48)
    for i, ch in enumerate(callsign.ljust(8)):
        me |= CHARS.index(ch) << (42 - 6 * i)
    return me


@pytest.mark.parametrize(
    ("hex_msg", "callsign"),
    [
        ("8D406B902015A678D4D220AA4BDA", "EZY85MH"),
        ("8D4840D6202CC371C32CE0576098", "KLM1023"),
    ],
)
def test_published_callsigns(hex_msg: str, callsign: str) -> None:
    ident = decode_identification(me_of(hex_msg))
    assert ident.callsign == callsign
    assert (ident.tc, ident.category, ident.category_name) == (4, "A0", None)


def test_modes1_callsign(reference: list[ReferenceLine]) -> None:
    callsigns = {
        decode_identification(me_of(line.msg.hex())).callsign
        for line in reference
        if line.msg[0] >> 3 == 17 and line.msg[4] >> 3 in (1, 2, 3, 4)
    }
    assert callsigns == {"AMC421"}


@pytest.mark.parametrize(
    ("tc", "ca", "category", "name"),
    [(4, 3, "A3", "large (75000 to 300000 lb)"), (4, 7, "A7", "rotorcraft"),
     (3, 1, "B1", "glider / sailplane"), (2, 1, "C1", "surface vehicle - emergency"),
     (1, 0, "D0", None)],
)  # fmt: skip
def test_category_set_follows_the_type_code(tc: int, ca: int, category: str, name: str) -> None:
    ident = decode_identification(encode_me(tc, ca, "TEST1"))
    assert (ident.category, ident.category_name, ident.callsign) == (category, name, "TEST1")


def test_every_legal_character_round_trips() -> None:
    legal = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for start in range(0, len(legal), 8):
        chunk = legal[start : start + 8]
        assert decode_identification(encode_me(4, 0, chunk)).callsign == chunk


def test_inner_spaces_stay_and_illegal_codes_show_as_hash() -> None:
    assert decode_callsign(encode_me(4, 0, "AB 1")) == "AB 1"
    assert decode_callsign(0) == "########"


def test_other_type_codes_are_refused() -> None:
    with pytest.raises(UnsupportedTypeCodeError) as err:
        decode_identification(encode_me(5, 0, "X"))
    assert err.value.tc == 5
