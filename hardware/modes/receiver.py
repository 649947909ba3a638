"""Mode S receiver: u8 IQ blocks in, checked Mode S messages out.

Data flow per `Receiver.feed` call::

    u8 IQ bytes ──magnitude LUT──► |IQ| ──┐
                                          ▼
    [ tail of the previous block | this block ]       (float32, one buffer)
          ▲                     │
          │      Demodulator.find_preambles  (vectorized prefilter)
          │                     ▼
          │      Demodulator.slice   (ranked sub-sample phases, CRC per phase;
          │                           classify() rates each row against the
          │                           parity rules and the known addresses)
          │                     ▼
          │      check_frame()  per surviving candidate, in time order; a frame
          │                     found inside an accepted frame is a duplicate
          │                     ▼
          └── last `span` samples  ModeSMessage(sample, t_s, msg, df, icao, crc,
              kept for the next        corrected_bits, signal_dbfs)
              block

Preambles are searched only where a whole long frame fits in the buffer; the rest is
kept as the tail for the next block, so a frame split by a block edge is decoded
once, from the next block. `flush()` pads the final partial block with silence.

Timestamps: `sample` is the index, counted in samples at `sample_rate_hz` from the
first sample ever fed, of the first preamble pulse (rounded to the nearest sample
after phase correction); `t_s` is the same instant in seconds (fractional).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hardware.modes.demod import (
    CLEAN,
    LONG_BITS,
    REPAIRABLE,
    Candidates,
    Demodulator,
    estimate_noise_floor,
    one_bit_away,
)
from hardware.modes.frame_check import AddressBook, check_frame
from hardware.modes.magnitude import FULL_SCALE, magnitude

__all__ = ["ModeSMessage", "Receiver"]

_AP_DF = np.isin(np.arange(32), (0, 4, 5, 16, 20, 21, 24))
_ADSB_DF = np.isin(np.arange(32), (11, 17, 18))
_NOISE_TAU_SAMPLES = 200_000  # noise-floor averaging time constant (0.1 s at 2 MS/s)


@dataclass(frozen=True, slots=True)
class ModeSMessage:
    """One accepted Mode S frame.

    sample: preamble start, in samples from the first sample fed (see module doc).
    t_s: the same instant in seconds, with sub-sample phase.
    msg: 7 or 14 bytes after any repair. crc: "ok", "fixed", "ap" or "iid"
    (see frame_check). signal_dbfs: mean pulse power, dB relative to a full-scale
    complex tone (|IQ| = 127.5).
    """

    sample: int
    t_s: float
    msg: bytes
    df: int
    icao: int
    crc: str
    corrected_bits: int
    signal_dbfs: float

    @property
    def hex(self) -> str:
        """The frame as upper-case hex, as dump1090 --raw prints it between * and ;."""
        return self.msg.hex().upper()


class Receiver:
    """Stateful block demodulator: feed u8 IQ blocks of any size, get messages.

    `book` defaults to a fresh `AddressBook`; pass one to share confirmed addresses
    with another decoder. Not thread-safe; one receiver per sample stream.
    """

    def __init__(
        self,
        sample_rate_hz: int = 2_000_000,
        max_fix_bits: int = 1,
        *,
        book: AddressBook | None = None,
        demodulator: Demodulator | None = None,
    ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.max_fix_bits = max_fix_bits
        self.book = book if book is not None else AddressBook()
        self.demod = demodulator if demodulator is not None else Demodulator(sample_rate_hz)
        self._tail = np.zeros(self.demod.lookback, np.float32)
        self._tail_start = -self.demod.lookback  # absolute index of _tail[0]
        self._odd_byte: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)
        self._busy_until = -1  # absolute sample before which detections are duplicates
        self._noise_floor: float | None = None
        self._block_addresses: set[int] = set()
        self._known: npt.NDArray[np.uint32] = np.zeros(0, np.uint32)
        self.samples_fed = 0
        """Complex samples received so far."""

    def feed(self, iq_u8: npt.NDArray[np.uint8] | bytes) -> list[ModeSMessage]:
        """Demodulate one block of interleaved u8 IQ; returns the messages whose
        whole frame now lies in the samples seen (in time order)."""
        iq = np.frombuffer(iq_u8, np.uint8) if isinstance(iq_u8, bytes | bytearray) else iq_u8
        if self._odd_byte.size:
            iq = np.concatenate([self._odd_byte, iq])
        usable = iq.size - iq.size % 2
        self._odd_byte = iq[usable:].copy()
        if usable == 0:
            return []
        mag = magnitude(iq[:usable])
        self.samples_fed += mag.size
        return self._process(mag, final=False)

    def flush(self) -> list[ModeSMessage]:
        """Process what is left after the last block (a frame ending with the data)."""
        pad = np.zeros(self.demod.span + self.demod.prefilter_span, np.float32)
        messages = self._process(pad, final=True)
        return messages

    # --- internals --------------------------------------------------------------------

    def _process(self, mag: npt.NDArray[np.float32], *, final: bool) -> list[ModeSMessage]:
        demod = self.demod
        buf = np.concatenate([self._tail, mag])
        base = self._tail_start
        if not final:
            # Exponential average with a time constant in samples, so the tracked
            # floor hardly depends on how the stream is cut into blocks.
            block_noise = estimate_noise_floor(mag)
            weight = 1.0 - math.exp(-mag.size / _NOISE_TAU_SAMPLES)
            self._noise_floor = (
                block_noise
                if self._noise_floor is None
                else (1 - weight) * self._noise_floor + weight * block_noise
            )
        noise = self._noise_floor if self._noise_floor is not None else 0.0
        # Search preambles where a whole long frame fits; keep the rest for later.
        stop = buf.size - demod.span
        if final:
            stop = buf.size - mag.size  # real samples only; the padding is silence
        start = demod.lookback
        messages: list[ModeSMessage] = []
        if stop > start:
            t_block_s = (base + stop) / self.sample_rate_hz
            self._known = np.array(sorted(self.book.known(t_block_s)), dtype=np.uint32)
            self._block_addresses = set()
            preambles = demod.find_preambles(buf, start, stop, noise)
            rows = demod.slice(buf, preambles, self._classify)
            messages = self._accept(rows, base)
            keep_from = stop - demod.lookback
        else:
            keep_from = max(buf.size - demod.span - demod.lookback, 0)
        if final:
            self._tail = np.zeros(demod.lookback, np.float32)
            self._tail_start = self.samples_fed - demod.lookback
        else:
            self._tail = buf[keep_from:].copy()
            self._tail_start = base + keep_from
        return messages

    def _classify(self, rows: Candidates) -> npt.NDArray[np.int8]:
        """Rate rows for the slicer: CLEAN when check_frame will accept them as they
        are, REPAIRABLE when a one-bit repair may work, REJECT otherwise."""
        out = np.zeros(len(rows), np.int8)
        adsb = _ADSB_DF[rows.df]
        long_rows = rows.nbits == LONG_BITS
        clean_adsb = adsb & ((rows.residual == 0) | ((rows.df == 11) & (rows.residual < 0x80)))
        if self.max_fix_bits > 0:
            near = np.where(
                long_rows, one_bit_away(rows.residual, 112), one_bit_away(rows.residual, 56)
            )
            out[adsb & near] = REPAIRABLE
        # Addresses that clean frames in this block will confirm count as known.
        fresh = clean_adsb & (rows.residual == 0) & (rows.df != 18)
        if fresh.any():
            aa = (
                (rows.msg[fresh, 1].astype(np.uint32) << 16)
                | (rows.msg[fresh, 2].astype(np.uint32) << 8)
                | rows.msg[fresh, 3]
            )
            self._block_addresses.update(aa.tolist())
        known = self._known
        if self._block_addresses:
            known = np.union1d(known, np.fromiter(self._block_addresses, np.uint32))
        ap = _AP_DF[rows.df]
        if known.size and ap.any():
            at = np.minimum(np.searchsorted(known, rows.residual), known.size - 1)
            out[ap & (known[at] == rows.residual)] = CLEAN
        out[clean_adsb] = CLEAN
        return out

    def _accept(self, rows: Candidates, base: int) -> list[ModeSMessage]:
        """check_frame each row in time order, dropping detections inside a frame
        already accepted (the same frame seen from a neighbouring preamble)."""
        out: list[ModeSMessage] = []
        rate = self.sample_rate_hz
        sps = rate / 1e6
        starts = (rows.preamble + base).tolist()
        phases = rows.phase.tolist()
        nbits = rows.nbits.tolist()
        signals = rows.signal.tolist()
        for k in np.argsort(rows.preamble, kind="stable").tolist():
            start = starts[k] + phases[k]
            if start < self._busy_until:
                continue
            t_s = start / rate
            frame = check_frame(rows.frame(k), self.book, t_s, self.max_fix_bits)
            if frame is None:
                continue
            # The next frame cannot start before this one's last bit.
            self._busy_until = start + (8 + nbits[k] - 1) * sps
            level = max(signals[k], 1e-3) / FULL_SCALE
            out.append(
                ModeSMessage(
                    sample=math.floor(start + 0.5),
                    t_s=t_s,
                    msg=frame.msg,
                    df=frame.df,
                    icao=frame.icao,
                    crc=frame.crc,
                    corrected_bits=frame.corrected_bits,
                    signal_dbfs=20.0 * math.log10(level),
                )
            )
        return out
