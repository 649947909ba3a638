"""Raw hex (AVR) lines: *HEX; and @TIMESTAMPHEX;, errors by reason, incremental parsing."""

from __future__ import annotations

import pytest

from hardware.modes.rawhex import RawHexParser, RawLineError, encode_raw, parse_raw_line

DF17 = bytes.fromhex("8D4D2023587FF6E6B4E3A4CD3B7E")


def test_plain_line_has_no_timestamp() -> None:
    frame = parse_raw_line("*8D4D2023587FF6E6B4E3A4CD3B7E;")
    assert frame.msg == DF17
    assert frame.timestamp_12mhz is None


def test_mlat_line_carries_a_48_bit_12mhz_timestamp() -> None:
    frame = parse_raw_line("@00A1B2C3D4E5" + DF17.hex() + ";\r\n")
    assert frame.timestamp_12mhz == 0x00A1B2C3D4E5
    assert frame.msg == DF17


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("*8D4D2023587FF6E6B4E3A4CD3B7E", "no_terminator"),
        ("#8D4D2023587FF6E6B4E3A4CD3B7E;", "bad_prefix"),
        ("*8D4D2023587FF6E6B4E3A4CD3B;", "bad_length"),
        ("*8D4D2023587FF6E6B4E3A4CD3BZZ;", "not_hex"),
    ],
)
def test_malformed_lines_name_the_reason(line: str, reason: str) -> None:
    with pytest.raises(RawLineError) as err:
        parse_raw_line(line)
    assert err.value.reason == reason


def test_encoder_and_parser_agree() -> None:
    for ts in (None, 0x123456789ABC):
        assert parse_raw_line(encode_raw(DF17, ts)).timestamp_12mhz == ts


def test_incremental_parser_joins_split_lines_and_counts_bad_ones() -> None:
    stream = (encode_raw(DF17) + "garbage;\r\n" + "*5D4D20237A55A6;\r\n" + encode_raw(DF17, 7)
              ).encode()
    parser = RawHexParser()
    frames = []
    for i in range(0, len(stream), 5):
        frames += parser.feed(stream[i : i + 5])
    assert [(f.msg.hex(), f.timestamp_12mhz) for f in frames] == [
        (DF17.hex(), None),
        ("5d4d20237a55a6", None),
        (DF17.hex(), 7),
    ]
    assert dict(parser.errors) == {"bad_prefix": 1}
