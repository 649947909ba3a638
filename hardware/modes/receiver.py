"""Mode S receiver: u8 IQ blocks in, checked Mode S messages out.

Data flow per `Receiver.feed` call::

    u8 IQ bytes ──magnitude LUT (written in place)──┐
                                                    ▼
    [ tail of the previous block | this block ]       (float32, one reused buffer)
          ▲                     │
          │      NoiseTracker   noise floor per segment of absolute sample index
          │                     ▼
          │      Demodulator.find_preambles  (vectorized prefilter, per segment)
          │                     ▼
          │      Demodulator.slice   (preamble fit, fast and sequence slicing,
          │                           soft repair; _classify rates each row
          │                           against the parity rules and the known
          │                           addresses)
          │                     ▼
          │      _accept        parity verdicts per row in time order (the
          │                     check_frame rules, vectorized; repairs go through
          │                     check_frame); a frame inside an accepted one is
          │                     a duplicate
          │                     ▼
          └── tail kept for     ModeSMessage(sample, t_s, msg, df, icao, crc,
              the next block        corrected_bits, signal_dbfs)

Preambles are searched only where a whole long frame fits in the buffer and the
noise floor is known; the rest is kept as the tail for the next block, so a frame
split by a block edge is decoded once, from the next block, and the messages do not
depend on the block sizes at all. Small blocks are gathered into batches of
`batch_samples` before the search (its cost per call is mostly fixed), which
delays their messages but does not change them. `flush()` processes the pending
samples and pads the final partial block with silence; feeding may continue after
it (a new stream segment).

Timestamps: `sample` is the index, counted in samples at `sample_rate_hz` from the
first sample ever fed, of the first preamble pulse (rounded to the nearest sample
after phase correction); `t_s` is the same instant in seconds (fractional).
`signal_dbfs` is the mean sampled pulse height relative to full scale.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hardware.modes.candidates import Candidates
from hardware.modes.crc_rows import LONG_BITS, one_bit_away
from hardware.modes.demod import CLEAN, REPAIRABLE, Demodulator
from hardware.modes.frame_check import AddressBook, check_frame
from hardware.modes.magnitude import FULL_SCALE, magnitude
from hardware.modes.noise import NoiseTracker

__all__ = ["ModeSMessage", "Receiver"]

_AP_DF = np.isin(np.arange(32), (0, 4, 5, 16, 20, 21, 24))
_ADSB_DF = np.isin(np.arange(32), (11, 17, 18))
I64 = npt.NDArray[np.int64]


class ModeSMessage(NamedTuple):
    """One accepted Mode S frame (immutable).

    sample: preamble start, in samples from the first sample fed (see module doc).
    t_s: the same instant in seconds, with sub-sample phase.
    msg: 7 or 14 bytes after any repair. crc: "ok", "fixed", "ap" or "iid"
    (see frame_check; "fixed" also for soft repairs, with corrected_bits the bits
    flipped). signal_dbfs: mean sampled pulse height, dB relative to a full-scale
    complex tone (|IQ| = 127.5).

    A named tuple rather than a frozen dataclass: the receiver builds one per
    message, and a tuple is built in a third of the time.
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


def _address(msg: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint32]:
    """The AA field (bytes 1-3) of each row of packed frames."""
    aa: npt.NDArray[np.uint32] = np.ascontiguousarray(msg[:, :4]).view(">u4")[:, 0] & np.uint32(
        0xFFFFFF
    )
    return aa.astype(np.uint32)


def _among(known: npt.NDArray[np.uint32], values: npt.NDArray[np.uint32]) -> npt.NDArray[np.bool_]:
    """Whether each of `values` is in `known` (sorted, as `Receiver._known_now` is)."""
    if known.size == 0 or values.size == 0:
        return np.zeros(values.size, bool)
    at = np.minimum(np.searchsorted(known, values), known.size - 1)
    return np.asarray(known[at] == values)


DEFAULT_BATCH_SAMPLES = 1_048_576
"""Samples gathered before a preamble search (see `Receiver`): the latency bound of
a message, traded for CPU."""


class Receiver:
    """Stateful block demodulator: feed u8 IQ blocks of any size, get messages.

    `book` defaults to a fresh `AddressBook`; pass one to share confirmed addresses
    with another decoder. Not thread-safe; one receiver per sample stream.

    Blocks are demodulated in batches of at least `batch_samples` new samples
    (1 048 576: 524 ms at 2 MS/s, 437 ms at 2.4 MS/s): the demodulator pays 1-2 ms
    per batch whatever its size (a few hundred numpy calls), which at the 65 ms
    blocks the ADS-B source delivers would be 2-3 % of real time (measured on
    modes1.bin fed in those blocks: batches of 2^19 samples take 0.64 of the CPU
    time of demodulating every block, batches of 2^18 samples 0.79; 2^20 samples
    ran at 52x real time where 2^19 ran at 48x, bench/modes_demod.py). Smaller
    blocks are magnitude-converted at once and kept; their messages come out with
    the batch (at most `batch_samples` late). 0 demodulates every block as it
    comes. The messages do not depend on the batching (see the module docstring).
    """

    def __init__(
        self,
        sample_rate_hz: int = 2_000_000,
        max_fix_bits: int = 1,
        *,
        book: AddressBook | None = None,
        demodulator: Demodulator | None = None,
        batch_samples: int = DEFAULT_BATCH_SAMPLES,
    ) -> None:
        if batch_samples < 0:
            raise ValueError(f"batch_samples must be >= 0, got {batch_samples}")
        self.sample_rate_hz = sample_rate_hz
        self.batch_samples = batch_samples
        self.max_fix_bits = max_fix_bits
        self.book = book if book is not None else AddressBook()
        self.demod = demodulator if demodulator is not None else Demodulator(sample_rate_hz)
        # One reusable buffer: [tail kept from the last block | this block].
        self._buf = np.zeros(self.demod.lookback, np.float32)
        self._iq = np.full(2 * self.demod.lookback, 128, np.uint8)  # _buf's IQ (coherent slicing)
        # The block a feed call demodulates at once is not copied into _iq: its
        # samples from _buf index `at` on are the caller's array during the call.
        self._iq_block: tuple[int, npt.NDArray[np.uint8]] | None = None
        self._tail_len = self.demod.lookback
        self._tail_start = -self.demod.lookback  # absolute index of _buf[0]
        self._pending = 0  # samples after the tail written but not yet demodulated
        self._odd_byte: npt.NDArray[np.uint8] = np.zeros(0, np.uint8)
        self._busy_until = -1  # absolute sample before which detections are duplicates
        self._noise = NoiseTracker(compiled=self.demod.native)
        self._next_search = 0  # absolute sample where the next preamble search starts
        self._block_addresses: set[int] = set()
        self._known: npt.NDArray[np.uint32] = np.zeros(0, np.uint32)
        self._known_now = self._known  # _known and the addresses clean rows will confirm
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
        count = usable // 2
        mag = self._reserve(count)
        used = self._tail_len + self._pending
        magnitude(iq[:usable], out=mag, compiled=self.demod.native)
        self.samples_fed += count
        self._pending += count
        if self._pending < self.batch_samples:
            self._iq[2 * used : 2 * (used + count)] = iq[:usable]  # outlives this call
            return []
        self._iq_block = (used, iq[:usable])
        try:
            return self._process_pending()
        finally:
            self._iq_block = None

    def flush(self) -> list[ModeSMessage]:
        """Process what is left after the last block (a frame ending with the data)."""
        messages = self._process_pending() if self._pending else []
        count = self.demod.span + self.demod.prefilter_span
        self._reserve(count)[:] = 0.0
        used = self._tail_len + self._pending
        self._iq[2 * used : 2 * (used + count)] = 128
        return messages + self._process(count, final=True)

    # --- internals --------------------------------------------------------------------

    def _reserve(self, count: int) -> npt.NDArray[np.float32]:
        """The `count` buffer samples after the tail and the pending samples
        (growing the buffer if needed)."""
        used = self._tail_len + self._pending
        need = used + count
        if self._buf.size < need:
            grown = np.empty(max(need, 2 * self._buf.size), np.float32)
            grown[:used] = self._buf[:used]
            self._buf = grown
            grown_iq = np.empty(2 * grown.size, np.uint8)
            grown_iq[: 2 * used] = self._iq[: 2 * used]
            self._iq = grown_iq
        return self._buf[used:need]

    def _process_pending(self) -> list[ModeSMessage]:
        count, self._pending = self._pending, 0
        return self._process(count, final=False)

    def _process(self, count: int, *, final: bool) -> list[ModeSMessage]:
        """Search and slice the buffer after `count` new samples were written."""
        demod = self.demod
        buf = self._buf[: self._tail_len + count]
        base = self._tail_start
        if not final:
            self._noise.add(buf[self._tail_len :])
        # Search preambles where a whole long frame fits and the noise floor is
        # known; keep the rest for later.
        stop = buf.size - demod.span
        if final:
            stop = self._tail_len  # real samples only; the padding is silence
        stop = min(stop, self._noise.ready_until(final) - base)
        start = max(demod.lookback, self._next_search - base)
        messages: list[ModeSMessage] = []
        if stop > start:
            t_block_s = (base + stop) / self.sample_rate_hz
            self._known = np.array(sorted(self.book.known(t_block_s)), dtype=np.uint32)
            self._known_now = self._known
            self._block_addresses = set()
            preambles, noise = self._find(buf, base, start, stop)
            rows = demod.slice(
                buf, preambles, self._classify, noise, self._iq_pairs, self._known_addresses
            )
            messages = self._accept(rows, base)
            self._next_search = base + stop
            self._noise.forget_before(base + stop)
        if final:
            self._buf[: demod.lookback] = 0.0
            self._iq[: 2 * demod.lookback] = 128
            self._tail_len = demod.lookback
            self._tail_start = self.samples_fed - demod.lookback
            self._next_search = self.samples_fed
            self._noise = NoiseTracker(origin=self.samples_fed, compiled=self.demod.native)
        else:
            keep_from = max(min(self._next_search - base, buf.size) - demod.lookback, 0)
            kept = buf.size - keep_from
            self._buf[:kept] = buf[keep_from:]  # numpy copies overlapping slices safely
            self._iq[: 2 * kept] = self._iq_span(keep_from, buf.size)
            self._tail_len = kept
            self._tail_start = base + keep_from
        return messages

    def _known_addresses(self) -> npt.NDArray[np.uint32]:
        """Addresses confirmed so far, those clean rows of this block included."""
        return self._known_now

    def _iq_span(self, lo: int, hi: int) -> npt.NDArray[np.uint8]:
        """Interleaved IQ of buffer samples lo..hi-1 (a view where it is in one piece)."""
        if self._iq_block is None:
            return self._iq[2 * lo : 2 * hi]
        at, block = self._iq_block
        if lo >= at:
            return block[2 * (lo - at) : 2 * (hi - at)]
        if hi <= at:
            return self._iq[2 * lo : 2 * hi]
        return np.concatenate([self._iq[2 * lo : 2 * at], block[: 2 * (hi - at)]])

    def _iq_pairs(self, at: I64) -> npt.NDArray[np.uint16]:
        """IQ of buffer samples `at` as little-endian u16 pairs (demod.IqPairs)."""
        pairs: npt.NDArray[np.uint16] = np.take(self._iq.view("<u2"), at)
        if self._iq_block is not None:
            split, block = self._iq_block
            late = at >= split
            pairs[late] = np.take(np.ascontiguousarray(block).view("<u2"), at[late] - split)
        return pairs

    def _find(
        self, buf: npt.NDArray[np.float32], base: int, start: int, stop: int
    ) -> tuple[I64, npt.NDArray[np.float32]]:
        """Preamble candidates in buf[start:stop], each noise segment searched with
        its floor, and that floor per candidate (`NoiseTracker.floors` of them,
        without its per-candidate segment arithmetic)."""
        parts = []
        floors = []
        seg_starts = self._noise.boundaries(base + start, base + stop)
        for lo, hi in itertools.pairwise([base + start, *seg_starts, base + stop]):
            floor = self._noise.floor_at(lo)
            found = self.demod.find_preambles(buf, lo - base, hi - base, floor)
            parts.append(found)
            floors.append(np.full(found.size, floor, np.float32))
        return np.concatenate(parts), np.concatenate(floors)

    def _classify(self, rows: Candidates) -> npt.NDArray[np.int8]:
        """Rate rows for the slicer: CLEAN when check_frame will accept them as they
        are, REPAIRABLE when usable but a cleaner reading may exist (a one-bit
        repair, a DF11 IID, a soft repair), REJECT otherwise."""
        out = np.zeros(len(rows), np.int8)
        df, residual = rows.df, rows.residual
        soft = rows.flipped > 0
        adsb = _ADSB_DF[df] & ~soft
        # DF11 with an IID (residual 1..0x7F) is usable from a known address, but one
        # bit off a clean IID-0 reply just as well: the slicer looks for a clean
        # reading first.
        iid = (df == 11) & (residual - np.uint32(1) < np.uint32(0x7F))
        clean = adsb & (residual == 0)
        if self.max_fix_bits > 0:
            maybe = np.flatnonzero(adsb & ~clean & ~iid)
            if maybe.size:
                near = np.where(
                    rows.nbits[maybe] == LONG_BITS,
                    one_bit_away(residual[maybe], LONG_BITS),
                    one_bit_away(residual[maybe], 56),
                )
                out[maybe[near]] = REPAIRABLE
        # Addresses that clean frames in this block will confirm count as known.
        fresh = np.flatnonzero(clean & (df != 18))
        if fresh.size:
            found = _address(rows.msg[fresh])
            found = found[~_among(self._known_now, found)]
            if found.size:
                self._block_addresses.update(found.tolist())
                everything = self._block_addresses.union(self._known.tolist())
                self._known_now = np.array(sorted(everything), np.uint32)
        known = self._known_now
        ap = np.flatnonzero(_AP_DF[df])
        out[ap[_among(known, residual[ap])]] = CLEAN
        out[clean] = CLEAN
        # An IID reply is usable only from a known address (see frame_check).
        iid_rows = np.flatnonzero(adsb & iid)
        out[iid_rows[_among(known, _address(rows.msg[iid_rows]))]] = REPAIRABLE
        # Soft-repaired frames are clean only after flips: like any repair they are
        # usable only from an address already confirmed (see frame_check).
        if soft.any():
            candidates = np.flatnonzero(soft & _ADSB_DF[df] & (residual == 0))
            out[candidates[_among(known, _address(rows.msg[candidates]))]] = REPAIRABLE
        return out

    def _accept(self, rows: Candidates, base: int) -> list[ModeSMessage]:
        """Apply the parity rules to each row in time order, dropping detections
        inside a frame already accepted (the same frame seen from a neighbouring
        preamble).

        The common verdicts (clean DF11/17/18, IID, address/parity against the
        book, soft repairs) are decided here from the vectorized residuals exactly
        as `check_frame` decides them (a test holds the two together); rows that
        need a CRC repair go through `check_frame` itself.
        """
        out: list[ModeSMessage] = []
        if not len(rows):
            return out
        rate = self.sample_rate_hz
        book = self.book
        if (rows.preamble[1:] < rows.preamble[:-1]).any():  # the slicer gives them sorted
            rows = rows.take(np.argsort(rows.preamble, kind="stable"))
        kinds, icaos = _verdicts(rows)
        start = (rows.preamble + base).astype(np.float64) + rows.phase
        # The next frame cannot start before this frame's last bit.
        ends = start + (8 + rows.nbits.astype(np.float64) - 1) * (rate / 1e6)
        levels = 20.0 * np.log10(np.maximum(rows.signal, 1e-3) / FULL_SCALE)
        packed, width = rows.msg.tobytes(), rows.msg.shape[1]
        frames = [
            packed[at : at + n]
            for at, n in zip(range(0, len(packed), width), (rows.nbits // 8).tolist(), strict=True)
        ]
        # Addresses confirmed in this block: the first confirmation goes to the book
        # at once (later frames of the block may need it), the latest time at the
        # end. In between the book holds an earlier time, which answers is_known
        # the same for any TTL longer than a block.
        confirmed: dict[int, float] = {}
        busy_until = self._busy_until
        max_fix = self.max_fix_bits
        is_known = book.is_known
        new_message = tuple.__new__  # ModeSMessage(...) without its argument parsing
        for first, end, t_s, sample, kind, icao, df, msg, level, flipped in zip(
            start.tolist(),
            ends.tolist(),
            (start / rate).tolist(),
            np.floor(start + 0.5).astype(np.int64).tolist(),
            kinds.tolist(),
            icaos.tolist(),
            np.minimum(rows.df, 24).tolist(),
            frames,
            levels.tolist(),
            rows.flipped.tolist(),
            strict=True,
        ):
            if first < busy_until:
                continue
            fixed = 0
            if kind == _CONFIRM:
                if icao not in confirmed:
                    book.confirm(icao, t_s)
                confirmed[icao] = t_s
                crc = "ok"
            elif kind == _OK:
                crc = "ok"
            elif kind in (_IID, _AP):
                if not is_known(icao, t_s):
                    continue
                crc = "iid" if kind == _IID else "ap"
            elif kind == _SOFT:
                if max_fix < 1 or not is_known(icao, t_s):
                    continue
                crc, fixed = "fixed", flipped
            else:
                frame = check_frame(msg, book, t_s, max_fix)
                if frame is None:
                    continue
                msg, icao, crc, fixed = frame.msg, frame.icao, frame.crc, frame.corrected_bits
            busy_until = end
            out.append(new_message(ModeSMessage, (sample, t_s, msg, df, icao, crc, fixed, level)))
        self._busy_until = busy_until
        for icao, t_s in confirmed.items():
            book.confirm(icao, t_s)
        return out


# Verdicts of `_verdicts`: what accepting a row takes.
_CHECK, _CONFIRM, _OK, _IID, _AP, _SOFT = range(6)
_AP_OR_24 = np.isin(np.arange(32), (0, 4, 5, 16, 20, 21, *range(24, 32)))


def _verdicts(
    rows: Candidates,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.uint32]]:
    """Per row, which rule of frame_check applies and the address it names.

    _CONFIRM: clean DF11 (IID 0), DF17, DF18 with CF 0 (accept, confirm the AA).
    _OK: clean DF18 with CF != 0 (accept). _IID: DF11 with IID residual (accept when
    the AA is known).
    _AP: address/parity format (accept when the residual is a known address).
    _SOFT: soft-repaired DF11/17/18 (accept when the AA is known, never confirm).
    _CHECK: anything else (repairs, impossible formats): ask check_frame.
    """
    df, r = rows.df, rows.residual
    aa = _address(rows.msg)
    kind = np.full(len(rows), _CHECK, np.int8)
    clean = r == 0
    kind[(df == 17) & clean] = _CONFIRM
    kind[(df == 11) & clean] = _CONFIRM
    kind[(df == 11) & (r > 0) & (r < 0x80)] = _IID
    df18 = (df == 18) & clean
    kind[df18] = np.where((rows.msg[df18, 0] & 0x07) == 0, _CONFIRM, _OK)
    ap = _AP_OR_24[df]
    kind[ap] = _AP
    kind[rows.flipped > 0] = _SOFT
    return kind, np.where(ap, r, aa).astype(np.uint32)
