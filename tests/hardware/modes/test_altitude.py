"""AC13/AC12 altitude decoding: Q-bit 25 ft coding and the Gillham (Mode C) code."""

from __future__ import annotations

import pytest

from hardware.modes.altitude import decode_ac12, decode_ac13, gillham_to_ft, gray_to_binary
from hardware.modes.errors import FieldError

# Positions inside AC13 (bit 12 first on air): C1 A1 C2 A2 C4 A4 M B1 Q/D1 B2 D2 B4 D4.
POS = {"C1": 12, "A1": 11, "C2": 10, "A2": 9, "C4": 8, "A4": 7, "B1": 5, "D1": 4,
       "B2": 3, "D2": 2, "B4": 1, "D4": 0}  # fmt: skip


def binary_to_gray(value: int) -> int:
    return value ^ (value >> 1)


def gillham_encode(alt_ft: int) -> int:
    """Spec encoder (ICAO Annex 10 Mode C table) used as the test oracle."""
    steps = (alt_ft + 1200) // 100  # 0 = -1200 ft
    n500, n100 = divmod(steps, 5)
    n100 += 1  # 1..5 within each 500 ft band
    if n500 & 1:
        n100 = 6 - n100
    gray500 = binary_to_gray(n500)
    gray100 = binary_to_gray(7 if n100 == 5 else n100)
    code = 0
    for i, name in enumerate(("D1", "D2", "D4", "A1", "A2", "A4", "B1", "B2", "B4")):
        if gray500 >> (8 - i) & 1:
            code |= 1 << POS[name]
    for i, name in enumerate(("C1", "C2", "C4")):
        if gray100 >> (2 - i) & 1:
            code |= 1 << POS[name]
    return code


@pytest.mark.parametrize(
    ("bits11", "alt_ft"),
    [
        # D2 D4 A1 A2 A4 B1 B2 B4 C1 C2 C4, values published with pyModeS.
        ("00000000010", -1000),
        ("00000001010", -500),
        ("00000011011", -100),
        ("00000011010", 0),
        ("00000011110", 100),
        ("00000010011", 600),
        ("00000110010", 1000),
        ("00001001001", 5800),
        ("00011100100", 10300),
        ("01100011010", 32000),
        ("01110000100", 46300),
        ("01010101100", 50200),
        ("11011110100", 73200),
        ("10000000011", 126600),
        ("10000000001", 126700),
    ],
)
def test_gillham_known_values(bits11: str, alt_ft: int) -> None:
    names = ("D2", "D4", "A1", "A2", "A4", "B1", "B2", "B4", "C1", "C2", "C4")
    code = sum(1 << POS[n] for n, b in zip(names, bits11, strict=True) if b == "1")
    assert gillham_to_ft(code) == alt_ft


def test_gillham_round_trips_every_100_ft_step() -> None:
    for alt_ft in range(-1200, 126_701, 100):
        assert gillham_to_ft(gillham_encode(alt_ft)) == alt_ft, alt_ft


@pytest.mark.parametrize("c_bits", [0b000, 0b101, 0b111])
def test_illegal_c_patterns_are_rejected(c_bits: int) -> None:
    # C1 C2 C4 = 000 / 101 / 111 are Gray for 0, 6 and 5: no encoder emits them.
    code = gillham_encode(10_000) & ~((1 << 12) | (1 << 10) | (1 << 8))
    code |= (c_bits >> 2 & 1) << 12 | (c_bits >> 1 & 1) << 10 | (c_bits & 1) << 8
    with pytest.raises(FieldError) as err:
        gillham_to_ft(code)
    assert err.value.field == "gillham"


def test_gray_to_binary_inverts_gray_encoding() -> None:
    for value in range(1 << 12):
        assert gray_to_binary(binary_to_gray(value)) == value


def test_q_bit_altitude_from_a_published_df20() -> None:
    msg = bytes.fromhex("A02014B400000000000000F9D514")
    assert decode_ac13(int.from_bytes(msg[2:4], "big") & 0x1FFF) == 32300


def test_q_bit_coding_covers_the_whole_25_ft_range() -> None:
    for n in range(1, 1 << 11):
        ac13 = ((n >> 5) << 7) | (((n >> 4) & 1) << 5) | (1 << 4) | (n & 0xF)
        assert decode_ac13(ac13) == 25 * n - 1000
        ac12 = ((n >> 5) << 6) | (((n >> 4) & 1) << 5) | (1 << 4) | (n & 0xF)
        assert decode_ac12(ac12) == 25 * n - 1000


def test_modes1_adsb_altitude() -> None:
    me = int.from_bytes(bytes.fromhex("8F4D2023587F345E35837E2218B2")[4:11], "big")
    assert decode_ac12((me >> 36) & 0xFFF) == 24275


def test_ac12_gillham_matches_ac13_gillham() -> None:
    code13 = gillham_encode(12_300)
    code12 = ((code13 >> 7) << 6) | (code13 & 0x3F)
    assert decode_ac12(code12) == decode_ac13(code13) == 12_300


def test_zero_means_not_available() -> None:
    assert decode_ac13(0) is None
    assert decode_ac12(0) is None


def test_metric_altitude_is_reported_not_guessed() -> None:
    with pytest.raises(FieldError) as err:
        decode_ac13((1 << 6) | 0x100)
    assert err.value.field == "ac13"


def test_out_of_range_fields_are_rejected() -> None:
    with pytest.raises(FieldError):
        decode_ac13(1 << 13)
    with pytest.raises(FieldError):
        decode_ac12(-1)
