"""RS41 decoder speed: the bundled recording through the audio and the IQ paths.

    python bench/rs41_decode.py [--repeat 3] [--iq-seconds 20] [--iq-rate 2400000]

Audio: the 60 s, 48 kHz wav decoded ``--repeat`` times (frames, CPU seconds, speed as
a multiple of real time; also the demodulator alone, without RS and blocks).
IQ: the first ``--iq-seconds`` of the same recording FM-modulated by this script
(deviation scaled so the data swings about +-2.4 kHz) at ``--iq-rate`` with a 7.5 kHz
carrier offset and white noise, then decoded by `IqDecoder` in 1 Mi-sample blocks;
the modulation is not timed. CPU time is time.process_time (all threads).

The IQ path's FIR filters are matrix products, so OpenBLAS threading matters: on
the 2-core build machine under load, 60 s of 2.4 MS/s IQ took 8.7 CPU-s (6.9x real
time) with the default threads and 1.4 CPU-s per 30 s (21x) with
OPENBLAS_NUM_THREADS=1 (idle worker threads spin). Audio: about 150x real time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hardware.rs41.decoder import IqDecoder, decode_audio
from hardware.rs41.demod import demodulate
from hardware.rs41.frame import Rs41Frame
from hardware.rs41.wav import read_wav

WAV = Path(__file__).resolve().parent.parent / "recordings" / "rs41" / "rs41pre_20150802.wav"


def fm_modulate(
    audio: NDArray[np.float32], audio_rate: int, iq_rate: int, offset_hz: float, snr_db: float
) -> Iterator[NDArray[np.complex64]]:
    """The audio as the instantaneous frequency of a carrier, in 1 s blocks of IQ."""
    up = iq_rate // audio_rate
    hz_per_lsb = -2400.0 / 5.0  # data swings about 5 LSB; the recording is inverted
    rng = np.random.default_rng(0)
    noise_std = np.float32(np.sqrt(10 ** (-snr_db / 10) / 2))
    step = np.arange(1, up + 1, dtype=np.float64) * (2 * np.pi / iq_rate)
    phase = 0.0
    for start in range(0, audio.size, audio_rate):
        freq = offset_hz + hz_per_lsb * audio[start : start + audio_rate].astype(np.float64)
        starts = phase + np.concatenate(([0.0], np.cumsum(freq[:-1] * step[-1])))
        phase = float((starts[-1] + freq[-1] * step[-1]) % (2 * np.pi))
        ph = np.mod(starts[:, None] + freq[:, None] * step[None, :], 2 * np.pi).reshape(-1)
        ph32 = ph.astype(np.float32)
        noise = noise_std * rng.standard_normal(2 * ph32.size, dtype=np.float32)
        yield (np.cos(ph32) + 1j * np.sin(ph32)).astype(np.complex64) + noise.view(np.complex64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--iq-seconds", type=int, default=20)
    parser.add_argument("--iq-rate", type=int, default=2_400_000)
    parser.add_argument("--snr-db", type=float, default=-5.0, help="IQ: carrier/noise, full band")
    args = parser.parse_args()

    audio = read_wav(WAV)
    seconds = audio.samples.size / audio.sample_rate_hz
    data = np.tile(audio.samples, args.repeat)

    t0 = time.process_time()
    raw = demodulate(data, audio.sample_rate_hz)
    demod_s = time.process_time() - t0
    t0 = time.process_time()
    results = list(decode_audio(data, audio.sample_rate_hz))
    full_s = time.process_time() - t0
    ok = sum(isinstance(r, Rs41Frame) for r in results)
    total_s = seconds * args.repeat
    print(f"audio: {WAV.name} x{args.repeat} = {total_s:.0f} s at {audio.sample_rate_hz} Hz")
    print(f"  demodulator only: {len(raw)} frames, CPU {demod_s:.2f} s", end="")
    print(f" = {total_s / demod_s:.0f}x real time")
    print(f"  full decode:      {ok} frames ok, CPU {full_s:.2f} s", end="")
    print(f" = {total_s / full_s:.0f}x real time")

    n_audio = args.iq_seconds * audio.sample_rate_hz
    blocks = list(
        fm_modulate(
            audio.samples[:n_audio], audio.sample_rate_hz, args.iq_rate, 7_500.0, args.snr_db
        )
    )
    decoder = IqDecoder(args.iq_rate)
    t0 = time.process_time()
    iq_results = []
    for block in blocks:
        for start in range(0, block.size, 1 << 20):
            iq_results += decoder.feed(block[start : start + (1 << 20)])
    iq_results += decoder.flush()
    iq_s = time.process_time() - t0
    iq_ok = sum(isinstance(r, Rs41Frame) for r in iq_results)
    print(
        f"iq: first {args.iq_seconds} s FM-modulated at {args.iq_rate / 1e6} MS/s, "
        f"7.5 kHz offset, SNR {args.snr_db} dB over the full band"
    )
    print(
        f"  {iq_ok} frames ok of {len(iq_results)} found, CPU {iq_s:.2f} s = "
        f"{args.iq_seconds / iq_s:.1f}x real time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
