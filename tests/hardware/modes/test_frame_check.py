"""Parity rules per downlink format, error repair and the phantom-aircraft policy."""

from __future__ import annotations

import pytest
from modes_reference import ReferenceLine

from hardware.modes.crc import flip_bits, residual, with_parity
from hardware.modes.frame_check import (
    AddressBook,
    check_frame,
    downlink_format,
    frame_length_bytes,
)

ICAO = 0x4D2023
DF17 = bytes.fromhex("8D4D2023991096AD888014892961")  # clean, from modes1.bin
DF11 = with_parity(bytes.fromhex("5D4D2023"))
DF4 = with_parity(bytes.fromhex("20000F1F"), ICAO)
DF20 = with_parity(bytes.fromhex("A0000F1F" + "00" * 7), ICAO)


def known_book(t_s: float = 0.0) -> AddressBook:
    book = AddressBook()
    book.confirm(ICAO, t_s)
    return book


def test_clean_df17_is_accepted_and_confirms_its_address() -> None:
    book = AddressBook()
    frame = check_frame(DF17, book, 1.0)
    assert frame is not None
    assert (frame.df, frame.icao, frame.crc, frame.corrected_bits) == (17, ICAO, "ok", 0)
    assert frame.msg == DF17
    assert book.is_known(ICAO, 1.0)


@pytest.mark.parametrize("bit", range(5, 112))
def test_any_single_bit_error_in_df17_is_repaired_to_the_original(bit: int) -> None:
    frame = check_frame(flip_bits(DF17, bit), known_book(), 0.5)
    assert frame is not None
    assert frame.msg == DF17
    assert (frame.crc, frame.corrected_bits, frame.icao) == ("fixed", 1, ICAO)


@pytest.mark.parametrize("bit", range(5))
def test_an_error_in_the_df_field_is_never_repaired(bit: int) -> None:
    assert check_frame(flip_bits(DF17, bit), known_book(), 0.5) is None


def test_repaired_df17_from_an_unknown_address_is_rejected() -> None:
    book = AddressBook()
    assert check_frame(flip_bits(DF17, 60), book, 0.0) is None
    assert len(book) == 0


def test_repaired_frames_do_not_confirm_their_address() -> None:
    book = known_book(0.0)
    assert check_frame(flip_bits(DF17, 60), book, 59.0) is not None
    assert not book.is_known(ICAO, 61.0)


def test_repair_can_be_switched_off() -> None:
    assert check_frame(flip_bits(DF17, 60), known_book(), 0.0, max_fix_bits=0) is None


def test_two_bit_errors_are_repaired_only_when_enabled() -> None:
    damaged = flip_bits(DF17, 33, 90)
    assert check_frame(damaged, known_book(), 0.0) is None
    frame = check_frame(damaged, known_book(), 0.0, max_fix_bits=2)
    assert frame is not None
    assert (frame.msg, frame.corrected_bits, frame.crc) == (DF17, 2, "fixed")


def test_iid_replies_need_a_known_address_and_never_confirm() -> None:
    book = AddressBook()
    with_iid = with_parity(DF11[:4], 0x15)
    assert check_frame(with_iid, book, 0.0) is None
    assert len(book) == 0
    frame = check_frame(DF11, book, 0.0)
    assert frame is not None
    assert frame.crc == "ok"
    assert book.is_known(ICAO, 0.0)
    frame = check_frame(with_iid, book, 30.0)
    assert frame is not None
    assert (frame.df, frame.icao, frame.crc) == (11, ICAO, "iid")
    assert not book.is_known(ICAO, 61.0)  # the IID reply did not renew the confirmation


@pytest.mark.parametrize("bit", range(5, 49))
def test_df11_single_bit_errors_are_repaired_for_known_addresses(bit: int) -> None:
    frame = check_frame(flip_bits(DF11, bit), known_book(), 0.0)
    assert frame is not None
    assert (frame.msg, frame.crc, frame.corrected_bits) == (DF11, "fixed", 1)


@pytest.mark.parametrize("bit", range(49, 56))
def test_df11_errors_in_the_iid_bits_read_as_an_iid_of_the_same_address(bit: int) -> None:
    # The low 7 parity bits carry the IID overlay: an error there is indistinguishable
    # from an interrogator id, and the address is untouched either way.
    assert check_frame(flip_bits(DF11, bit), AddressBook(), 0.0) is None
    frame = check_frame(flip_bits(DF11, bit), known_book(), 0.0)
    assert frame is not None
    assert (frame.icao, frame.crc, frame.corrected_bits) == (ICAO, "iid", 0)


def test_df11_with_iid_and_a_bit_error_is_rejected() -> None:
    damaged = flip_bits(with_parity(DF11[:4], 0x15), 20)
    assert check_frame(damaged, known_book(), 0.0) is None


@pytest.mark.parametrize("frame_bytes", [DF4, DF20])
def test_address_parity_formats_need_a_known_address(frame_bytes: bytes) -> None:
    assert check_frame(frame_bytes, AddressBook(), 0.0) is None
    frame = check_frame(frame_bytes, known_book(), 0.0)
    assert frame is not None
    assert (frame.icao, frame.crc, frame.corrected_bits) == (ICAO, "ap", 0)


def test_address_parity_formats_are_never_repaired_and_never_confirm() -> None:
    book = AddressBook()
    book.confirm(ICAO, 0.0)
    assert check_frame(flip_bits(DF4, 30), book, 0.0) is None
    check_frame(DF4, book, 50.0)
    assert not book.is_known(ICAO, 61.0)


def test_known_addresses_expire_after_the_ttl() -> None:
    book = AddressBook(ttl_s=10.0)
    book.confirm(ICAO, 100.0)
    assert check_frame(DF4, book, 110.0) is not None
    assert check_frame(DF4, book, 110.5) is None


def test_df18_confirms_only_with_an_icao_address() -> None:
    anon = with_parity(bytes([0x91]) + DF17[1:11])  # DF18 CF=1: non-ICAO address
    book = AddressBook()
    frame = check_frame(anon, book, 0.0)
    assert frame is not None
    assert (frame.df, frame.crc) == (18, "ok")
    assert len(book) == 0
    check_frame(with_parity(bytes([0x90]) + DF17[1:11]), book, 0.0)
    assert book.is_known(ICAO, 0.0)


@pytest.mark.parametrize(
    "msg",
    [
        DF17[:7],  # long format cut short
        DF4 + bytes(7),  # short format padded to 14 bytes
        DF17[:10],  # neither length
        b"",
        with_parity(bytes([0x98]) + DF17[1:11]),  # DF19 military, not decoded
        with_parity(bytes([0x08, 0x4D, 0x20, 0x23])),  # DF1 does not exist
    ],
)
def test_frames_of_the_wrong_length_or_format_are_rejected(msg: bytes) -> None:
    assert check_frame(msg, known_book(), 0.0) is None


def test_df24_is_recognised_from_its_two_leading_bits() -> None:
    assert downlink_format(0xC0) == 24
    assert downlink_format(0xFF) == 24
    assert downlink_format(0x8D) == 17
    elm = with_parity(bytes([0xD3]) + bytes(10), ICAO)
    frame = check_frame(elm, known_book(), 0.0)
    assert frame is not None
    assert (frame.df, frame.crc) == (24, "ap")


def test_frame_length_follows_the_first_bit() -> None:
    assert frame_length_bytes(0x5D) == 7
    assert frame_length_bytes(0x8D) == 14


def test_address_book_prunes_expired_entries() -> None:
    book = AddressBook(ttl_s=10.0)
    book.confirm(1, 0.0)
    book.confirm(2, 5.0)
    assert book.known(12.0) == frozenset({2})
    assert book.prune(12.0) == 1
    assert len(book) == 1


def test_every_reference_message_passes_in_order(reference: list[ReferenceLine]) -> None:
    book = AddressBook()
    for line in reference:
        frame = check_frame(line.msg, book, line.t_s)
        assert frame is not None, line
        assert frame.msg == line.msg
    ap_addresses = {residual(line.msg) for line in reference if line.msg[0] >> 3 not in (11, 17)}
    assert ap_addresses == {ICAO}


def test_reference_addresses_are_the_one_aircraft_and_the_false_decode(
    reference: list[ReferenceLine],
) -> None:
    book = AddressBook()
    icaos = set()
    for line in reference:
        frame = check_frame(line.msg, book, line.t_s)
        assert frame is not None
        icaos.add(frame.icao)
    assert icaos == {ICAO, 0x2124D3}


def test_the_false_2124d3_decode_is_rejected_as_received(reference: list[ReferenceLine]) -> None:
    (false_decode,) = [line for line in reference if line.msg[1:4] == bytes.fromhex("2124D3")]
    assert false_decode.fixed_bits == 1
    book = AddressBook()
    for line in reference:
        if line.sample < false_decode.sample:
            check_frame(line.msg, book, line.t_s)
    # readsb repaired one bit; whichever it was, the frame as received is rejected.
    for bit in range(5, 112):
        assert check_frame(flip_bits(false_decode.msg, bit), book, false_decode.t_s) is None


def test_reference_repairs_are_reproduced(reference: list[ReferenceLine]) -> None:
    book = AddressBook()
    for line in reference:
        if line.fixed_bits and line.msg[1:4] != bytes.fromhex("2124D3"):
            for bit in (8, 40, len(line.msg) * 8 - 8):
                frame = check_frame(flip_bits(line.msg, bit), book, line.t_s)
                assert frame is not None
                assert (frame.msg, frame.crc) == (line.msg, "fixed")
        check_frame(line.msg, book, line.t_s)
