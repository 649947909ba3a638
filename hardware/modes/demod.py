"""Mode S demodulator over whole blocks of magnitude samples (numpy, 2.0 and 2.4 MS/s).

Wire format (ICAO Annex 10 Vol IV, 1090 MHz pulse-position modulation)::

    t/us  0   0.5 1.0 1.5      3.5 4.0 4.5 5.0      8.0       9.0       10.0
          |###|   |###|        |###|   |###|        |### .....|..... ###|   ...
          '-------- preamble: four 0.5 us pulses ------'   bit 0 = 1   bit 1 = 0

    Data: 56 or 112 bits of 1 us each from t = 8 us. A one is a pulse in the first
    half of its bit period, a zero a pulse in the second half. Bits 0-4 are the
    downlink format (DF); DF >= 16 frames are 112 bits long, the others 56.

At 2.0 MS/s a half-bit is one sample and at 2.4 MS/s 1.2 samples, so pulses
straddle samples and the receiver's ~2 MHz filter smears them. The demodulator
works in two stages:

1. Prefilter, whole-array: window sums over the four pulse positions must each
   beat the quiet gaps of the preamble by `pulse_to_quiet` and the tracked noise
   floor by `pulse_to_noise`. Local maxima of the pulse energy become candidates.
2. Slicing, per candidate but vectorized over all candidates and phases at once:
   for each sub-sample phase (default steps of 0.25 sample over +-1 sample) the
   magnitude is interpolated at the centre of both half-bit pulse slots of every
   bit; a bit is one when the first slot is stronger. Every phase's bits are
   packed and their CRC-24 residual computed with byte tables, so the caller can
   keep the phases whose CRC checks (see `hardware.modes.receiver`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from hardware.modes.crc import crc24

__all__ = [
    "LONG_BITS",
    "SHORT_BITS",
    "Candidates",
    "Demodulator",
    "demodulate",
    "estimate_noise_floor",
    "frame_residuals",
    "one_bit_away",
    "single_bit_syndromes",
]

PREAMBLE_PULSES_US = (0.0, 1.0, 3.5, 4.5)
PULSE_US = 0.5
DATA_START_US = 8.0
BIT_US = 1.0
SHORT_BITS = 56
LONG_BITS = 112
SUPPORTED_RATES_HZ = (2_000_000, 2_400_000)

_RAYLEIGH_MEAN_TO_MEDIAN = 1.06  # mean / median of a Rayleigh magnitude

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


# --- vectorized CRC -----------------------------------------------------------------


@cache
def single_bit_syndromes(nbits: int) -> U32:
    """Residual (CRC of data XOR parity) that a lone error at each bit of an
    `nbits`-bit frame produces; entry i is for bit i (bit 0 = MSB of byte 0)."""
    nbytes = nbits // 8
    out = np.zeros(nbits, dtype=np.uint32)
    for bit in range(nbits):
        frame = bytearray(nbytes)
        frame[bit // 8] = 0x80 >> (bit % 8)
        out[bit] = crc24(bytes(frame[:-3])) ^ int.from_bytes(frame[-3:], "big")
    out.flags.writeable = False
    return out


@cache
def _sorted_syndromes(nbits: int) -> U32:
    return np.sort(single_bit_syndromes(nbits))


def one_bit_away(residual: U32, nbits: int) -> npt.NDArray[np.bool_]:
    """Whether each residual is the syndrome of a single-bit error in an
    `nbits`-bit frame (so the frame is one flipped bit from a clean CRC)."""
    table = _sorted_syndromes(nbits)
    at = np.minimum(np.searchsorted(table, residual), table.size - 1)
    return np.asarray(table[at] == residual)


@cache
def _byte_tables(nbits: int) -> U32:
    """(nbytes, 256) table: the residual contribution of each byte value at each
    position. CRC-24 with zero init is linear, so a frame's residual is the XOR of
    its bytes' contributions."""
    syn = single_bit_syndromes(nbits).reshape(-1, 8)
    values = np.arange(256, dtype=np.uint32)
    table = np.zeros((nbits // 8, 256), dtype=np.uint32)
    for bit in range(8):
        has_bit = ((values >> (7 - bit)) & 1).astype(bool)
        table[:, has_bit] ^= syn[:, bit : bit + 1]
    table.flags.writeable = False
    return table


def frame_residuals(msgs: U8, nbits: int) -> U32:
    """CRC-24 residual of each row of `msgs` (bytes, at least nbits/8 columns)
    read as an `nbits`-bit frame: 0 for a clean DF17, the address for AP formats."""
    table = _byte_tables(nbits)
    out = np.zeros(msgs.shape[:-1], dtype=np.uint32)
    for pos in range(nbits // 8):
        out ^= table[pos][msgs[..., pos]]
    return out


def estimate_noise_floor(mag: F32) -> float:
    """Noise floor of a block in magnitude units: the median of a 1-in-16 subsample
    (for Rayleigh noise of scale s that is 1.18 s; the mean is 1.25 s).

    Mode S replies fill well under half of the air time even in dense airspace, so
    the median tracks the noise and ignores the pulses.
    """
    sub = mag[::16]
    if sub.size == 0:
        return 0.0
    k = sub.size // 2
    return float(np.partition(sub, k)[k])


# --- candidates -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidates:
    """Demodulated frames, one row per (preamble, phase) tried.

    Attributes (arrays of one length N unless said):
        preamble: index into the magnitude array of the detected preamble start.
        phase: sub-sample offset of that row's bit grid, in samples; the first
            preamble pulse starts at ``preamble + phase``.
        msg: (N, 14) uint8, the sliced bits packed MSB first; a short frame uses
            the first 7 bytes.
        df: downlink format (first 5 bits).
        nbits: 56 or 112, from the DF.
        residual: CRC-24 of the data bits XOR the parity field (see crc.residual).
        margin: mean |first slot - second slot| / mean (first + second), 0..1: how
            cleanly the bits were decided.
        signal: mean pulse magnitude over the frame (ADC units, see magnitude.py).
    """

    preamble: I64
    phase: F32
    msg: U8
    df: U8
    nbits: npt.NDArray[np.int16]
    residual: U32
    margin: F32
    signal: F32

    def __len__(self) -> int:
        return int(self.preamble.size)

    def frame(self, row: int) -> bytes:
        """Row `row` as a 7- or 14-byte Mode S frame."""
        return self.msg[row, : int(self.nbits[row]) // 8].tobytes()

    def take(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Candidates:
        """The subset of rows selected by an index or mask array."""
        return Candidates(
            self.preamble[rows],
            self.phase[rows],
            self.msg[rows],
            self.df[rows],
            self.nbits[rows],
            self.residual[rows],
            self.margin[rows],
            self.signal[rows],
        )


def _empty_candidates() -> Candidates:
    return Candidates(
        np.zeros(0, np.int64),
        np.zeros(0, np.float32),
        np.zeros((0, 14), np.uint8),
        np.zeros(0, np.uint8),
        np.zeros(0, np.int16),
        np.zeros(0, np.uint32),
        np.zeros(0, np.float32),
        np.zeros(0, np.float32),
    )


# --- the demodulator -----------------------------------------------------------------

Classifier = Callable[[Candidates], npt.NDArray[np.int8]]
"""Rates rows: 2 = CRC clean, 1 = usable after repair or with a weaker check, 0 = reject."""

CLEAN, REPAIRABLE, REJECT = 2, 1, 0
ADSB_DFS = (11, 17, 18)
KNOWN_DFS = (0, 4, 5, 11, 16, 17, 18, 20, 21)
_ADSB_DF = np.isin(np.arange(32), ADSB_DFS)
_KNOWN_DF = np.isin(np.arange(32), KNOWN_DFS)


def crc_classifier(rows: Candidates) -> npt.NDArray[np.int8]:
    """Default `Classifier`: DF17/18 with residual 0 and DF11 with an IID residual
    (< 0x80) are clean; DF11/17/18 one bit away from clean are repairable."""
    out = np.zeros(len(rows), np.int8)
    adsb = _ADSB_DF[rows.df]
    long_rows = rows.nbits == LONG_BITS
    fixable = adsb & np.where(
        long_rows,
        one_bit_away(rows.residual, LONG_BITS),
        one_bit_away(rows.residual, SHORT_BITS),
    )
    out[fixable] = REPAIRABLE
    clean = adsb & ((rows.residual == 0) | ((rows.df == 11) & (rows.residual < 0x80)))
    out[clean] = CLEAN
    return out


def _quiet_windows(quiet: list[int], width: int) -> list[int]:
    """Start offsets of non-overlapping `width`-sample windows inside `quiet`."""
    starts: list[int] = []
    pool = set(quiet)
    for k in sorted(quiet):
        if all(k + j in pool for j in range(width)) and (not starts or k >= starts[-1] + width):
            starts.append(k)
    return starts


@dataclass(frozen=True, slots=True)
class _Taps:
    """Interpolation taps for one fractional phase: bit i = period_bits*q + r reads
    ``sum(weight * win[offset + period_samples*q])`` over its (offset, weight) list."""

    soft: tuple[tuple[tuple[int, float], ...], ...]  # per residue r: (offset, weight)...
    slot1: tuple[tuple[int, float, float], ...]  # per residue r: (offset, 1-g, g)
    slot0: tuple[tuple[int, float, float], ...]


class Demodulator:
    """Preamble search and phase-searching bit slicer for one sample rate.

    Stateless apart from precomputed tables; `hardware.modes.receiver.Receiver`
    carries state across blocks. Positions are in samples of the magnitude array,
    levels in magnitude (ADC) units.

    Phases: the prefilter finds a preamble to within a sample; the slicer tries
    offsets ``-1, -1 + step, ..., 1 - step`` samples around it. It first slices the
    first `rank_bits` bits at every phase, ranks each candidate's phases (valid DF
    first, then decision margin), then slices whole frames one ranked phase per
    round, so a candidate whose best phase checks costs one full slice.
    """

    def __init__(
        self,
        sample_rate_hz: int = 2_000_000,
        *,
        phase_step_samples: float = 0.25,
        pulse_to_quiet: float = 2.0,
        pulse_min_to_quiet: float = 2.0,
        pulse_to_noise: float = 2.0,
        quiet_noise_credit: float = 1.0,
        rank_bits: int = 24,
        max_rounds: int = 3,
        chunk_samples: int = 32_768,
    ) -> None:
        if sample_rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(f"sample rate {sample_rate_hz} Hz not in {SUPPORTED_RATES_HZ}")
        self.sample_rate_hz = sample_rate_hz
        self.pulse_to_quiet = pulse_to_quiet
        self.pulse_min_to_quiet = pulse_min_to_quiet
        self.quiet_noise_credit = quiet_noise_credit
        self.pulse_to_noise = pulse_to_noise
        self.rank_bits = rank_bits
        self.max_rounds = max_rounds
        sps = sample_rate_hz / 1e6  # samples per microsecond
        # Bit timing repeats every `period_bits` bits = `period_samples` samples.
        self._period_bits = 1 if sample_rate_hz == 2_000_000 else 5
        self._period_samples = round(self._period_bits * sps)

        # Prefilter geometry: a pulse starting at t*sps + phi (0 <= phi < 1) lies in
        # samples floor(t*sps) .. ceil((t+0.5)*sps + 1) - 1; a gap is quiet from one
        # sample after the previous pulse can end to half a sample before the next.
        self._win = int(np.ceil(PULSE_US * sps)) + 1
        self._pulse_offsets = [int(np.floor(t * sps)) for t in PREAMBLE_PULSES_US]
        ends = [int(np.ceil((t + PULSE_US) * sps + 1.0)) for t in PREAMBLE_PULSES_US]
        gap1 = list(range(ends[1], int(np.floor(PREAMBLE_PULSES_US[2] * sps - 0.5)) + 1))
        gap2 = list(range(ends[3], int(np.floor(DATA_START_US * sps - 0.5)) + 1))
        self._quiet_offsets = _quiet_windows(gap1, self._win) + _quiet_windows(gap2, self._win)
        self._chunk = chunk_samples
        self._scratch_win = np.empty(chunk_samples + self.prefilter_span, np.float32)
        self._scratch_a = np.empty(chunk_samples + self.prefilter_span, np.float32)
        self._scratch_b = np.empty(chunk_samples + self.prefilter_span, np.float32)
        self._scratch_c = np.empty(chunk_samples + self.prefilter_span, np.float32)
        self._scratch_bool = np.empty(chunk_samples, bool)

        # Slicer geometry. A phase delta = whole + frac (whole = floor(delta)). Slicing
        # windows start `lookback` samples before the preamble, so window index =
        # (whole + lookback) + tap offset, and the taps depend on frac only.
        self.phases = np.arange(-1.0, 1.0 - 1e-9, phase_step_samples)
        self._fracs = sorted({round(d - np.floor(d), 6) for d in self.phases})
        self._phase_whole = np.floor(self.phases).astype(np.intp)
        self._phase_frac = np.array(
            [self._fracs.index(round(d - np.floor(d), 6)) for d in self.phases], dtype=np.intp
        )
        self._taps = [self._make_taps(f, sps) for f in self._fracs]
        last = (DATA_START_US + (LONG_BITS - 1) * BIT_US + 0.5 * PULSE_US + PULSE_US) * sps
        self.lookback = 1  # the most negative whole phase
        self._window_len = int(np.ceil(last + 1.0)) + 2
        self.span = self._window_len
        rank_last = (DATA_START_US + self.rank_bits * BIT_US) * sps
        self._rank_len = int(np.ceil(rank_last)) + 4
        self._short_frame_samples = int((DATA_START_US + SHORT_BITS * BIT_US) * sps)
        """Samples needed from a preamble start to slice a long frame at any phase."""

    def _make_taps(self, frac: float, sps: float) -> _Taps:
        soft, s1, s0 = [], [], []
        for r in range(self._period_bits):
            x1 = frac + (DATA_START_US + r * BIT_US + 0.5 * PULSE_US) * sps
            x0 = x1 + PULSE_US * sps
            k1, k0 = int(np.floor(x1 + 1e-9)), int(np.floor(x0 + 1e-9))
            g1, g0 = max(x1 - k1, 0.0), max(x0 - k0, 0.0)
            weights: dict[int, float] = {}
            for k, w in ((k1, 1 - g1), (k1 + 1, g1), (k0, -(1 - g0)), (k0 + 1, -g0)):
                weights[k] = weights.get(k, 0.0) + w
            soft.append(tuple((k, w) for k, w in sorted(weights.items()) if abs(w) > 1e-9))
            s1.append((k1, 1 - g1, g1))
            s0.append((k0, 1 - g0, g0))
        return _Taps(tuple(soft), tuple(s1), tuple(s0))

    @property
    def prefilter_span(self) -> int:
        """Samples the prefilter reads from the preamble start."""
        return max(self._pulse_offsets + self._quiet_offsets) + self._win

    def find_preambles(self, mag: F32, start: int, stop: int, noise_floor: float) -> I64:
        """Candidate preamble starts n with start <= n < stop (sorted).

        Only starts with ``n >= lookback`` and ``n + span <= len(mag)`` are returned.
        """
        start = max(start, self.lookback)
        stop = min(stop, mag.size - self.span)
        if stop <= start:
            return np.zeros(0, np.int64)
        hits = np.concatenate(
            [
                self._prefilter_chunk(mag, c0, min(c0 + self._chunk, stop), noise_floor) + c0
                for c0 in range(start, stop, self._chunk)
            ]
        )
        if hits.size == 0:
            return np.zeros(0, np.int64)
        # Keep local maxima (within +-1 sample) of the total pulse energy.
        energy = np.zeros(hits.size, np.float32)
        for o in self._pulse_offsets:
            for j in range(self._win):
                energy += mag[hits + (o + j)]
        before = np.full(hits.size, -np.inf, np.float32)
        after = np.full(hits.size, -np.inf, np.float32)
        adjacent = np.diff(hits) == 1
        before[1:][adjacent] = energy[:-1][adjacent]
        after[:-1][adjacent] = energy[1:][adjacent]
        peak = (energy >= before) & (energy > after)
        return hits[peak].astype(np.int64)

    def _prefilter_chunk(self, mag: F32, start: int, stop: int, noise_floor: float) -> I64:
        """Offsets from `start` of the samples in [start, stop) that pass the preamble
        prefilter. Works in preallocated cache-sized scratch arrays: fresh large
        temporaries would cost more in page faults than the arithmetic."""
        length = stop - start
        width, span = self._win, self.prefilter_span
        po, qo = self._pulse_offsets, self._quiet_offsets
        # Window sums: win[k] = mag[k] + ... + mag[k + width - 1].
        n_win = length + span - width + 1
        win = self._scratch_win[:n_win]
        np.add(mag[start : start + n_win], mag[start + 1 : start + 1 + n_win], out=win)
        for j in range(2, width):
            win += mag[start + j : start + j + n_win]
        # Pulse windows vs quiet windows: every pulse above the mean quiet window,
        # the mean pulse well above it, and above the noise floor.
        weakest = self._scratch_a[:length]
        total = self._scratch_c[:length]
        pair = self._scratch_b[: length + po[2]]
        if po[2] - po[0] == po[3] - po[1]:  # true at 2.0 and 2.4 MS/s: fewer passes
            shift = po[2] - po[0]
            np.minimum(
                win[po[0] : po[0] + length + shift], win[po[1] : po[1] + length + shift], out=pair
            )
            np.minimum(pair[:length], pair[shift : shift + length], out=weakest)
            np.add(
                win[po[0] : po[0] + length + shift], win[po[1] : po[1] + length + shift], out=pair
            )
            np.add(pair[:length], pair[shift : shift + length], out=total)
        else:
            np.minimum(win[po[0] : po[0] + length], win[po[1] : po[1] + length], out=weakest)
            np.add(win[po[0] : po[0] + length], win[po[1] : po[1] + length], out=total)
            for o in po[2:]:
                np.minimum(weakest, win[o : o + length], out=weakest)
                total += win[o : o + length]
        quiet = self._scratch_b[:length]
        np.add(win[qo[0] : qo[0] + length], win[qo[1] : qo[1] + length], out=quiet)
        for q in qo[2:]:
            quiet += win[q : q + length]
        passed = self._scratch_bool[:length]
        # The weakest pulse's excess over the mean noise must be pulse_min_to_quiet
        # times the quiet windows' excess: strict where the quiet windows hold energy
        # (a frame's own data bits mimicking a preamble), lenient near the noise.
        noise_window = np.float32(_RAYLEIGH_MEAN_TO_MEDIAN * noise_floor * width)
        k = self.pulse_min_to_quiet
        np.greater(
            weakest,
            quiet * np.float32(k / len(qo))
            - np.float32(self.quiet_noise_credit * (k - 1.0)) * noise_window,
            out=passed,
        )
        # mean pulse > pulse_to_quiet x mean quiet window, and > pulse_to_noise x floor
        np.maximum(
            quiet * np.float32(self.pulse_to_quiet * len(po) / len(qo)),
            np.float32(self.pulse_to_noise * noise_floor * width * len(po)),
            out=quiet,
        )
        passed &= total > quiet
        return np.flatnonzero(passed)

    def _soft_bits(self, windows: F32, shift: int, frac_index: int, nbits: int) -> F32:
        """Slot difference (first - second half) of the first `nbits` bits of each
        window column, for the fractional phase `frac_index`, window offset `shift`.

        `windows` is (samples, candidates) so that every term below is a set of whole
        contiguous rows; returns (nbits, candidates)."""
        taps = self._taps[frac_index]
        period_b, period_s = self._period_bits, self._period_samples
        out = np.empty((nbits, windows.shape[1]), np.float32)
        for r in range(min(period_b, nbits)):
            count = (nbits - r + period_b - 1) // period_b
            stop_pad = period_s * (count - 1) + 1
            acc: F32 | None = None
            for offset, weight in taps.soft[r]:
                o = offset + shift
                view = windows[o : o + stop_pad : period_s]
                if acc is None:
                    acc = view.copy() if weight == 1.0 else view * np.float32(weight)
                elif weight == 1.0:
                    acc += view
                elif weight == -1.0:
                    acc -= view
                else:
                    acc += view * np.float32(weight)
            assert acc is not None
            out[r::period_b] = acc
        return out

    def _windows(self, mag: F32, preambles: I64, length: int) -> F32:
        """(length, C) magnitude windows, column c starting `lookback` samples before
        preamble c."""
        # Row gather from a strided view (a copy per row, not an index per sample),
        # then one transpose so the slicer works on contiguous rows.
        view = np.lib.stride_tricks.sliding_window_view(mag, length)
        cols: F32 = np.ascontiguousarray(view[preambles - self.lookback].T)
        return cols

    def _inside_clean(
        self, preambles: I64, chosen_class: npt.NDArray[np.int8], pending: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.bool_]:
        """Which pending candidates start within a short frame after a CLEAN one."""
        clean_starts = preambles[chosen_class == CLEAN]
        if clean_starts.size == 0 or pending.size == 0:
            return np.zeros(pending.size, bool)
        starts = preambles[pending]
        before = np.searchsorted(clean_starts, starts, side="left") - 1
        prev = clean_starts[np.maximum(before, 0)]
        return np.asarray((before >= 0) & (starts - prev < self._short_frame_samples))

    def slice(self, mag: F32, preambles: I64, classify: Classifier = crc_classifier) -> Candidates:
        """Slice candidate preambles, trying ranked phases until `classify` accepts one.

        Returns one row per preamble that produced an accepted frame: its first
        CLEAN phase in rank order, else its first REPAIRABLE one.
        """
        if preambles.size == 0:
            return _empty_candidates()
        count, nphase = preambles.size, self.phases.size
        # 1. Rank phases on the first rank_bits bits (short windows: cheap to gather).
        windows = self._windows(mag, preambles, self._rank_len)
        margin = np.empty((count, nphase), np.float32)
        df_ok = np.empty((count, nphase), bool)
        for p in range(nphase):
            soft = self._soft_bits(
                windows, int(self._phase_whole[p]) + 1, int(self._phase_frac[p]), self.rank_bits
            )
            margin[:, p] = np.abs(soft).sum(axis=0)
            df = np.packbits(soft[:5] > 0, axis=0)[0] >> 3
            df_ok[:, p] = _KNOWN_DF[df]
        order = np.argsort(-(margin + df_ok * np.float32(1e9)), axis=1, kind="stable")
        # 2. Rounds: slice whole frames at each pending candidate's next phase. After
        # each round, candidates that start inside a clean frame are dropped: they are
        # that frame's own pulses seen as a preamble.
        chosen_phase = np.full(count, -1, np.intp)
        chosen_class = np.zeros(count, np.int8)
        pending = np.arange(count)
        for rnd in range(min(self.max_rounds, nphase)):
            phase = order[pending, rnd]
            valid = df_ok[pending, phase]
            pending, phase = pending[valid], phase[valid]
            if pending.size == 0:
                break
            rows, cand, phase = self._slice_rows(mag, preambles, pending, phase)
            cls = classify(rows)
            better = cls > chosen_class[cand]
            chosen_class[cand[better]] = cls[better]
            chosen_phase[cand[better]] = phase[better]
            pending = np.sort(cand[cls != CLEAN])
            pending = pending[~self._inside_clean(preambles, chosen_class, pending)]
        chosen = np.flatnonzero(chosen_class > REJECT)
        if chosen.size == 0:
            return _empty_candidates()
        rows, cand, _ = self._slice_rows(mag, preambles, chosen, chosen_phase[chosen], levels=True)
        return rows.take(np.argsort(cand, kind="stable"))

    def _slice_rows(
        self,
        mag: F32,
        preambles: I64,
        cands: npt.NDArray[np.intp],
        phase: npt.NDArray[np.intp],
        *,
        levels: bool = False,
    ) -> tuple[Candidates, npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """Full-length slice of candidate cands[k] at phase index phase[k].

        Rows come back sorted by phase, so each phase is one contiguous view rather
        than a copy; also returns the candidate and phase index of each row.
        """
        order = np.argsort(phase, kind="stable")
        cands, phase = cands[order], phase[order]
        rows_win = self._windows(mag, preambles[cands], self._window_len)
        n = cands.size
        soft = np.empty((LONG_BITS, n), np.float32)
        bounds = np.searchsorted(phase, np.arange(self.phases.size + 1))
        groups = [
            (p, int(bounds[p]), int(bounds[p + 1]))
            for p in range(self.phases.size)
            if bounds[p + 1] > bounds[p]
        ]
        for p, lo, hi in groups:
            soft[:, lo:hi] = self._soft_bits(
                rows_win[:, lo:hi],
                int(self._phase_whole[p]) + 1,
                int(self._phase_frac[p]),
                LONG_BITS,
            )
        msg = np.ascontiguousarray(np.packbits(soft > 0, axis=0).T)
        df = (msg[:, 0] >> 3).astype(np.uint8)
        long_rows = df >= 16
        nbits = np.where(long_rows, LONG_BITS, SHORT_BITS).astype(np.int16)
        residual = np.where(
            long_rows, frame_residuals(msg, LONG_BITS), frame_residuals(msg, SHORT_BITS)
        )
        margin = np.zeros(n, np.float32)
        signal = np.zeros(n, np.float32)
        if levels:
            absdiff = np.abs(soft)
            margin = np.where(
                long_rows, absdiff.mean(axis=0), absdiff[:SHORT_BITS].mean(axis=0)
            ).astype(np.float32)
            for p, lo, hi in groups:
                signal[lo:hi] = self._signal(rows_win[:, lo:hi], p, long_rows[lo:hi])
        rows = Candidates(
            preamble=preambles[cands],
            phase=self.phases[phase].astype(np.float32),
            msg=msg,
            df=df,
            nbits=nbits,
            residual=residual,
            margin=margin,
            signal=signal,
        )
        return rows, cands, phase

    def _signal(self, rows_win: F32, phase: int, long_rows: npt.NDArray[np.bool_]) -> F32:
        """Mean magnitude of the pulse slot (the stronger of the two) of every bit."""
        taps = self._taps[int(self._phase_frac[phase])]
        shift = int(self._phase_whole[phase]) + 1
        period_b, period_s = self._period_bits, self._period_samples
        peak = np.empty((LONG_BITS, rows_win.shape[1]), np.float32)
        for r in range(period_b):
            count = (LONG_BITS - r + period_b - 1) // period_b
            stop_pad = period_s * (count - 1) + 1
            levels = []
            for off, a, b in (taps.slot1[r], taps.slot0[r]):
                o = off + shift
                lo = rows_win[o : o + stop_pad : period_s]
                hi = rows_win[o + 1 : o + 1 + stop_pad : period_s]
                levels.append(lo * np.float32(a) + hi * np.float32(b))
            peak[r::period_b] = np.maximum(levels[0], levels[1])
        level: F32 = np.where(long_rows, peak.mean(axis=0), peak[:SHORT_BITS].mean(axis=0)).astype(
            np.float32
        )
        return level


def demodulate(
    mag: F32,
    sample_rate_hz: int = 2_000_000,
    noise_floor: float | None = None,
    classify: Classifier = crc_classifier,
) -> Candidates:
    """Find and slice every frame in one whole magnitude array.

    A pure convenience over `Demodulator` for tests and one-shot use: the array is
    zero-padded so frames near both ends are tried, and one row is returned per
    preamble whose frame `classify` accepted (default: CRC-clean or one-bit-repairable
    DF11/17/18). Overlapping detections of one frame are not merged here; the
    `Receiver` does that.
    """
    demod = Demodulator(sample_rate_hz)
    if noise_floor is None:
        noise_floor = estimate_noise_floor(mag)
    pad = demod.lookback
    padded = np.concatenate(
        [
            np.zeros(pad, np.float32),
            mag.astype(np.float32, copy=False),
            np.zeros(demod.span + demod.prefilter_span, np.float32),
        ]
    )
    found = demod.find_preambles(padded, pad, pad + mag.size, noise_floor)
    rows = demod.slice(padded, found, classify)
    return Candidates(
        rows.preamble - pad,
        rows.phase,
        rows.msg,
        rows.df,
        rows.nbits,
        rows.residual,
        rows.margin,
        rows.signal,
    )
