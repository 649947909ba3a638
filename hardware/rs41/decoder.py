"""The RS41 decoder chain end to end: audio or IQ in, decoded frames out.

    IQ --fm.FmDemodulator--> audio --demod.AudioDemodulator--> on-air frames
        --frame.decode_frame--> Rs41Frame, or FrameFailure(reason) for frames that
        were found on air but could not be decoded (uncorrectable, CRC, ...)

`AudioDecoder` and `IqDecoder` are the streaming forms (feed buffers, then flush);
`decode_audio` and `decode_iq` run them over whole arrays or iterables of chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from hardware.rs41.demod import AudioDemodulator, RawFrame
from hardware.rs41.errors import DecodeError
from hardware.rs41.fm import FmDemodulator
from hardware.rs41.frame import FrameFailure, Rs41Frame, decode_frame

DecodeResult = Rs41Frame | FrameFailure


def decode_raw(raw: RawFrame) -> DecodeResult:
    """Decode one demodulated frame; a `FrameFailure` (never an exception) if it fails."""
    try:
        frame = decode_frame(raw.data)
    except DecodeError as exc:
        return FrameFailure(exc.reason, str(exc), raw.sample_offset, raw.data)
    return dataclasses.replace(frame, sample_offset=raw.sample_offset)


class AudioDecoder:
    """Streaming decoder over FM-demodulated audio buffers at ``sample_rate_hz``."""

    def __init__(self, sample_rate_hz: float) -> None:
        self._demod = AudioDemodulator(sample_rate_hz)

    def feed(self, samples: NDArray[np.floating]) -> list[DecodeResult]:
        """Add audio; return the frames it completes."""
        return [decode_raw(r) for r in self._demod.feed(samples)]

    def flush(self) -> list[DecodeResult]:
        """End of input: return what is left."""
        return [decode_raw(r) for r in self._demod.flush()]


class IqDecoder:
    """Streaming decoder over complex baseband IQ buffers at ``sample_rate_hz``.

    ``sample_offset`` of the results counts audio samples (at `audio_rate_hz`).
    """

    def __init__(self, sample_rate_hz: float) -> None:
        self._fm = FmDemodulator(sample_rate_hz)
        self.audio_rate_hz = self._fm.audio_rate_hz
        self._audio = AudioDecoder(self.audio_rate_hz)

    def feed(self, iq: NDArray[np.complexfloating]) -> list[DecodeResult]:
        """Add IQ samples; return the frames they complete."""
        return self._audio.feed(self._fm.process(iq))

    def flush(self) -> list[DecodeResult]:
        """End of input: return what is left."""
        return self._audio.feed(self._fm.flush()) + self._audio.flush()


def _chunks(
    data: NDArray[np.generic] | Iterable[NDArray[np.generic]],
) -> Iterator[NDArray[np.generic]]:
    if isinstance(data, np.ndarray):
        yield data
    else:
        yield from data


def decode_audio(
    samples: NDArray[np.floating] | Iterable[NDArray[np.floating]], sample_rate_hz: float
) -> Iterator[DecodeResult]:
    """Decode RS41 frames from FM-demodulated audio (an array or chunks of one)."""
    decoder = AudioDecoder(sample_rate_hz)
    for chunk in _chunks(samples):
        yield from decoder.feed(np.asarray(chunk))
    yield from decoder.flush()


def decode_iq(
    iq: NDArray[np.complexfloating] | Iterable[NDArray[np.complexfloating]], sample_rate_hz: float
) -> Iterator[DecodeResult]:
    """Decode RS41 frames from complex baseband IQ tuned near the sonde (array or chunks)."""
    decoder = IqDecoder(sample_rate_hz)
    for chunk in _chunks(iq):
        yield from decoder.feed(np.asarray(chunk))
    yield from decoder.flush()
