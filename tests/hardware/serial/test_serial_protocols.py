"""Sensor line protocols and the line checksum."""

from __future__ import annotations

import pytest

import hardware.serial as hs
from hardware.serial import (
    ChecksumError,
    CsvParser,
    FieldError,
    JsonParser,
    KvParser,
    LineError,
    append_checksum,
    format_status,
    parse_number,
    parse_status,
    verify_checksum,
    xor_checksum,
)


def test_kv_line_values_become_numbers_where_they_parse() -> None:
    reading = KvParser().parse("temp=21.5 hum=40 a0=-3 state=ok,vbat=4.1e0")
    assert reading == {"temp": 21.5, "hum": 40, "a0": -3, "state": "ok", "vbat": 4.1}
    assert isinstance(reading["hum"], int)


@pytest.mark.parametrize(("line", "reason"), [
    ("temp=21.5 garbage", "bad_token"),
    ("temp=1 temp=2", "duplicate_field"),
    ("9x=1", "bad_key"),
    ("units=3", "reserved_field"),
    ("   ", "empty_reading"),
])
def test_malformed_kv_lines_name_their_reason(line: str, reason: str) -> None:
    with pytest.raises(LineError) as err:
        KvParser().parse(line)
    assert err.value.reason == reason


def test_non_finite_numbers_stay_strings() -> None:
    assert parse_number("nan") == "nan"
    assert parse_number("inf") == "inf"
    assert parse_number("1e999") == "1e999"
    assert parse_number("0x10") == "0x10"


def test_csv_header_names_the_columns_and_is_relearnt() -> None:
    parser = CsvParser()
    with pytest.raises(LineError) as err:
        parser.parse("21.5,40")
    assert err.value.reason == "csv_no_header"
    assert parser.parse("temp,hum") is None
    assert parser.parse("21.5,40") == {"temp": 21.5, "hum": 40}
    assert parser.parse("21.6,") == {"temp": 21.6}
    assert parser.parse("t_c,rh") is None  # the device restarted with a new header
    assert parser.parse("1,2") == {"t_c": 1, "rh": 2}


def test_csv_configured_columns_skip_the_repeated_header() -> None:
    parser = CsvParser(columns=("temp", "hum"))
    assert parser.parse("temp,hum") is None
    assert parser.parse("20,30") == {"temp": 20, "hum": 30}
    with pytest.raises(LineError) as err:
        parser.parse("20,30,40")
    assert err.value.reason == "csv_columns"
    with pytest.raises(LineError) as err:
        parser.parse("pressure,hum")
    assert err.value.reason == "csv_header_mismatch"


def test_json_line_is_one_object() -> None:
    assert JsonParser().parse('{"temp": 21.5, "ok": true}') == {"temp": 21.5, "ok": True}
    for line, reason in (("[1,2]", "bad_json"), ('{"t": NaN}', "bad_json"),
                         ('{"t": 1e999}', "bad_json"), ("{", "bad_json"),
                         ('{"fix": 1}', "reserved_field"), ("{}", "empty_reading")):
        with pytest.raises(LineError) as err:
            JsonParser().parse(line)
        assert err.value.reason == reason


def test_line_checksum_round_trip_and_rejections() -> None:
    body = "temp=21.5 hum=40 a0=512"
    line = append_checksum(body)
    assert line == body + "*3A"  # 0x3A: XOR of the body bytes, computed separately
    assert xor_checksum(body) == 0x3A
    assert verify_checksum(line, required=True) == body
    assert verify_checksum(body + "*3a", required=True) == body  # either hex case
    with pytest.raises(ChecksumError) as err:
        verify_checksum("temp=21.6 hum=40 a0=512*3A", required=True)
    assert err.value.reason == "bad_checksum"
    with pytest.raises(ChecksumError) as err:
        verify_checksum(body, required=True)
    assert err.value.reason == "missing_checksum"
    assert verify_checksum(body, required=False) == body


def test_field_error_carries_the_field() -> None:
    with pytest.raises(FieldError) as err:
        KvParser().parse("fix=1")
    assert err.value.field == "fix"


def test_status_line_round_trip_and_limits() -> None:
    line = format_status(["redis up", "spool 0", "a|b*c", "x" * 40, *[f"r{i}" for i in range(9)]])
    rows = parse_status(line)
    assert rows[:3] == ["redis up", "spool 0", "a/bxc"]
    assert rows[3] == "x" * 21
    assert len(rows) == 8
    assert len(line) + 1 <= 120
    with pytest.raises(ChecksumError):
        parse_status(line[:-1] + ("0" if line[-1] != "0" else "1"))


def test_public_surface_is_deliberate() -> None:
    assert sorted(hs.__all__) == sorted(name for name in dir(hs) if not name.startswith("_")
                                        and name not in {"checksum", "errors", "nmea", "port",
                                                         "protocols", "status"})
