"""The audio path: the real recording, resampled, offset, scaled, flipped, noisy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from rs41_signal import assert_matches_reference, gfsk_audio
from scipy.signal import resample_poly  # type: ignore[import-untyped]

from hardware.rs41.decoder import AudioDecoder, DecodeResult, decode_audio
from hardware.rs41.demod import demodulate
from hardware.rs41.frame import FrameFailure, Rs41Frame
from hardware.rs41.wav import read_wav, write_wav

Audio = tuple[NDArray[np.float32], int]


def _good_frames(results: list[DecodeResult], ref_frames: list[bytes]) -> list[Rs41Frame]:
    """The decoded frames that are byte-identical to a reference frame."""
    return [r for r in results if isinstance(r, Rs41Frame) and r.plain in ref_frames]


def _assert_all_60(results: list[DecodeResult], ref_frames: list[bytes]) -> None:
    assert [r.plain for r in results if isinstance(r, Rs41Frame)] == ref_frames
    assert not [r for r in results if isinstance(r, FrameFailure)]


def test_recording_decodes_to_the_60_reference_frames_and_fields(
    wav_audio: Audio, ref_frames: list[bytes], ref_json: list[dict[str, Any]]
) -> None:
    samples, rate = wav_audio
    results = list(decode_audio(samples, rate))
    _assert_all_60(results, ref_frames)
    for frame, ref in zip(results, ref_json, strict=True):
        assert isinstance(frame, Rs41Frame)
        assert_matches_reference(frame, ref)


def test_recording_polarity_is_detected_as_inverted(wav_audio: Audio) -> None:
    samples, rate = wav_audio
    raw = demodulate(samples, rate)
    assert len(raw) == 60
    assert all(r.inverted for r in raw)
    assert all(r.correlation < -0.5 for r in raw)
    flipped = demodulate(-samples, rate)
    assert [r.data for r in flipped] == [r.data for r in raw]
    assert not any(r.inverted for r in flipped)


@pytest.mark.parametrize(("up", "down", "rate"), [(147, 160, 44_100), (2, 1, 96_000)])
def test_recording_resampled_to_other_rates_still_decodes_60(
    wav_audio: Audio, ref_frames: list[bytes], up: int, down: int, rate: int
) -> None:
    samples, _ = wav_audio
    resampled = resample_poly(samples, up, down).astype(np.float32)
    _assert_all_60(list(decode_audio(resampled, rate)), ref_frames)


@pytest.mark.parametrize("dc_lsb", [3.0, -3.0])
def test_dc_offset_and_half_amplitude_still_decode_60(
    wav_audio: Audio, ref_frames: list[bytes], dc_lsb: float
) -> None:
    samples, rate = wav_audio
    # Requantised to whole LSBs, as an 8-bit file with that offset would be.
    shifted = np.round(samples * 0.5 + dc_lsb).astype(np.float32)
    _assert_all_60(list(decode_audio(shifted, rate)), ref_frames)


def test_white_noise_at_6_db_snr_still_decodes_60(
    wav_audio: Audio, ref_frames: list[bytes]
) -> None:
    samples, rate = wav_audio
    rng = np.random.default_rng(6)
    noise_std = np.sqrt(samples.var() / 10 ** (6 / 10))
    noisy = np.round(samples + rng.normal(0.0, noise_std, samples.size)).astype(np.float32)
    results = list(decode_audio(noisy, rate))
    assert len(_good_frames(results, ref_frames)) == 60


def test_16_bit_wav_at_44_1_khz_decodes_60(
    wav_audio: Audio, ref_frames: list[bytes], tmp_path: Path
) -> None:
    samples, _ = wav_audio
    path = tmp_path / "rs41_16bit.wav"
    write_wav(path, resample_poly(samples * 256.0, 147, 160).astype(np.float32), 44_100, 2)
    audio = read_wav(path)
    assert (audio.sample_rate_hz, audio.sample_width_bytes) == (44_100, 2)
    _assert_all_60(list(decode_audio(audio.samples, audio.sample_rate_hz)), ref_frames)


def test_feeding_odd_sized_chunks_finds_the_same_frames_once(
    wav_audio: Audio, ref_frames: list[bytes]
) -> None:
    samples, rate = wav_audio
    whole = list(decode_audio(samples, rate))
    decoder = AudioDecoder(rate)
    pieces: list[DecodeResult] = []
    for start in range(0, samples.size, 77_777):
        pieces += decoder.feed(samples[start : start + 77_777])
    pieces += decoder.flush()
    _assert_all_60(pieces, ref_frames)
    assert [r.sample_offset for r in pieces] == [r.sample_offset for r in whole]
    chunks = (samples[s : s + 500_000] for s in range(0, samples.size, 500_000))
    from_iterable = list(decode_audio(chunks, rate))
    assert [r.sample_offset for r in from_iterable] == [r.sample_offset for r in whole]


def test_an_uncorrectable_frame_is_reported_not_passed_on(
    ref_frames: list[bytes], examples: list[bytes]
) -> None:
    broken = bytearray(ref_frames[1])
    for i in range(13):  # 13 byte errors in codeword 1's message
        broken[60 + 2 * i] ^= 0xA5
    audio = gfsk_audio([ref_frames[0], bytes(broken), examples[3]])
    results = list(decode_audio(audio, 48_000))
    assert len(results) == 3
    first, failure, extended = results
    assert isinstance(first, Rs41Frame) and first.plain == ref_frames[0]
    assert isinstance(failure, FrameFailure)
    assert failure.reason == "rs_uncorrectable"
    assert failure.sample_offset is not None and failure.sample_offset > 0
    assert isinstance(extended, Rs41Frame) and extended.plain == examples[3]


def test_a_header_with_a_few_bit_errors_is_still_found(ref_frames: list[bytes]) -> None:
    audio = gfsk_audio(ref_frames[:2], flip_bits=(3, 17, 40, 62))
    raw = demodulate(audio, 48_000)
    assert [r.header_errors for r in raw] == [4, 4]
    results = list(decode_audio(audio, 48_000))
    assert [r.plain for r in results if isinstance(r, Rs41Frame)] == ref_frames[:2]


def test_unreliable_bytes_are_retried_as_erasures(ref_frames: list[bytes]) -> None:
    from hardware.rs41.decoder import decode_raw
    from hardware.rs41.demod import RawFrame
    from hardware.rs41.scramble import scramble

    on_air = bytearray(scramble(ref_frames[3]))
    reliability = np.ones(320, dtype=np.float32)
    for i in range(16):  # 16 errors in each codeword's message: beyond plain RS
        for p in (56 + 2 * i, 57 + 2 * i):
            on_air[p] ^= 0x81
            reliability[p] = 0.05
    plain_only = decode_raw(RawFrame(bytes(on_air), 100, True, 0, -0.9))
    assert isinstance(plain_only, FrameFailure) and plain_only.reason == "rs_uncorrectable"
    result = decode_raw(RawFrame(bytes(on_air), 100, True, 0, -0.9, reliability))
    assert isinstance(result, Rs41Frame)
    assert result.plain == ref_frames[3]
    assert result.rs_errors == (16, 16)
    assert result.sample_offset == 100


def test_white_noise_at_4_db_snr_still_decodes_at_least_58(
    wav_audio: Audio, ref_frames: list[bytes]
) -> None:
    # rs41mod decodes about 50 of 60 here.
    samples, rate = wav_audio
    rng = np.random.default_rng(4)
    noise_std = np.sqrt(samples.var() / 10 ** (4 / 10))
    noisy = np.round(samples + rng.normal(0.0, noise_std, samples.size)).astype(np.float32)
    results = list(decode_audio(noisy, rate))
    assert len(_good_frames(results, ref_frames)) >= 58
    assert all(r.plain in ref_frames for r in results if isinstance(r, Rs41Frame))


def test_low_latency_scanning_of_live_sized_buffers_finds_the_same_frames(
    wav_audio: Audio, ref_frames: list[bytes]
) -> None:
    samples, rate = wav_audio
    decoder = AudioDecoder(rate, scan_block_s=0.5)
    results: list[DecodeResult] = []
    latest_s = 0.0
    for start in range(0, samples.size, 3_120):  # 65 ms, an RTL-SDR block's worth
        for r in decoder.feed(samples[start : start + 3_120]):
            results.append(r)
            assert r.sample_offset is not None
            # Returned within scan block + tail (~1.1 s) of the frame's end (~0.55 s).
            latest_s = max(latest_s, (start - r.sample_offset) / rate)
    results += decoder.flush()
    _assert_all_60(results, ref_frames)
    assert latest_s < 2.5
