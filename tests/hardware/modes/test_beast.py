"""Beast binary: escaping, timestamps, signal, resync, incremental parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.modes.beast import (
    BeastError,
    BeastParser,
    encode_beast,
    signal_byte,
)

DF17 = bytes.fromhex("8D4D2023587FF6E6B4E3A4CD3B7E")
DF11 = bytes.fromhex("5D4D20237A55A6")


def test_frame_layout_matches_the_wire_format() -> None:
    wire = encode_beast(DF11, timestamp_12mhz=0x0102030405, signal=0x80)
    assert wire == bytes.fromhex("1a32") + bytes.fromhex("000102030405") + b"\x80" + DF11


def test_every_0x1a_in_timestamp_signal_and_message_is_doubled_and_restored() -> None:
    msg = bytes.fromhex("8D1A20231A7FF6E6B4E3A4CD3B1A")
    wire = encode_beast(msg, timestamp_12mhz=0x1A1A00001A00, signal=0x1A)
    assert wire.count(b"\x1a\x1a") == 7
    (frame,) = BeastParser().feed(wire)
    assert (frame.msg, frame.timestamp_12mhz, frame.signal) == (msg, 0x1A1A00001A00, 0x1A)


def test_mode_ac_short_and_long_frames_are_told_apart() -> None:
    parser = BeastParser()
    frames = parser.feed(
        encode_beast(b"\x12\x34", 5, 9) + encode_beast(DF11, 6, 9) + encode_beast(DF17, 7, 9)
    )
    assert [(f.type_byte, len(f.msg), f.is_mode_s) for f in frames] == [
        (0x31, 2, False),
        (0x32, 7, True),
        (0x33, 14, True),
    ]


def test_a_frame_cut_short_is_dropped_and_the_next_one_recovered() -> None:
    good = encode_beast(DF17, 1000, 200)
    parser = BeastParser()
    frames = parser.feed(good[:10] + good + encode_beast(DF11, 2000, 100))
    assert [f.msg for f in frames] == [DF17, DF11]
    assert parser.resyncs == 1


def test_unknown_frame_types_and_stray_bytes_are_skipped() -> None:
    parser = BeastParser()
    frames = parser.feed(b"junk" + b"\x1a\x34\x00\x00\x00\x00\x00\x00\x00\x01"
                         + encode_beast(DF17, 1, 1))
    assert [f.msg for f in frames] == [DF17]
    assert parser.skipped >= 1


def test_signal_byte_round_trips_through_dbfs() -> None:
    (frame,) = BeastParser().feed(encode_beast(DF17, 1, signal_byte(-20.0)))
    assert frame.signal_dbfs == pytest.approx(-20.0, abs=0.4)
    assert BeastParser().feed(encode_beast(DF17, 1, 0))[0].signal_dbfs is None


def test_encoder_rejects_what_the_format_cannot_carry() -> None:
    with pytest.raises(BeastError) as err:
        encode_beast(b"\x00" * 5)
    assert err.value.field == "length"
    with pytest.raises(BeastError):
        encode_beast(DF17, timestamp_12mhz=1 << 48)


frames_strategy = st.lists(
    st.tuples(
        st.sampled_from([2, 7, 14]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.integers(0, (1 << 48) - 1),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=20,
)


@given(frames=frames_strategy, cuts=st.lists(st.integers(1, 40), max_size=30))
def test_any_split_of_the_stream_yields_the_same_frames(
    frames: list[tuple[bytes, int, int]], cuts: list[int]
) -> None:
    wire = b"".join(encode_beast(m, t, s) for m, t, s in frames)
    parser = BeastParser()
    got = []
    pos = 0
    for cut in cuts:
        got += parser.feed(wire[pos : pos + cut])
        pos += cut
    got += parser.feed(wire[pos:])
    assert [(f.msg, f.timestamp_12mhz, f.signal) for f in got] == frames
    assert parser.resyncs == 0
