"""Errors raised by the serial line parsers.

Callers count failures by ``reason`` (a short, stable metric label) instead of
parsing messages::

    ValueError
     └── LineError                  .reason: any line that cannot be used
          ├── ChecksumError         .expected, .actual: ``*HH`` does not match the XOR
          │                         (reason "bad_checksum"), or is missing where it is
          │                         required (reason "missing_checksum", .actual None)
          ├── FieldError            .field, .value: one field is malformed
          │                         (reason "bad_field", "bad_key", "reserved_field", …)
          └── SentenceError         .sentence: an NMEA sentence that is malformed
                                    (reason "bad_nmea")
"""

from __future__ import annotations


class LineError(ValueError):
    """A received line that cannot be used; `reason` is a short metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ChecksumError(LineError):
    """The ``*HH`` line checksum is wrong, or missing where one is required."""

    def __init__(self, expected: int, actual: int | None) -> None:
        self.expected = expected
        self.actual = actual
        if actual is None:
            super().__init__("missing_checksum", f"no *HH checksum (expected *{expected:02X})")
        else:
            super().__init__(
                "bad_checksum", f"checksum *{actual:02X} does not match *{expected:02X}"
            )


class FieldError(LineError):
    """One field of a sensor line is malformed."""

    def __init__(self, field: str, value: str, reason: str = "bad_field") -> None:
        self.field = field
        self.value = value
        super().__init__(reason, f"{field}={value!r}: {reason.replace('_', ' ')}")


class SentenceError(LineError):
    """An NMEA sentence that cannot be decoded."""

    def __init__(self, sentence: str, message: str) -> None:
        self.sentence = sentence
        super().__init__("bad_nmea", f"{sentence}: {message}")
