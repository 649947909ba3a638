"""CRC-24 known vectors and the syndrome tables behind error correction."""

from __future__ import annotations

import pytest

from hardware.modes.crc import (
    DF_FIELD_BITS,
    crc24,
    flip_bits,
    residual,
    single_bit_syndromes,
    syndrome_table,
    with_parity,
)

# Clean DF17 frames (residual 0) from the 1090 MHz Riddle and pyModeS' test suite.
CLEAN_DF17 = [
    "8D406B902015A678D4D220AA4BDA",
    "8d8960ed58bf053cf11bc5932b7d",
    "8d45cab390c39509496ca9a32912",
    "8d49d3d4e1089d00000000744c3b",
    "8d74802958c904e6ef4ba0184d5c",
    "8d4400cd9b0000b4f87000e71a10",
    "8d4065de58a1054a7ef0218e226a",
]


@pytest.mark.parametrize("hex_msg", CLEAN_DF17)
def test_clean_extended_squitter_has_zero_residual(hex_msg: str) -> None:
    assert residual(bytes.fromhex(hex_msg)) == 0


@pytest.mark.parametrize(
    ("hex_msg", "expected"),
    [
        ("c80b2dca34aa21dd821a04cb64d4", 10719924),
        ("a800089d8094e33a6004e4b8a522", 4805588),
        ("a8000614a50b6d32bed000bbe0ed", 5659991),
        ("a0000410bc900010a40000f5f477", 11727682),
        ("8d4ca251204994b1c36e60a5343d", 16),
        ("b0001718c65632b0a82040715b65", 353333),
    ],
)
def test_residual_matches_published_values(hex_msg: str, expected: int) -> None:
    assert residual(bytes.fromhex(hex_msg)) == expected


@pytest.mark.parametrize(
    ("hex_msg", "icao"),
    [
        ("A0001839CA3800315800007448D9", 0x400940),
        ("A000139381951536E024D4CCF6B5", 0x3C4DD2),
        ("A000029CFFBAA11E2004727281F1", 0x4243D0),
    ],
)
def test_address_parity_residual_is_the_aircraft_address(hex_msg: str, icao: int) -> None:
    assert residual(bytes.fromhex(hex_msg)) == icao


def test_crc_of_the_riddle_example_is_its_parity_field() -> None:
    msg = bytes.fromhex("8D406B902015A678D4D220AA4BDA")
    assert crc24(msg[:-3]) == 0xAA4BDA
    assert with_parity(msg[:-3]) == msg


def test_with_parity_overlay_round_trips_through_residual() -> None:
    data = bytes.fromhex("20001838")
    assert residual(with_parity(data, 0x4D2023)) == 0x4D2023


def test_crc_is_linear_so_syndromes_depend_only_on_the_error() -> None:
    clean = bytes.fromhex(CLEAN_DF17[0])
    other = bytes.fromhex(CLEAN_DF17[1])
    assert residual(flip_bits(clean, 40, 77)) == residual(flip_bits(other, 40, 77))


def test_flip_bits_numbers_bits_from_the_first_on_air() -> None:
    assert flip_bits(bytes(7), 0) == bytes([0x80]) + bytes(6)
    assert flip_bits(bytes(7), 55) == bytes(6) + bytes([0x01])


@pytest.mark.parametrize("n_bits", [56, 112])
def test_single_bit_table_covers_every_bit_but_the_df_field(n_bits: int) -> None:
    table = syndrome_table(n_bits, 1)
    assert len(table) == n_bits - DF_FIELD_BITS
    for syndrome, (mask, count) in table.items():
        assert count == 1
        assert residual(mask.to_bytes(n_bits // 8, "big")) == syndrome
        assert mask >> (n_bits - DF_FIELD_BITS) == 0


@pytest.mark.parametrize("n_bits", [56, 112])
def test_two_bit_table_is_unambiguous_and_includes_single_bits(n_bits: int) -> None:
    table = syndrome_table(n_bits, 2)
    n = n_bits - DF_FIELD_BITS
    assert len(table) == n + n * (n - 1) // 2
    assert sum(1 for _, count in table.values() if count == 1) == n


def test_syndrome_table_rejects_unsupported_sizes() -> None:
    with pytest.raises(ValueError):
        syndrome_table(64, 1)
    with pytest.raises(ValueError):
        syndrome_table(112, 3)


@pytest.mark.parametrize("nbits", [56, 112])
def test_single_bit_syndromes_are_the_residuals_of_lone_errors_and_add_up(nbits: int) -> None:
    syn = single_bit_syndromes(nbits)
    assert syn.shape == (nbits,) and not syn.flags.writeable
    zero = bytes(nbits // 8)
    for bit in (0, 5, 31, nbits - 25, nbits - 1):
        assert int(syn[bit]) == residual(flip_bits(zero, bit))
    # Linear: a pattern's residual is the XOR of its bits' syndromes.
    clean = with_parity(bytes.fromhex("8D4840D6202CC371C32CE0"[: nbits // 4 - 6]))
    assert residual(flip_bits(clean, 7, 40, nbits - 3)) == int(syn[7] ^ syn[40] ^ syn[nbits - 3])
