"""The deliberate public surface of hardware.rs41."""

from __future__ import annotations

import hardware.rs41 as rs41
from hardware.rs41 import errors


def test_public_names_are_exactly_the_documented_ones() -> None:
    assert sorted(rs41.__all__) == [
        "AudioDecoder",
        "BlockCrcError",
        "DecodeError",
        "DecodeResult",
        "FieldError",
        "FrameFailure",
        "FrameLengthError",
        "IqDecoder",
        "MissingBlockError",
        "Rs41Frame",
        "UncorrectableError",
        "decode_audio",
        "decode_frame",
        "decode_iq",
        "decode_plain_frame",
    ]
    assert all(hasattr(rs41, name) for name in rs41.__all__)


def test_every_decode_error_has_a_distinct_reason_and_is_a_value_error() -> None:
    classes: list[type[errors.DecodeError]] = [
        errors.FrameLengthError,
        errors.UncorrectableError,
        errors.BlockCrcError,
        errors.MissingBlockError,
        errors.FieldError,
    ]
    assert all(issubclass(c, errors.DecodeError) and issubclass(c, ValueError) for c in classes)
    assert len({c.reason for c in classes}) == len(classes)
    assert errors.UncorrectableError(2).reason == "rs_uncorrectable"
