"""The `rs41` source: an SDR (or a recording) tuned near a Vaisala RS41 -> sonde events.

Inputs (the `input` key, parsed like the adsb source's: `daemon.sources.iq_input`)::

    rtl_tcp://HOST:PORT    an rtl_tcp server (u8 IQ)         \\ live: a reader thread and a
    rtlsdr://0 | SERIAL    a local dongle (u8 IQ)            / bounded queue (BlockPump)
    path.bin | file:///…   an IQ recording, u8 or cs16 (`iq_format`)   \\ files: read in the
    path.wav               FM-demodulated audio (`format = "wav"`,     / source thread to
                           or "auto" and a .wav name), 8/16-bit PCM      the end, lossless

Chain (whole-array numpy per block; hardware/rs41 does the decoding)::

    u8/cs16 IQ at `rate` --x exp(+j2π·tuner_offset_hz·t)--> sonde at 0 Hz
      --FmDemodulator (decimating lowpass = the channel filter, offset search,
        discriminator)--> audio ~48 kHz --AudioDecoder--> Rs41Frame | FrameFailure

The dongle is tuned to ``frequency_hz + tuner_offset_hz`` (an offset keeps the sonde
off the RTL-SDR's DC spike); the mixer moves the sonde back to 0 Hz (copying one
period of the oscillator from a table when it repeats within 65 536 samples, as it
does for whole-Hz offsets at the usual rates: ~70x cheaper than cos/sin), and the
FmDemodulator's first decimating lowpass (±0.35 of ~240 kHz) and its 10 kHz channel
filter keep only the sonde's channel. ``freq_hz`` in the events is ``frequency_hz``
plus the carrier offset the FmDemodulator tracks (not known for WAV input).

Events: one `sonde.telemetry` per decoded frame with a GPS position (see
telemetry.py): t = GPS time converted to UTC, alt = ellipsoidal height, data with
rs_errors (bytes Reed-Solomon corrected). Frames that fail are counted by reason
(``sonde_frames_failed_total{reason}``: rs_uncorrectable, crc, missing_block, …);
frames without a fix in ``sonde_frames_no_fix_total``.

Once, and only once: live inputs publish a frame when its number differs from the
last one published for the serial (memo in Redis, see `FrameMemo`). Files publish
under the producer ``<station>:<source>:<fingerprint of the file>`` with the frame's
sample offset as its sequence number, so replaying a recording publishes nothing twice.

A live input never waits for the decoder: when the block queue is full the block is
dropped and counted (``sonde_blocks_dropped_total``), and the decoder starts afresh
after the gap. ``lossless = true`` waits instead (TCP flow control then paces an
rtl_tcp server that replays a recording faster than real time).

Live inputs fail and come back like the adsb source's: the server closing or a
missing dongle is retried with backoff (0.5 s doubling to `backoff_max_s`); with
``--once`` the pass ends at the end of the stream (or fails).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from daemon.config import Field, between, one_of
from daemon.event import EventError, now_ms
from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext
from daemon.sources.iq_input import (
    InputSpec,
    file_fingerprint,
    gain_check,
    input_check,
    open_live_input,
    parse_input,
    tuner_settings,
)
from daemon.sources.iq_pump import decode_blocks, run_reconnecting
from daemon.sources.sonde.telemetry import (
    FrameMemo,
    SondeFix,
    load_frames,
    utc_ms,
)
from hardware.iq.base import IqBlock, IqSource
from hardware.iq.errors import IqSourceError
from hardware.rs41.decoder import AudioDecoder, DecodeResult
from hardware.rs41.fm import FmDemodulator, bytes_per_sample, iq_from_bytes
from hardware.rs41.frame import FrameFailure, Rs41Frame
from hardware.rs41.wav import read_wav

__all__ = ["FIELDS", "Rs41Chain", "Rs41Source", "build", "frame_fix"]

_AUDIO_CHUNK_S = 1.0
FILE_SCAN_BLOCK_S = 4.0
LO_TABLE_MAX = 1 << 16


def u8_to_complex(iq: NDArray[np.uint8]) -> NDArray[np.complex64]:
    """Interleaved RTL-SDR bytes (127.5 = zero) as complex samples of full scale ~1."""
    v = (iq.astype(np.float32) - np.float32(127.5)) * np.float32(1 / 127.5)
    z: NDArray[np.complex64] = v[: v.size // 2 * 2].view(np.complex64)
    return z


class Rs41Chain:
    """Shift + FM demodulation + RS41 decoding over IQ blocks, or decoding over audio.

    ``shift_hz`` moves the whole band up by that much (the sonde sits at
    ``-tuner_offset_hz`` in the tuner's baseband). Result sample offsets count
    audio samples at `audio_rate_hz` from the first sample fed.
    """

    def __init__(self, sample_rate_hz: float, *, audio: bool = False, shift_hz: float = 0.0,
                 scan_block_s: float = 1.0) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self.fm: FmDemodulator | None = None if audio else FmDemodulator(sample_rate_hz)
        self.audio_rate_hz = self.sample_rate_hz if self.fm is None else self.fm.audio_rate_hz
        self.decoder = AudioDecoder(self.audio_rate_hz, scan_block_s=scan_block_s)
        self.shift_hz = shift_hz
        self._phase = 0.0  # mixer phase (rad) at the next sample, kept in [0, 2π)
        self._n = 0  # samples mixed so far
        self._lo_table = _lo_table(shift_hz, self.sample_rate_hz)

    @property
    def carrier_offset_hz(self) -> float | None:
        """The FM demodulator's current carrier offset from the channel centre (IQ only)."""
        return None if self.fm is None else self.fm.offset_hz

    def feed_iq(self, z: NDArray[np.complex64]) -> list[DecodeResult]:
        """Add complex IQ samples; return the frames they complete."""
        assert self.fm is not None, "an audio chain takes feed_audio"
        if self.shift_hz and z.size:
            z = z * self.oscillator(z.size)
        return self.decoder.feed(self.fm.process(z))

    def oscillator(self, n: int) -> NDArray[np.complex64]:
        """The next `n` samples of exp(+j 2π shift_hz t), phase continuous across calls."""
        table = self._lo_table
        if table is not None:
            # A whole number of cycles fits in the table: copy it, no trigonometry.
            start = self._n % table.size
            self._n += n
            reps = -(-(start + n) // table.size)
            lo: NDArray[np.complex64] = np.tile(table, reps)[start : start + n]
            return lo
        step = 2 * math.pi * self.shift_hz / self.sample_rate_hz
        # Phase in float64, wrapped, then float32 trig (as the FM mixer does).
        phase = np.mod(self._phase + step * np.arange(n), 2 * math.pi)
        self._phase = float((self._phase + step * n) % (2 * math.pi))
        ph32 = phase.astype(np.float32)
        lo = np.empty(n, dtype=np.complex64)
        lo.real = np.cos(ph32)
        lo.imag = np.sin(ph32)
        return lo

    def feed_audio(self, samples: NDArray[np.float32]) -> list[DecodeResult]:
        """Add FM-demodulated audio; return the frames it completes."""
        return self.decoder.feed(samples)

    def flush(self) -> list[DecodeResult]:
        """End of input: return what is left."""
        tail: list[DecodeResult] = []
        if self.fm is not None:
            tail = self.decoder.feed(self.fm.flush())
        return tail + self.decoder.flush()


def _lo_table(shift_hz: float, sample_rate_hz: float) -> NDArray[np.complex64] | None:
    """One period of exp(+j 2π shift t) when it repeats within LO_TABLE_MAX samples
    (integer shift and rate: the period is rate / gcd(shift, rate)), else None."""
    if not shift_hz or shift_hz != int(shift_hz) or sample_rate_hz != int(sample_rate_hz):
        return None
    period = int(sample_rate_hz) // math.gcd(int(shift_hz), int(sample_rate_hz))
    if period > LO_TABLE_MAX:
        return None
    k = np.arange(period, dtype=np.float64)
    table: NDArray[np.complex64] = np.exp(2j * np.pi * shift_hz * k / sample_rate_hz).astype(
        np.complex64)
    return table


def frame_fix(frame: Rs41Frame, rx_ms: int, freq_hz: float | None) -> SondeFix | None:
    """The SondeFix of a decoded frame; None without a GPS position."""
    if frame.lat is None or frame.lon is None:
        return None
    t_ms = utc_ms(frame.time_utc) if frame.time_utc is not None else rx_ms
    return SondeFix(
        serial=frame.serial,
        frame=frame.frame,
        t_ms=t_ms,
        lat=frame.lat,
        lon=frame.lon,
        alt_m=frame.alt,
        sonde_type="RS41",
        vel_h_mps=frame.vel_h_mps,
        heading_deg=frame.heading_deg,
        vel_v_mps=frame.vel_v_mps,
        sats=frame.sats,
        batt_v=frame.batt_v,
        freq_hz=freq_hz,
        extra={"rs_errors": sum(frame.rs_errors)},
    )


class Rs41Source(Source):
    """Decodes RS41 frames from the configured `input` (module docstring)."""

    def __init__(self, name: str, cfg: dict[str, Any], ctx: SourceContext) -> None:
        super().__init__(name, cfg, ctx)
        self.spec: InputSpec = parse_input(str(cfg["input"]))
        self.rate_hz = int(cfg["rate"])
        self.frequency_hz = int(cfg["frequency_hz"])
        self.tuner_offset_hz = int(cfg["tuner_offset_hz"])
        fmt = str(cfg["format"])
        self.path: Path | None = None
        if self.spec.kind == "file":
            self.path = ctx.resolve(self.spec.path)
            if fmt == "auto":
                fmt = "wav" if self.path.suffix.lower() == ".wav" else "iq"
        elif fmt == "wav":
            raise ValueError(f"{name}: format = \"wav\" needs a file input, not {cfg['input']!r}")
        self.audio = fmt == "wav"
        self.iq_format = str(cfg["iq_format"]) if self.spec.kind == "file" else "u8"
        self.settings = tuner_settings(cfg, self.frequency_hz + self.tuner_offset_hz)
        self.scan_block_s = float(cfg["scan_block_s"])
        if self.spec.kind == "file" and not cfg["realtime"]:
            # Nobody waits for a file read at full speed: scan in long windows (cheaper).
            self.scan_block_s = max(self.scan_block_s, FILE_SCAN_BLOCK_S)
        self.frames: FrameMemo | None = None
        self.file_producer: str | None = None
        self.chain = self.new_chain()

    def new_chain(self) -> Rs41Chain:
        """A fresh decoder chain for this source's input."""
        return Rs41Chain(self.rate_hz, audio=self.audio, shift_hz=float(self.tuner_offset_hz),
                         scan_block_s=self.scan_block_s)

    # -- the loop -------------------------------------------------------------
    def run(self, emit: Emit, stop: threading.Event, once: bool) -> None:
        """Decode until `stop`; with `once` (and always for files) until the input ends."""
        self.chain = self.new_chain()
        if self.path is not None:
            self.file_producer = f"{self.producer}:{self._fingerprint()}"
            self._run_file(emit, stop)
            return
        self.frames = load_frames(self, stop.wait, once)
        if self.frames is None:
            return
        run_reconnecting(self, self.open_input, lambda iq: self._pump(iq, emit, stop), stop,
                         once, metric_prefix="sonde",
                         backoff_max_s=float(self.cfg["backoff_max_s"]))

    def _fingerprint(self) -> str:
        assert self.path is not None
        try:
            return file_fingerprint(self.path, self.rate_hz, self.audio, self.iq_format)
        except OSError as exc:
            raise IqSourceError(f"{self.path}: {exc.strerror or exc}") from None

    # -- files ----------------------------------------------------------------
    def _run_file(self, emit: Emit, stop: threading.Event) -> None:
        metrics, name = self.ctx.metrics, self.name
        metrics.set("sonde_input_up", 1, source=name)
        try:
            # _file_chunks replaces self.chain for WAV input (the file gives the rate).
            for chunk in self._file_chunks(stop):
                chain = self.chain
                self._handle(chain.feed_audio(chunk) if self.audio else chain.feed_iq(chunk),
                             emit)
            if not stop.is_set():
                self._handle(self.chain.flush(), emit)
        finally:
            metrics.set("sonde_input_up", 0, source=name)

    def _file_chunks(self, stop: threading.Event) -> Iterator[NDArray[Any]]:
        """The file as complex IQ (or float audio) chunks, paced with `realtime`."""
        assert self.path is not None
        realtime = bool(self.cfg["realtime"])
        started = time.monotonic()
        done = 0
        if self.audio:
            try:
                wav = read_wav(self.path)
            except (OSError, EOFError, ValueError) as exc:
                raise IqSourceError(f"{self.path}: {exc}") from None
            self.chain = Rs41Chain(wav.sample_rate_hz, audio=True, scan_block_s=self.scan_block_s)
            rate = float(wav.sample_rate_hz)
            step = max(1, int(_AUDIO_CHUNK_S * rate))
            for start in range(0, wav.samples.size, step):
                if stop.is_set():
                    return
                chunk = wav.samples[start : start + step]
                done += chunk.size
                self._pace(realtime, started, done / rate, stop)
                yield chunk
            return
        width = bytes_per_sample(self.iq_format)
        block_bytes = int(self.cfg["block_samples"]) * width
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise IqSourceError(f"{self.path}: {exc.strerror or exc}") from None
        with fh:
            carry = b""
            while not stop.is_set():
                raw = fh.read(block_bytes)
                if not raw:
                    return
                data = carry + raw
                usable = len(data) // width * width
                carry = data[usable:]
                z = iq_from_bytes(data[:usable], self.iq_format)
                done += z.size
                self._pace(realtime, started, done / self.rate_hz, stop)
                self.ctx.metrics.inc("sonde_samples_total", z.size, source=self.name)
                yield z

    @staticmethod
    def _pace(realtime: bool, started: float, elapsed_s: float, stop: threading.Event) -> None:
        if realtime:
            delay = started + elapsed_s - time.monotonic()
            if delay > 0:
                stop.wait(delay)

    # -- live -----------------------------------------------------------------
    def open_input(self) -> IqSource:
        """A fresh IqSource for the live input (not yet connected)."""
        return open_live_input(self.spec, self.settings,
                               block_samples=int(self.cfg["block_samples"]),
                               timeout_s=float(self.cfg["timeout_s"]))

    def _pump(self, iq: IqSource, emit: Emit, stop: threading.Event) -> bool:
        """Decode one connection of `iq`; True at its end, False when stopped."""
        metrics, name = self.ctx.metrics, self.name

        def restart_chain() -> None:
            self._handle(self.chain.flush(), emit)
            self.chain = self.new_chain()

        def on_block(block: IqBlock, first: bool) -> None:
            if block.discontinuity:
                # Samples were dropped: a frame must not be joined across the gap.
                restart_chain()
            metrics.inc("sonde_blocks_total", source=name)
            metrics.inc("sonde_samples_total", block.n_samples, source=name)
            self._handle(self.chain.feed_iq(u8_to_complex(block.iq)), emit)

        return decode_blocks(
            self, iq, stop, metric_prefix="sonde", queue_blocks=int(self.cfg["queue_blocks"]),
            lossless=bool(self.cfg["lossless"]), on_block=on_block, on_end=restart_chain,
        )

    # -- publishing -----------------------------------------------------------
    def _handle(self, results: list[DecodeResult], emit: Emit) -> None:
        metrics, name = self.ctx.metrics, self.name
        offset = self.chain.carrier_offset_hz
        if offset is not None:
            metrics.set("sonde_carrier_offset_hz", offset, source=name)
        freq_hz = None if self.audio else self.frequency_hz + (offset or 0.0)
        for result in results:
            if isinstance(result, FrameFailure):
                metrics.inc("sonde_frames_failed_total", source=name, reason=result.reason)
                continue
            metrics.inc("sonde_frames_decoded_total", source=name)
            rx_ms = now_ms()
            fix = frame_fix(result, rx_ms, freq_hz)
            if fix is None:
                metrics.inc("sonde_frames_no_fix_total", source=name)
                continue
            try:
                event = fix.to_event(name, self.ctx.station.id, rx_ms)
            except EventError as exc:
                self.count_bad("bad_field", f"frame {fix.serial}:{fix.frame}: {exc}")
                continue
            if self.file_producer is not None:
                # Deterministic: the same recording gives the same sequence numbers.
                offset_samples = result.sample_offset if result.sample_offset is not None else 0
                emit(event, seq=offset_samples + 1, producer=self.file_producer)
            else:
                assert self.frames is not None
                if not self.frames.is_new(fix.serial, fix.frame):
                    metrics.inc("sonde_frames_repeated_total", source=name)
                    continue
                emit(event, memo=(fix.serial, str(fix.frame)))
                self.frames.published(fix.serial, fix.frame)
            metrics.inc("sonde_frames_total", source=name)


FIELDS: dict[str, Field] = {
    "input": Field((str,), required=True, check=input_check,
                   doc="rtl_tcp://HOST:PORT, rtlsdr://INDEX|SERIAL, an IQ file or a WAV file"),
    "format": Field((str,), default="auto", check=one_of("auto", "iq", "wav"),
                    doc="file input: IQ samples or FM audio (auto: .wav names are audio)"),
    "iq_format": Field((str,), default="u8", check=one_of("u8", "cs16"),
                       doc="IQ file samples: u8 (rtl_sdr) or cs16; rtl_tcp/rtlsdr are u8"),
    "rate": Field((int,), default=2_400_000, check=between(96_000, 10_000_000),
                  doc="IQ sample rate, Hz (RTL-SDR: 225001-300000 or 900001-3200000)"),
    "frequency_hz": Field((int,), default=402_700_000,
                          check=between(24_000_000, 1_766_000_000),
                          doc="the sonde's frequency"),
    "tuner_offset_hz": Field((int,), default=0, check=between(-1_000_000, 1_000_000),
                             doc="tune this far from the sonde (keeps it off the DC spike)"),
    "gain": Field((str, float), default="auto", check=gain_check),
    "ppm": Field((int,), default=0, check=between(-1000, 1000)),
    "agc": Field((bool,), default=False),
    "bias_tee": Field((bool,), default=False),
    "realtime": Field((bool,), default=False, doc="files: pace at the sample rate"),
    "lossless": Field((bool,), default=False,
                      doc="rtl_tcp: wait for the decoder instead of dropping blocks (a "
                          "server replaying a recording faster than real time)"),
    "scan_block_s": Field((float,), default=1.0, check=between(0.1, 10),
                          doc="decoder scan window: latency against CPU"),
    "queue_blocks": Field((int,), default=16, check=between(1, 1024),
                          doc="IQ blocks buffered between reader and decoder"),
    "block_samples": Field((int,), default=131_072, check=between(4096, 4_194_304),
                           doc="complex samples per block"),
    "timeout_s": Field((float,), default=10.0, check=between(0.1, 600),
                       doc="rtl_tcp: connect timeout and longest silence"),
    "backoff_max_s": Field((float,), default=30.0, check=between(0.1, 3600),
                           doc="cap of the reconnect backoff"),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> Rs41Source:
    """Factory used by the source registry."""
    return Rs41Source(name, cfg, ctx)
