"""Errors raised by the RS41 decoder chain.

Every error carries a short machine-readable ``reason`` so callers count failures
by reason instead of parsing messages::

    ValueError
     └── DecodeError                 .reason: why the frame (or a part of it) failed
          ├── FrameLengthError       .n_bytes         reason "length"
          ├── UncorrectableError     .codeword (1|2)  reason "rs_uncorrectable"
          ├── BlockCrcError          .block_id        reason "crc"
          ├── MissingBlockError      .block_id        reason "missing_block"
          └── FieldError             .field, .value   reason "field"

A failed block CRC inside an otherwise good frame is *not* an exception: the frame
records it in ``crc_ok`` and leaves the fields of that block empty. Only the status
block (serial and frame number, the identity of the frame) is required.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """An RS41 frame (or a part of it) cannot be decoded."""

    reason = "decode"


class FrameLengthError(DecodeError):
    """The frame is neither 320 nor 518 bytes (or too short for its blocks)."""

    reason = "length"

    def __init__(self, n_bytes: int) -> None:
        self.n_bytes = n_bytes
        super().__init__(f"RS41 frame of {n_bytes} bytes, expected 320 or 518")


class UncorrectableError(DecodeError):
    """A Reed-Solomon codeword has more errors than RS(255,231) can correct (12)."""

    reason = "rs_uncorrectable"

    def __init__(self, codeword: int, detail: str = "") -> None:
        self.codeword = codeword
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(f"Reed-Solomon codeword {codeword} is uncorrectable{extra}")


class BlockCrcError(DecodeError):
    """A block that the frame cannot do without failed its CRC-16."""

    reason = "crc"

    def __init__(self, block_id: int) -> None:
        self.block_id = block_id
        super().__init__(f"block 0x{block_id:02X} failed its CRC-16")


class MissingBlockError(DecodeError):
    """A block that the frame cannot do without is absent."""

    reason = "missing_block"

    def __init__(self, block_id: int) -> None:
        self.block_id = block_id
        super().__init__(f"block 0x{block_id:02X} is missing")


class FieldError(DecodeError):
    """A field holds a value that cannot be right (e.g. an unprintable serial)."""

    reason = "field"

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}={value!r} is invalid")
