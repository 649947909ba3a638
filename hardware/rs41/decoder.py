"""The RS41 decoder chain end to end: audio or IQ in, decoded frames out.

    IQ --fm.FmDemodulator--> audio --demod.AudioDemodulator--> on-air frames
        --frame.decode_frame--> Rs41Frame, or FrameFailure(reason) for frames that
        were found on air but could not be decoded (uncorrectable, CRC, ...)

A frame that Reed-Solomon cannot correct is retried with its least reliable bytes
(from the slicer) marked as erasures, accepted only if every block CRC passes.

`AudioDecoder` and `IqDecoder` are the streaming forms (feed buffers, then flush);
`decode_audio` and `decode_iq` run them over whole arrays or iterables of chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from hardware.rs41.demod import AudioDemodulator, RawFrame
from hardware.rs41.errors import DecodeError, UncorrectableError
from hardware.rs41.fm import FmDemodulator
from hardware.rs41.frame import FrameFailure, Rs41Frame, decode_frame

DecodeResult = Rs41Frame | FrameFailure


# Erasure trials after plain error correction fails: this many least reliable bytes
# of each codeword are handed to Reed-Solomon as unknown (2e + f <= 24).
ERASURE_TRIALS = (8, 12, 16, 20)


def codeword_byte_positions(frame_len: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Frame byte positions of codeword 1 and codeword 2 (parity, then message)."""
    cw1 = np.concatenate((np.arange(8, 32), np.arange(56, frame_len, 2)))
    cw2 = np.concatenate((np.arange(32, 56), np.arange(57, frame_len, 2)))
    return cw1, cw2


def least_reliable_bytes(raw: RawFrame, n_per_codeword: int) -> list[int]:
    """The ``n_per_codeword`` least reliable byte positions of each codeword."""
    out: list[int] = []
    for positions in codeword_byte_positions(len(raw.data)):
        rel = raw.byte_reliability[positions]
        n = min(n_per_codeword, rel.size)
        out += [int(p) for p in positions[np.argpartition(rel, n - 1)[:n]]]
    return sorted(out)


def _decode_with_erasures(raw: RawFrame) -> Rs41Frame | None:
    """Retry an uncorrectable frame with its least reliable bytes as erasures.

    Erasure decoding can mis-correct into another codeword, so a result is only
    accepted when every block CRC agrees.
    """
    for n in ERASURE_TRIALS:
        try:
            frame = decode_frame(raw.data, least_reliable_bytes(raw, n))
        except DecodeError:
            continue
        if frame.crc_failures == 0:
            return frame
    return None


def decode_raw(raw: RawFrame) -> DecodeResult:
    """Decode one demodulated frame; a `FrameFailure` (never an exception) if it fails."""
    try:
        frame = decode_frame(raw.data)
    except UncorrectableError as exc:
        retried = _decode_with_erasures(raw) if raw.byte_reliability.size == len(raw.data) else None
        if retried is None:
            return FrameFailure(exc.reason, str(exc), raw.sample_offset, raw.data)
        frame = retried
    except DecodeError as exc:
        return FrameFailure(exc.reason, str(exc), raw.sample_offset, raw.data)
    return dataclasses.replace(frame, sample_offset=raw.sample_offset)


class AudioDecoder:
    """Streaming decoder over FM-demodulated audio buffers at ``sample_rate_hz``.

    ``scan_block_s``: see `AudioDemodulator` (latency against re-scanning cost).
    """

    def __init__(self, sample_rate_hz: float, scan_block_s: float = 4.0) -> None:
        self._demod = AudioDemodulator(sample_rate_hz, scan_block_s=scan_block_s)

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

    def __init__(self, sample_rate_hz: float, scan_block_s: float = 4.0) -> None:
        self._fm = FmDemodulator(sample_rate_hz)
        self.audio_rate_hz = self._fm.audio_rate_hz
        self._audio = AudioDecoder(self.audio_rate_hz, scan_block_s)

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
