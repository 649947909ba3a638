"""SBS BaseStation CSV: field positions, flags, times, errors naming the field."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest

from hardware.modes.sbs import SbsError, SbsMessage, format_sbs_line, parse_sbs_line

# As dump1090 writes them (MSG,3 airborne position, MSG,1 identification, MSG,4 velocity).
POSITION = ("MSG,3,1,1,4D2023,1,2024/05/01,12:34:56.789,2024/05/01,12:34:56.790,,22875,,,"
            "37.10156,13.78474,,,0,0,0,0")
IDENT = "MSG,1,1,1,4D2023,1,2024/05/01,12:34:57.000,2024/05/01,12:34:57.001,AMC421  ,,,,,,,,,,,"
VELOCITY = ("MSG,4,1,1,4D2023,1,2024/05/01,12:34:58.000,2024/05/01,12:34:58.000,,,371,158,,,"
            "-1728,,,,,0")


def test_airborne_position_fields() -> None:
    msg = parse_sbs_line(POSITION)
    assert msg is not None
    assert (msg.transmission, msg.icao_hex, msg.altitude_ft) == (3, "4D2023", 22875)
    assert (msg.lat_deg, msg.lon_deg) == (37.10156, 13.78474)
    assert (msg.alert, msg.emergency, msg.spi, msg.on_ground) == (False, False, False, False)
    assert msg.t_ms == 1714566896789  # 2024-05-01T12:34:56.789Z


def test_a_non_icao_hex_ident_is_its_own_address_and_round_trips() -> None:
    msg = parse_sbs_line(POSITION.replace(",4D2023,", ",~4D2023,"))
    assert msg is not None
    assert (msg.icao, msg.icao_hex) == (0x4D2023 | 1 << 24, "~4D2023")
    assert ",~4D2023," in format_sbs_line(msg)
    plain = parse_sbs_line(POSITION)
    assert plain is not None and plain.icao == 0x4D2023


def test_identification_and_velocity_fields() -> None:
    ident = parse_sbs_line(IDENT)
    vel = parse_sbs_line(VELOCITY)
    assert ident is not None and vel is not None
    assert ident.callsign == "AMC421"
    assert (vel.speed_kt, vel.track_deg, vel.vrate_fpm) == (371.0, 158.0, -1728)
    assert vel.lat_deg is None


def test_time_zone_of_the_date_fields_is_the_callers_choice() -> None:
    cet = timezone(timedelta(hours=1))
    utc_msg = parse_sbs_line(POSITION, UTC)
    cet_msg = parse_sbs_line(POSITION, cet)
    assert utc_msg is not None and cet_msg is not None
    assert utc_msg.t_ms is not None and cet_msg.t_ms is not None
    assert utc_msg.t_ms - cet_msg.t_ms == 3_600_000


def test_lines_without_aircraft_data_are_not_messages() -> None:
    for line in ("", "SEL,,1,1,4D2023,1,2024/05/01,12:00:00.000", "CLK,,,,,,2024/05/01"):
        assert parse_sbs_line(line) is None


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (POSITION.replace("MSG,3", "MSG,9"), "transmission_type"),
        (POSITION.replace("4D2023", "4D20ZZ"), "hex_ident"),
        (POSITION.replace("37.10156", "97.1"), "latitude"),
        (POSITION.replace("22875", "high"), "altitude"),
        (POSITION.rsplit(",", 5)[0], "field_count"),
        ("FOO,1,2,3", "message_type"),
    ],
)
def test_malformed_lines_name_the_field(line: str, field: str) -> None:
    with pytest.raises(SbsError) as err:
        parse_sbs_line(line)
    assert err.value.field == field


def test_formatter_and_parser_agree() -> None:
    msg = SbsMessage(transmission=3, icao=0x4D2023, t_ms=1714566896789, altitude_ft=22875,
                     lat_deg=37.10156, lon_deg=13.78474, squawk="0112", on_ground=False)
    assert parse_sbs_line(format_sbs_line(msg)) == msg
