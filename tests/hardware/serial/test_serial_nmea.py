"""NMEA: checksums of published sentences, GGA/RMC decoding, the fix tracker."""

from __future__ import annotations

import calendar

import pytest

from hardware.serial import (
    ChecksumError,
    GpsTracker,
    SentenceError,
    decode_gga,
    decode_rmc,
    parse_fix,
    parse_sentence,
    utc_ms,
)

# Published example sentences (NMEA reference material, u-blox docs) with their checksums.
GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"
RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
GNGGA = "$GNGGA,001043.00,4404.14036,N,12118.85961,W,1,12,0.98,1113.0,M,-21.3,M,,*47"
GSV = "$GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00*74"
REF_MS = calendar.timegm((1994, 3, 23, 12, 0, 0)) * 1000


def with_checksum(body: str) -> str:
    from hardware.serial import append_checksum

    return "$" + append_checksum(body)


@pytest.mark.parametrize("line", [GGA, RMC, GNGGA, GSV])
def test_published_sentences_pass_the_checksum(line: str) -> None:
    s = parse_sentence(line)
    assert s.talker in ("GP", "GN")


def test_corrupted_sentence_fails_the_checksum() -> None:
    bad = GGA.replace("4807.038", "4807.039")
    with pytest.raises(ChecksumError) as err:
        parse_sentence(bad)
    assert err.value.reason == "bad_checksum"
    assert err.value.actual == 0x47


def test_sentence_without_checksum_is_rejected() -> None:
    with pytest.raises(ChecksumError) as err:
        parse_sentence(GGA[:-3])
    assert err.value.reason == "missing_checksum"


def test_gga_gives_position_altitude_quality_and_time() -> None:
    fix = decode_gga(parse_sentence(GGA), REF_MS)
    assert fix is not None
    assert fix.lat == pytest.approx(48 + 7.038 / 60, abs=1e-9)
    assert fix.lon == pytest.approx(11 + 31.0 / 60, abs=1e-9)
    assert fix.alt_m == 545.4
    assert (fix.quality, fix.sats, fix.hdop) == (1, 8, 0.9)
    assert fix.t_ms == calendar.timegm((1994, 3, 23, 12, 35, 19)) * 1000


def test_any_talker_and_western_hemisphere() -> None:
    fix = parse_fix(GNGGA, calendar.timegm((2024, 5, 1, 0, 5, 0)) * 1000)
    assert fix is not None
    assert fix.talker == "GN"
    assert fix.lat == pytest.approx(44 + 4.14036 / 60)
    assert fix.lon == pytest.approx(-(121 + 18.85961 / 60))
    assert fix.alt_m == 1113.0
    assert fix.t_ms == calendar.timegm((2024, 5, 1, 0, 10, 43)) * 1000


def test_rmc_gives_position_date_speed_and_course() -> None:
    fix, date = decode_rmc(parse_sentence(RMC))
    assert date == (1994, 3, 23)
    assert fix is not None
    assert fix.alt_m is None
    assert fix.speed_mps == pytest.approx(22.4 * 1852 / 3600)
    assert fix.course_deg == 84.4
    assert fix.t_ms == calendar.timegm((1994, 3, 23, 12, 35, 19)) * 1000


def test_no_fix_sentences_give_no_fix() -> None:
    gga = with_checksum("GPGGA,123520,,,,,0,00,99.9,,M,,M,,")
    rmc = with_checksum("GPRMC,123520,V,,,,,,,230394,,,N")
    assert parse_fix(gga, REF_MS) is None
    assert parse_fix(rmc, REF_MS) is None
    assert parse_fix(GSV, REF_MS) is None


@pytest.mark.parametrize("body", [
    "GPGGA,123519,4807.038,X,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",  # hemisphere
    "GPGGA,123519,4867.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",  # minutes >= 60
    "GPGGA,123519,9107.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",  # lat > 90
    "GPGGA,12a519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",  # time
    "GPGGA,123519,4807.038,N,01131.000,E,x,08,0.9,545.4,M,46.9,M,,",  # quality
    "GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394x,003.1,W",  # date
])
def test_malformed_fields_raise_sentence_errors(body: str) -> None:
    with pytest.raises(SentenceError) as err:
        parse_fix(with_checksum(body), REF_MS)
    assert err.value.reason == "bad_nmea"


def test_gga_without_date_is_dated_nearest_the_reference_clock() -> None:
    just_after_midnight = calendar.timegm((2024, 5, 2, 0, 0, 5)) * 1000
    # 23:59:58 seen 7 s later on the host clock belongs to the previous day.
    assert utc_ms(86_398_000, None, just_after_midnight) == just_after_midnight - 7000


def test_tracker_merges_rmc_and_gga_of_the_same_second() -> None:
    tracker = GpsTracker()
    tracker.feed(parse_sentence(RMC), REF_MS, 100.0)
    fix = tracker.feed(parse_sentence(GGA), REF_MS, 100.1)
    assert fix is not None
    assert fix.alt_m == 545.4
    assert fix.speed_mps == pytest.approx(22.4 * 1852 / 3600)
    assert fix.t_ms == calendar.timegm((1994, 3, 23, 12, 35, 19)) * 1000
    assert fix.to_data()["sentence"] == "GPGGA"


def test_tracker_fix_goes_stale_after_max_age() -> None:
    tracker = GpsTracker()
    tracker.feed(parse_sentence(GGA), REF_MS, 100.0)
    assert tracker.current(104.9, max_age_s=5.0) is not None
    assert tracker.current(105.1, max_age_s=5.0) is None
    assert tracker.age_s(105.1) == pytest.approx(5.1)


def test_lost_fix_keeps_the_last_valid_one_until_it_ages() -> None:
    tracker = GpsTracker()
    tracker.feed(parse_sentence(GGA), REF_MS, 100.0)
    lost = with_checksum("GPGGA,123520,,,,,0,00,99.9,,M,,M,,")
    assert tracker.feed(parse_sentence(lost), REF_MS, 101.0) is None
    current = tracker.current(101.0, max_age_s=5.0)
    assert current is not None
    assert current.alt_m == 545.4
