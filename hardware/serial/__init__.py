"""Serial sensors: a robust line reader on pyserial, line protocols and NMEA.

Public surface::

    port        PortSettings, SerialLineReader, SerialLineWriter, ReaderStats, StopFlag,
                open_port
    protocols   KvParser, CsvParser, JsonParser, LineParser, parse_number
    checksum    xor_checksum, append_checksum, split_checksum, verify_checksum
    nmea        parse_sentence, decode_gga, decode_rmc, parse_fix, Fix, GpsTracker, utc_ms
    status      format_status, parse_status (daemon -> device status lines)
    errors      LineError > ChecksumError, FieldError, SentenceError

Like the rest of `hardware/`, this knows nothing of the daemon or Redis.
"""

from hardware.serial.checksum import (
    append_checksum,
    split_checksum,
    verify_checksum,
    xor_checksum,
)
from hardware.serial.errors import ChecksumError, FieldError, LineError, SentenceError
from hardware.serial.nmea import (
    Fix,
    GpsTracker,
    NmeaSentence,
    decode_gga,
    decode_rmc,
    parse_fix,
    parse_sentence,
    utc_ms,
)
from hardware.serial.port import (
    PortSettings,
    ReaderStats,
    SerialLineReader,
    SerialLineWriter,
    StopFlag,
    open_port,
)
from hardware.serial.protocols import (
    CsvParser,
    JsonParser,
    KvParser,
    LineParser,
    parse_number,
)
from hardware.serial.status import STATUS_PREFIX, format_status, parse_status

__all__ = [
    "STATUS_PREFIX",
    "ChecksumError",
    "CsvParser",
    "FieldError",
    "Fix",
    "GpsTracker",
    "JsonParser",
    "KvParser",
    "LineError",
    "LineParser",
    "NmeaSentence",
    "PortSettings",
    "ReaderStats",
    "SentenceError",
    "SerialLineReader",
    "SerialLineWriter",
    "StopFlag",
    "append_checksum",
    "decode_gga",
    "decode_rmc",
    "format_status",
    "open_port",
    "parse_fix",
    "parse_number",
    "parse_sentence",
    "parse_status",
    "split_checksum",
    "utc_ms",
    "verify_checksum",
    "xor_checksum",
]
