"""Mode A identity (squawk) from ID13."""

from __future__ import annotations

import pytest

from hardware.modes.errors import FieldError
from hardware.modes.squawk import decode_id13

# (digit letter, weight) -> position in ID13 (bit 12 first on air).
POS = {("A", 1): 11, ("A", 2): 9, ("A", 4): 7, ("B", 1): 5, ("B", 2): 3, ("B", 4): 1,
       ("C", 1): 12, ("C", 2): 10, ("C", 4): 8, ("D", 1): 4, ("D", 2): 2, ("D", 4): 0}  # fmt: skip


def encode_id13(squawk: str) -> int:
    code = 0
    for letter, digit in zip("ABCD", squawk, strict=True):
        for weight in (1, 2, 4):
            if int(digit) & weight:
                code |= 1 << POS[(letter, weight)]
    return code


def test_published_df21_squawk() -> None:
    msg = bytes.fromhex("A800292DFFBBA9383FFCEB903D01")
    assert decode_id13(int.from_bytes(msg[2:4], "big") & 0x1FFF) == "1346"


def test_every_squawk_round_trips() -> None:
    for value in range(4096):
        squawk = f"{value:04o}"
        assert decode_id13(encode_id13(squawk)) == squawk


def test_the_x_bit_is_ignored() -> None:
    assert decode_id13(encode_id13("7700") | 1 << 6) == "7700"


def test_modes1_squawk() -> None:
    assert decode_id13(int.from_bytes(bytes.fromhex("280010248C796B")[2:4], "big") & 0x1FFF) == (
        "0112"
    )


def test_wider_than_13_bits_is_an_error() -> None:
    with pytest.raises(FieldError):
        decode_id13(1 << 13)
