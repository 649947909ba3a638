"""Random bytes at every parser (hypothesis): only the documented error family escapes
a decoder, and a source's per-item handling never raises at all, so one bad item
cannot kill a source.

    parser                                   may raise only
    usgs parse_feature / parse_feed          FeatureError / DocumentError
    QuakePublisher.publish (the usgs source)  DocumentError (the source logs it, retries)
    modes message.decode                     modes DecodeError
    modes check_frame, BeastParser.feed,     nothing
      RawHexParser.feed
    modes parse_raw_line / parse_sbs_line    RawLineError / SbsError (DecodeError)
    Beast / raw / SBS feed sources .handle   nothing
    rs41 decode_frame / decode_plain_frame   rs41 DecodeError
    serial parsers, NMEA                     LineError
    serial source handle_line                nothing
"""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from source_kit import Collect

from daemon.config import parse_config
from daemon.event import Event
from daemon.metrics import Metrics
from daemon.sources.base import SourceContext, Station

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def context(tmp_path: Path) -> SourceContext:
    return SourceContext(station=Station("fuzz", -30.0, -51.0), metrics=Metrics(),
                         state_dir=tmp_path, config_dir=tmp_path, memo=lambda producer: {})


def source_cfg(table: str) -> dict[str, Any]:
    """A source's validated config (defaults filled in) from its TOML table body."""
    text = f'[station]\nid = "fuzz"\nlat = -30.0\nlon = -51.0\n[sources.s]\n{table}\n'
    return parse_config(text).sources["s"]


# -- JSON-shaped junk: what a broken feed or a hostile server may send -------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)
GOOD_FEATURE = {
    "type": "Feature",
    "properties": {"mag": 2.1, "place": "somewhere", "time": 1664409600000,
                   "updated": 1664409700000, "status": "reviewed", "tsunami": 0, "sig": 68,
                   "net": "us", "code": "7000abcd", "ids": ",us7000abcd,",
                   "magType": "ml", "type": "earthquake"},
    "geometry": {"type": "Point", "coordinates": [-51.1, -30.1, 10.0]},
    "id": "us7000abcd",
}
PROPERTY_NAMES = ("mag", "place", "time", "updated", "status", "tsunami", "sig", "net", "code",
                  "ids", "magType", "type")


def mutated_feature() -> st.SearchStrategy[Any]:
    """The good feature with some properties/geometry fields replaced by junk."""
    props = st.fixed_dictionaries(
        {}, optional=dict.fromkeys(PROPERTY_NAMES, json_values)
    )

    def build(replaced: dict[str, Any], geometry: Any, fid: Any) -> dict[str, Any]:
        feature: dict[str, Any] = json.loads(json.dumps(GOOD_FEATURE))
        feature["properties"].update(replaced)
        if geometry is not None:
            feature["geometry"] = geometry
        if fid is not None:
            feature["id"] = fid
        return feature

    geometry = st.none() | json_values | st.fixed_dictionaries(
        {"type": st.just("Point"), "coordinates": st.lists(json_scalars, max_size=4)})
    return st.builds(build, props, geometry, st.none() | json_values)


@FUZZ
@given(feature=mutated_feature() | json_values)
def test_usgs_parse_feature_raises_only_feature_error(feature: Any) -> None:
    from daemon.sources.usgs.feed import FeatureError, parse_feature

    try:
        quake = parse_feature(feature, src="q", station="s", rx_ms=0)
    except FeatureError:
        return
    assert -90 <= quake.event.lat <= 90 and -180 <= quake.event.lon <= 180


@FUZZ
@given(doc=st.binary(max_size=300) | st.builds(
    lambda fs: json.dumps({"type": "FeatureCollection", "features": fs}).encode(),
    st.lists(mutated_feature() | json_values, max_size=5)))
def test_usgs_source_publish_raises_only_document_error(tmp_path: Path, doc: bytes) -> None:
    from daemon.sources.usgs.feed import DocumentError
    from daemon.sources.usgs.source import QuakePublisher, quake_filter

    ctx = context(tmp_path)
    cfg = source_cfg('type = "usgs"\nurl = "feed.geojson"')
    bad: list[str] = []
    publisher = QuakePublisher("q", quake_filter(cfg, -30.0, -51.0), {}, ctx.metrics,
                               lambda reason, detail: bad.append(reason))
    emit = Collect()
    try:
        stats = publisher.publish(doc, emit, station="s", rx_ms=0)
    except DocumentError:
        return  # the source logs it and polls again
    assert stats.features == stats.bad + stats.published + stats.known + stats.stale + sum(
        stats.filtered.values())
    assert len(bad) == stats.bad


# -- Mode S ------------------------------------------------------------------------------

frames = st.binary(min_size=7, max_size=7) | st.binary(min_size=14, max_size=14) | st.binary(
    max_size=20)


@FUZZ
@given(msg=frames)
def test_modes_decode_raises_only_decode_error(msg: bytes) -> None:
    from hardware.modes.errors import DecodeError
    from hardware.modes.frame_check import AddressBook, check_frame
    from hardware.modes.message import decode, decode_checked

    with contextlib.suppress(DecodeError):
        decode(msg)
    checked = check_frame(msg, AddressBook(), 0.0, max_fix_bits=2)  # never raises
    if checked is not None:
        with contextlib.suppress(DecodeError):
            decode_checked(checked)


@FUZZ
@given(chunks=st.lists(st.binary(max_size=64) | st.sampled_from(
    [b"\x1a1", b"\x1a2", b"\x1a3", b"\x1a\x1a", b"\x1a4"]), max_size=12))
def test_beast_and_raw_stream_parsers_never_raise(chunks: list[bytes]) -> None:
    from hardware.modes.beast import BeastParser
    from hardware.modes.rawhex import RawHexParser

    beast, raw = BeastParser(), RawHexParser()
    for chunk in chunks:
        for frame in beast.feed(chunk):
            assert len(frame.msg) in (2, 7, 14)
        for raw_frame in raw.feed(chunk.replace(b"\x1a", b"\n*")):
            assert len(raw_frame.msg) in (2, 7, 14)


sbs_lines = st.text(max_size=120) | st.builds(
    lambda fields: "MSG," + ",".join(fields),
    st.lists(st.text(alphabet="0123456789ABCDEF-.:/ ,", max_size=12), max_size=24))


@FUZZ
@given(line=sbs_lines)
def test_sbs_and_raw_line_parsers_raise_only_decode_error(line: str) -> None:
    from hardware.modes.errors import DecodeError
    from hardware.modes.rawhex import parse_raw_line
    from hardware.modes.sbs import parse_sbs_line

    for parse in (parse_sbs_line, parse_raw_line):
        with contextlib.suppress(DecodeError):
            parse(line)


@pytest.mark.parametrize("kind", ["beast", "raw", "sbs"])
def test_feed_sources_handle_random_bytes_without_raising(tmp_path: Path, kind: str) -> None:
    from daemon.sources import build_source

    src = build_source("feed", source_cfg(f'type = "{kind}"\nhost = "127.0.0.1"'),
                       context(tmp_path))
    emit = Collect()
    src.publisher.emit = emit  # type: ignore[attr-defined]

    @FUZZ
    @given(chunks=st.lists(st.binary(max_size=200), max_size=8))
    def handle(chunks: list[bytes]) -> None:
        src.connection_started()  # type: ignore[attr-defined]
        for chunk in chunks:
            src.handle(chunk)  # type: ignore[attr-defined]

    handle()


# -- RS41 --------------------------------------------------------------------------------


def _block(block_id: int, data: bytes) -> bytes:
    from hardware.rs41.blocks import crc16

    return bytes((block_id, len(data))) + data + struct.pack("<H", crc16(data))


@st.composite
def rs41_plain_frames(draw: st.DrawFn) -> bytes:
    """A descrambled frame with correct parity and CRCs around random block contents, so
    the fuzz reaches the field decoders, not only Reed-Solomon."""
    from hardware.rs41.ecc import encode_parity
    from hardware.rs41.scramble import HEADER_PLAIN

    extended = draw(st.booleans())
    size = 518 if extended else 320
    # Mostly a plausible serial (a frame with an unprintable one is refused early).
    serial = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8,
                          max_size=8).map(str.encode) | st.binary(min_size=8, max_size=8))
    status = draw(st.binary(min_size=2, max_size=2)) + serial + draw(
        st.binary(min_size=30, max_size=30))
    chain = _block(0x79, status)
    for block_id, length in draw(st.lists(st.sampled_from(
            [(0x7C, 30), (0x7B, 21), (0x7A, 42), (0x7E, 10), (0x42, 5)]), max_size=4)):
        chain += _block(block_id, draw(st.binary(min_size=length, max_size=length)))
    frame = bytearray(HEADER_PLAIN + bytes(48) + bytes((0xF0 if extended else 0x0F,)))
    frame += chain[: size - len(frame)]
    frame += draw(st.binary(min_size=size - len(frame), max_size=size - len(frame)))
    return encode_parity(bytes(frame))


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(min_size=320, max_size=320) | st.binary(min_size=518, max_size=518)
       | st.binary(max_size=600))
def test_rs41_decode_frame_of_random_bytes_raises_only_decode_error(raw: bytes) -> None:
    from hardware.rs41.errors import DecodeError
    from hardware.rs41.frame import decode_frame

    with contextlib.suppress(DecodeError):
        decode_frame(raw)


@settings(max_examples=60, deadline=None)
@given(plain=rs41_plain_frames(), flips=st.lists(st.integers(0, 517), max_size=6))
def test_rs41_valid_codewords_with_random_blocks_raise_only_decode_error(
    plain: bytes, flips: list[int]
) -> None:
    from hardware.rs41.errors import DecodeError
    from hardware.rs41.frame import decode_plain_frame

    damaged = bytearray(plain)
    for pos in flips:
        if pos < len(damaged):
            damaged[pos] ^= 0x5A
    try:
        frame = decode_plain_frame(bytes(damaged))
    except DecodeError:
        return
    assert frame.serial is not None


# -- serial lines ------------------------------------------------------------------------

serial_lines = st.text(max_size=100) | st.builds(
    lambda body: "$" + body, st.text(alphabet="GPRMCGA0123456789.,*NSEW", max_size=80)) | \
    st.builds(lambda kv: ",".join(f"{k}={v}" for k, v in kv),
              st.lists(st.tuples(st.text(max_size=6), st.text(max_size=8)), max_size=5))


@FUZZ
@given(line=serial_lines)
def test_serial_parsers_raise_only_line_error(line: str) -> None:
    from hardware.serial.checksum import verify_checksum
    from hardware.serial.errors import LineError
    from hardware.serial.nmea import parse_fix, parse_sentence
    from hardware.serial.protocols import CsvParser, JsonParser, KvParser

    calls = [KvParser().parse, CsvParser().parse, CsvParser(["a", "b"]).parse,
             JsonParser().parse, parse_sentence, lambda s: parse_fix(s, 1_700_000_000_000),
             lambda s: verify_checksum(s, True)]
    for call in calls:
        with contextlib.suppress(LineError):
            call(line)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("protocol", ["kv", "csv", "json", "nmea"])
def test_serial_source_handle_line_never_raises(tmp_path: Path, protocol: str) -> None:
    from daemon.sources import build_source

    src = build_source("bench", source_cfg(
        f'type = "serial"\nport = "/dev/null"\nprotocol = "{protocol}"'), context(tmp_path))
    src.sequence = src._load_sequence()  # type: ignore[attr-defined]  # what run() does first
    emit = Collect()

    @FUZZ
    @given(lines=st.lists(serial_lines, max_size=5))
    def handle(lines: list[str]) -> None:
        for line in lines:
            src.handle_line(line, emit)  # type: ignore[attr-defined]

    handle()
    for event in emit.events:
        assert -90 <= event.lat <= 90 and -180 <= event.lon <= 180


@FUZZ
@given(line=st.binary(max_size=200) | st.builds(
    lambda rec: json.dumps(rec).encode(), st.dictionaries(
        st.sampled_from(["id", "src", "kind", "t", "rx", "lat", "lon", "alt", "data"]),
        json_values)))
def test_jsonl_replay_line_parser_counts_bad_lines_and_never_raises(
    tmp_path: Path, line: bytes
) -> None:
    from daemon.sources import build_source

    src = build_source("replay", source_cfg('type = "jsonl"\npath = "x.jsonl"'),
                       context(tmp_path))
    event = src._parse(line, 1)  # type: ignore[attr-defined]
    assert event is None or isinstance(event, Event)
