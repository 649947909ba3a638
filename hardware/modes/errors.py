"""Errors raised by the Mode S decoders.

Callers count failures by class and attributes instead of parsing messages::

    ValueError
     └── DecodeError                  any message that cannot be decoded
          ├── FrameLengthError        .n_bytes: not 7/14 bytes, or wrong for the DF
          ├── UnsupportedFormatError  .df: a downlink format this package does not decode
          ├── UnsupportedTypeCodeError .tc, .subtype: an ADS-B type code/subtype not decoded
          ├── FieldError              .field, .value: a field holds a reserved/invalid value
          └── CprError                .reason: CPR decode impossible (zone mismatch, stale
                                      pair, out of range of the reference)

`check_frame` does not raise for untrusted frames (it returns None: a failed CRC is
normal traffic, not an error); the errors are for the field decoders and `decode`.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """A Mode S message (or a part of it) cannot be decoded."""


class FrameLengthError(DecodeError):
    """The frame is not 7 or 14 bytes, or its length does not fit its downlink format."""

    def __init__(self, n_bytes: int, expected: int | None = None) -> None:
        self.n_bytes = n_bytes
        self.expected = expected
        want = "7 or 14" if expected is None else str(expected)
        super().__init__(f"Mode S frame of {n_bytes} bytes, expected {want}")


class UnsupportedFormatError(DecodeError):
    """The downlink format is valid on air but not decoded here (DF19/22/24, …)."""

    def __init__(self, df: int) -> None:
        self.df = df
        super().__init__(f"downlink format {df} is not decoded")


class UnsupportedTypeCodeError(DecodeError):
    """An ADS-B type code (and, where it matters, subtype) that is not decoded."""

    def __init__(self, tc: int, subtype: int | None = None) -> None:
        self.tc = tc
        self.subtype = subtype
        sub = "" if subtype is None else f" subtype {subtype}"
        super().__init__(f"ADS-B type code {tc}{sub} is not decoded here")


class FieldError(DecodeError):
    """A field holds a reserved or invalid value (e.g. an illegal Gillham code)."""

    def __init__(self, field: str, value: int, reason: str = "invalid") -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={value:#x}: {reason}")


class CprError(DecodeError):
    """A CPR position cannot be decoded (latitude zones differ, pair too old, …)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"CPR decode failed: {reason}")
