"""Vaisala RS41 radiosonde decoder: IQ or FM audio in, decoded telemetry frames out.

Each stage is a pure function or a small stateful block processor, tested alone::

    fm.FmDemodulator        complex IQ -> FM audio (offset search and tracking)
    demod.AudioDemodulator  audio -> on-air frames (clock recovery, header search)
    scramble.descramble     on-air bytes -> plain frame
    ecc.correct_frame       Reed-Solomon RS(255,231) x 2 interleaved codewords
    blocks.walk_blocks      ID/LEN/data/CRC16 blocks; status, GPS time, ECEF
    gps                     GPS week/TOW -> UTC; ECEF -> WGS84; ENU velocity
    frame.decode_frame      all of the above for one frame -> Rs41Frame
    decoder                 decode_audio / decode_iq over whole recordings or streams

Failures are `errors.DecodeError` subclasses with a ``reason``; the stream decoders
turn them into `FrameFailure` results so callers can count them.
"""

from hardware.rs41.decoder import (
    AudioDecoder,
    DecodeResult,
    IqDecoder,
    decode_audio,
    decode_iq,
)
from hardware.rs41.errors import (
    BlockCrcError,
    DecodeError,
    FieldError,
    FrameLengthError,
    MissingBlockError,
    UncorrectableError,
)
from hardware.rs41.frame import FrameFailure, Rs41Frame, decode_frame, decode_plain_frame

__all__ = [
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
