"""Mode S demodulator over whole blocks of magnitude samples (numpy, 2.0 and 2.4 MS/s).

Wire format (ICAO Annex 10 Vol IV, 1090 MHz pulse-position modulation)::

    t/us  0   0.5 1.0 1.5      3.5 4.0 4.5 5.0      8.0       9.0       10.0
          |###|   |###|        |###|   |###|        |### .....|..... ###|   ...
          '-------- preamble: four 0.5 us pulses ------'   bit 0 = 1   bit 1 = 0

    Data: 56 or 112 bits of 1 us each from t = 8 us. A one is a pulse in the first
    half of its bit period, a zero a pulse in the second half. Bits 0-4 are the
    downlink format (DF); DF >= 16 frames are 112 bits long, the others 56.

At 2.0 MS/s a half-bit is one sample and at 2.4 MS/s 1.2 samples, so pulses
straddle samples and the receiver's ~2 MHz filter smears them into their
neighbours. Every stage below is whole-array numpy over a block's candidates
(`Demodulator` has the details and the knobs)::

    |IQ| ──► prefilter (pulse windows vs quiet gaps vs noise, local maxima)
         ──► preamble fit: pulse-model templates at 1/8-sample phases; drop
             preambles that leave too much energy unexplained
         ──► occupancy: a pulse in >= 70 % of the first 56 bit periods
         ──► fast slice at the fitted phase (matched filter + decision feedback,
             slicer.PulseModel.slice) ──► CRC-24 residuals (byte tables) ──► classify
         ──► not CLEAN and not settled (every bit clear): sequence detection
             (max-log-MAP on a 2-state trellis, slicer.PulseModel.sequence_slice);
             weak candidates first get a data-aided timing search; those still
             not clean and whose bits the pulse model explains (data-aided fit)
             a second pass at a data-aided phase and amplitude, coherent when
             the IQ is at hand (in-phase part about the frame's own tracked
             carrier, exact likelihood of the OSD candidates, DF17/18 and DF11);
             rows whose address field is within a few bits of a confirmed
             aircraft's get a third, address-aided coherent pass (that DF17/18
             address fixed in the trellis, judged by likelihood only);
             then soft repair (order-2 ordered-statistics decoding over the CRC
             code, soft_decode.py, one call per batch), each repair trusted only
             by its cost margins

`classify` (the receiver's, or `crc_classifier`) decides what counts as CLEAN
(done), REPAIRABLE (usable, keep looking) or REJECT, so the address policy of
`hardware.modes.frame_check` steers the search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from hardware.modes import native as native_kernels
from hardware.modes.candidates import Candidates
from hardware.modes.crc_rows import (
    LONG_BITS,
    SHORT_BITS,
    frame_residuals,
    mixed_residuals,
    one_bit_away,
)
from hardware.modes.noise import estimate_noise_floor
from hardware.modes.slicer import PulseModel, SliceResult, pulse_model
from hardware.modes.soft_decode import OsdResult, osd_candidates
from hardware.modes.windows import gather_windows

__all__ = ["Demodulator", "demodulate"]

PREAMBLE_PULSES_US = (0.0, 1.0, 3.5, 4.5)
PULSE_US = 0.5
DATA_START_US = 8.0
BIT_US = 1.0
SUPPORTED_RATES_HZ = (2_000_000, 2_400_000)


F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
IDX = npt.NDArray[np.intp]


# --- helpers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Coherent:
    """What the coherent second pass leaves for the likelihood rescoring, per row:
    the in-phase part of its window (rows, window_len), the pulse amplitude in it,
    its phase step, mean noise magnitude and the sequence detector's bits."""

    inphase: F32
    amp: F32
    step: IDX
    noise_mean: F32
    bits: U8

    def extended(self, rows: IDX) -> _Coherent:
        """These rows followed by copies of `rows`."""
        return _Coherent(
            *(
                np.concatenate([v, v[rows]])
                for v in (self.inphase, self.amp, self.step, self.noise_mean, self.bits)
            )
        )


class Screen(NamedTuple):
    """The compiled preamble screen's results (`Demodulator._screen_compiled`)."""

    top: F32
    """Per row, the best template correlation about the noise mean."""
    energy: F32
    """Per row, the window's energy about the noise mean."""
    kept: I64
    """The plausible rows, in order."""
    best: I64
    """Per kept row, its best hypothesis (`PulseModel.preamble_pick`)."""
    picked: F32
    """Per kept row, that hypothesis' correlation."""


@dataclass(frozen=True, slots=True)
class _DataFit:
    """Demodulator._data_fit per row: best phase hypothesis, data-aided pulse
    amplitude and magnitude window there, misfit per data sample / noise mean^2."""

    hyp: npt.NDArray[np.intp]
    amp: F32
    windows: F32
    misfit: F32

    def take(self, which: npt.NDArray[np.bool_]) -> _DataFit:
        """The rows `which` selects."""
        return _DataFit(self.hyp[which], self.amp[which], self.windows[which], self.misfit[which])


_QUICK_BITS = 32  # bits `Demodulator._quick_occupancy` counts first
_NEIGHBOURS = np.arange(3, dtype=np.int64)  # a sample's neighbours in `total` (see below)


def _member(values: I64, pool: I64) -> npt.NDArray[np.bool_]:
    """Whether each of `values` occurs in `pool` (np.isin for small arrays,
    without its fixed cost of ~70 us a call)."""
    if pool.size == 0 or values.size == 0:
        return np.zeros(values.size, bool)
    ordered = np.sort(pool)
    at = np.minimum(np.searchsorted(ordered, values), ordered.size - 1)
    return np.asarray(ordered[at] == values)


def _best_per_preamble(preamble: I64, cls: npt.NDArray[np.int8]) -> IDX:
    """Per preamble the first row (in row order) of its best class, CLEAN over
    REPAIRABLE, none for REJECT; in preamble order."""
    picked = np.flatnonzero(cls > REJECT)
    if picked.size == 0:
        return picked
    # Sort by preamble, then class (best first), then row; keep each preamble's first.
    order = picked[np.lexsort((picked, -cls[picked], preamble[picked]))]
    ordered = preamble[order]
    first = np.empty(order.size, bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return order[first]


_MEAN_WEIGHTS = np.zeros((LONG_BITS, 2), np.float32)
_MEAN_WEIGHTS[:, 0] = 1.0 / LONG_BITS
_MEAN_WEIGHTS[:SHORT_BITS, 1] = 1.0 / SHORT_BITS


def _frame_min(confidence: F32, nbits: npt.NDArray[np.int16]) -> F32:
    """Each row's least confident bit within its frame (56 or 112 bits)."""
    short_min = confidence[:, :SHORT_BITS].min(axis=1)
    long_min = np.minimum(short_min, confidence[:, SHORT_BITS:].min(axis=1))
    out: F32 = np.where(nbits == LONG_BITS, long_min, short_min)
    return out


_POPCOUNT = np.array([bin(v).count("1") for v in range(256)], np.uint8)


def _popcount24(values: U32) -> npt.NDArray[np.uint8]:
    """Set bits of each value's low 24 bits."""
    b = np.ascontiguousarray(values, "<u4").view(np.uint8).reshape(*values.shape, 4)
    out: npt.NDArray[np.uint8] = _POPCOUNT[b[..., 0]] + _POPCOUNT[b[..., 1]] + _POPCOUNT[b[..., 2]]
    return out


_FIELD_WEIGHTS = (1 << np.arange(23, -1, -1)).astype(np.uint32)


def address_hypotheses(bits: U8, known: U32, max_distance: int) -> tuple[IDX, npt.NDArray[np.int8]]:
    """Rows whose decided address field (bits 8-31) lies within `max_distance`
    bits of a known address, and per such row the bits a DF17/18 from that
    address must have (-1 where free): the first bit, the address, and the DF
    where the decided one is one bit from 17 or 18 and not from both.

    Rows whose first bit reads "short" are hypotheses too: at 12 dB a misread
    first bit lost ~0.5 % of the long frames at 2.0 MS/s; a real short frame
    taken for a long one fails the likelihood checks of its repair."""
    rows = np.arange(bits.shape[0])
    if rows.size == 0 or known.size == 0:
        return rows[:0], np.zeros((0, bits.shape[1]), np.int8)
    addr = bits[:, 8:32].astype(np.uint32) @ _FIELD_WEIGHTS
    dist = _popcount24(addr[:, None] ^ known[None, :])
    nearest = dist.argmin(axis=1)
    close = dist[rows, nearest] <= max_distance
    rows, target = rows[close], known[nearest[close]]
    fixed = np.full((rows.size, bits.shape[1]), -1, np.int8)
    fixed[:, 0] = 1
    fixed[:, 8:32] = (target[:, None] >> np.arange(23, -1, -1, dtype=np.uint32)) & 1
    df = bits[rows, :5].astype(np.uint32) @ _FIELD_WEIGHTS[-5:]
    to17, to18 = _popcount24(df ^ np.uint32(17)), _popcount24(df ^ np.uint32(18))
    for value, mine, other in ((17, to17, to18), (18, to18, to17)):
        sure = (mine <= 1) & (other > 1)
        fixed[sure, :5] = (value >> np.arange(4, -1, -1)) & 1
    return rows, fixed


# --- the demodulator -----------------------------------------------------------------

Classifier = Callable[[Candidates], npt.NDArray[np.int8]]
KnownAddresses = Callable[[], U32]
"""The addresses (sorted uint32) a repaired frame may come from, as of the call."""
IqPairs = Callable[[I64], npt.NDArray[np.uint16]]
"""Reads the IQ of the samples at the given indices of `mag`, as little-endian u16
pairs (I in the low byte): what `Demodulator.slice` needs of the IQ of a block."""
"""Rates rows: 2 = CRC clean, 1 = usable after repair or with a weaker check, 0 = reject."""

CLEAN, REPAIRABLE, REJECT = 2, 1, 0
ADSB_DFS = (11, 17, 18)
KNOWN_DFS = (0, 4, 5, 11, 16, 17, 18, 20, 21)
_ADSB_DF = np.isin(np.arange(32), ADSB_DFS)
_KNOWN_DF = np.isin(np.arange(32), KNOWN_DFS)


def crc_classifier(rows: Candidates) -> npt.NDArray[np.int8]:
    """Default `Classifier`: DF17/18 with residual 0 and DF11 with an IID residual
    (< 0x80) are clean; DF11/17/18 one bit away from clean are repairable. Rows
    changed by the soft repair are rejected (without an address book nothing
    vouches for them)."""
    out = np.zeros(len(rows), np.int8)
    adsb = _ADSB_DF[rows.df] & (rows.flipped == 0)
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


class Demodulator:
    """Preamble search and sub-sample matched-filter slicer for one sample rate.

    Stateless apart from precomputed tables; `hardware.modes.receiver.Receiver`
    carries state across blocks. Positions are in samples of the magnitude array,
    levels in magnitude (ADC) units; `noise_floor` arguments are the mean noise
    magnitude (`estimate_noise_floor`).

    Stages (each whole-array over the block's candidates; where the compiled
    kernels are built, `native`, the prefilter and the plausibility screen run in
    them, and so do the pulse model's filter, occupancy count, decisions and
    sequence detector, `slicer.PulseModel.using_kernels`):

    1. `find_preambles`: window sums over the four pulses against the quiet gaps
       (`quiet_to_pulse`, `weakest_to_pulse`) and the noise (`pulse_to_noise`,
       `pulse_floor`), local maxima of the pulse energy; in `chunk_samples`
       pieces, on quiet pieces (`sparse_fraction`) at the loud samples only.
    2. `fit_preambles`: least squares against the pulse model at phases within
       `PulseModel.phase_range` of the hit in 1/`steps_per_sample` steps; rows
       whose best fit leaves too much energy unexplained (`unexplained_to_fit`,
       `unexplained_to_noise`) are dropped.
    3. Occupancy: at least `min_occupancy` of the first 56 bit periods hold a pulse.
    4. Fast slice at the fitted phase (matched filter + decision feedback).
    5. Rows that do not classify CLEAN (and, when strong, read a known DF,
       have a bit decided with confidence below `settled_confidence` and a
       preamble-fit amplitude at least `preamble_to_data` x their data's):
       sequence detection (max-log-MAP, `slicer.PulseModel.sequence_slice`).
       Weak rows (pulse amplitude below `strong_to_noise` x the noise mean)
       first get a data-aided timing search over +-`timing_steps` phase steps;
       still unresolved, a second pass at the phase (+-`refine_steps`) and
       amplitude the decided bits fit best, coherent when `slice` has the IQ
       (`_refine`, `_rescore`), and where the decided address field lies
       within `aid_distance` bits of a known address (`slice`'s `known`), once
       more with that address and DF17/18 fixed (`address_hypotheses`);
       afterwards soft repair towards a clean
       DF11/17/18 (order-2 OSD, `chase_bits` extra flip positions; `_chase`).
       Weak rows whose decided bits the pulse model does not explain at any of
       those phases (misfit per data sample above `frame_misfit` x the squared
       noise mean: collisions, frames cut short) get neither.
    """

    def __init__(
        self,
        sample_rate_hz: int = 2_000_000,
        *,
        steps_per_sample: int = 8,
        blur_samples: float = 0.3,
        pulse_to_noise: float = 1.55,
        quiet_to_pulse: float = 0.4,
        weakest_to_pulse: float = 0.0,
        pulse_floor: float = 0.7,
        unexplained_to_fit: float = 0.5,
        unexplained_to_noise: float = 1.0,
        chase_bits: int = 20,
        repair_cost: float = 1.5,
        repair_gap: float = 0.5,
        refine_steps: int = 4,
        coherent_passes: int = 1,
        rescore_candidates: int = 8,
        repair_llr_gap: float = 5.0,
        straddle_llr_gap: float = 8.0,
        repair_llr_cost: float = 12.0,
        repair_misfit: float = 5.0,
        frame_misfit: float = 3.0,
        timing_steps: int = 2,
        strong_to_noise: float = 8.0,
        min_occupancy: float = 0.7,
        settled_confidence: float = 0.25,
        preamble_to_data: float = 0.3,
        aid_distance: int = 6,
        chunk_samples: int = 65_536,
        sparse_fraction: float = 0.03,
        native: bool | None = None,
    ) -> None:
        if sample_rate_hz not in SUPPORTED_RATES_HZ:
            raise ValueError(f"sample rate {sample_rate_hz} Hz not in {SUPPORTED_RATES_HZ}")
        if native and not native_kernels.available():
            raise RuntimeError(f"native kernels asked for: {native_kernels.UNAVAILABLE_REASON}")
        self.native = native_kernels.available() if native is None else native
        """Whether the hot stages run in the compiled kernels (`native`):
        None uses them where they are built."""
        self.sample_rate_hz = sample_rate_hz
        self.pulse_to_noise = pulse_to_noise
        self.quiet_to_pulse = quiet_to_pulse
        self.weakest_to_pulse = weakest_to_pulse
        self.pulse_floor = pulse_floor
        self.unexplained_to_fit = unexplained_to_fit
        self.unexplained_to_noise = unexplained_to_noise
        self.chase_bits = chase_bits
        self.repair_cost = repair_cost
        self.repair_gap = repair_gap
        self.refine_steps = refine_steps
        self.coherent_passes = coherent_passes
        self.rescore_candidates = rescore_candidates
        self.repair_llr_gap = repair_llr_gap
        self.straddle_llr_gap = straddle_llr_gap
        self.repair_llr_cost = repair_llr_cost
        self.repair_misfit = repair_misfit
        self.frame_misfit = frame_misfit
        self.timing_steps = timing_steps
        self.strong_to_noise = strong_to_noise
        self.min_occupancy = min_occupancy
        self.settled_confidence = settled_confidence
        self.preamble_to_data = preamble_to_data
        self.aid_distance = aid_distance
        # The occupancy test passes `needed` of the first 56 bits or more; a row can
        # still reach that with `_QUICK_BITS` counted if it holds needed - (56 -
        # _QUICK_BITS) of them, less one for rounding (`_quick_occupancy`).
        needed = next(
            h
            for h in range(SHORT_BITS + 1)
            if np.float32(h) / np.float32(SHORT_BITS) >= np.float32(min_occupancy)
        )
        self._occupancy_need = needed
        self._quick_need = needed - (SHORT_BITS - _QUICK_BITS) - 1
        model = pulse_model(sample_rate_hz, steps_per_sample, blur_samples)
        self.model: PulseModel = model.using_kernels() if self.native else model
        sps = sample_rate_hz / 1e6  # samples per microsecond

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
        self.sparse_fraction = sparse_fraction
        size = chunk_samples + self.prefilter_span + 2
        self._scratch = [np.empty(size, np.float32) for _ in range(5)]
        pair_step = self._pulse_offsets[1] - self._pulse_offsets[0]
        # The prefilter sums and tests the pulses in two pairs of the same shape.
        assert self._pulse_offsets[3] - self._pulse_offsets[2] == pair_step
        self._quiet_pair = (
            len(self._quiet_offsets) == 3
            and self._quiet_offsets[2] - self._quiet_offsets[1] == pair_step
        )
        # Columns of `win` the sparse prefilter reads (offset from the chunk offset):
        # the pulse windows, then the quiet ones (the pair-summed ones as two).
        quiet_windows = (
            [self._quiet_offsets[0], self._quiet_offsets[1], self._quiet_offsets[1] + pair_step]
            if self._quiet_pair
            else self._quiet_offsets
        )
        self._sparse_columns = np.array([*self._pulse_offsets, *quiet_windows], np.int64) + 1
        self._found = np.empty(chunk_samples, np.int64)  # the compiled prefilter's output
        # The compiled preamble screen's templates: (samples, hypotheses), and their sums.
        self._screen_unit_t = np.ascontiguousarray(self.model._pre_unit[:-1].T)
        self._screen_unit_sum = np.ascontiguousarray(self.model._pre_unit_sum[:, 0])
        self._scratch_bool = np.empty(size, bool)
        self._scratch_bool2 = np.empty(size, bool)
        self._scratch_bool3 = np.empty(size, bool)

        # Slicing windows start model.lookback samples before the slice origin,
        # which is at most ceil(phase_range) samples before the preamble.
        self.lookback = self.model.lookback + math.ceil(self.model.phase_range)
        self.span = self.model.window_len + math.ceil(self.model.phase_range)
        """Samples needed from a preamble start to slice a long frame at any phase."""
        self._short_frame_samples = int((DATA_START_US + SHORT_BITS * BIT_US) * sps)
        self.phases = self.model.preamble_phases
        # Phase steps at which a 2.0 MS/s frame's pulses straddle two samples (within
        # 0.2 sample); at 2.4 MS/s the straddle changes from bit to bit.
        frac = np.arange(self.model.steps) / self.model.steps
        self._straddles = (np.minimum(frac, 1.0 - frac) <= 0.2) & (self.model.period_bits == 1)
        # Per preamble-phase hypothesis: whole samples, phase step and phase.
        whole = np.floor(self.phases + 1e-9).astype(np.int64)
        self._hyp_whole = whole
        self._hyp_step = np.rint((self.phases - whole) * self.model.steps).astype(np.intp)
        self._hyp_phase = self.phases.astype(np.float32)

    @property
    def prefilter_span(self) -> int:
        """Samples the prefilter reads from the preamble start."""
        return max(self._pulse_offsets + self._quiet_offsets) + self._win + 1

    # --- stage 1: prefilter ------------------------------------------------------------

    def find_preambles(self, mag: F32, start: int, stop: int, noise_floor: float) -> I64:
        """Candidate preamble starts n with start <= n < stop (sorted).

        Only starts with ``n >= lookback`` and ``n + span <= len(mag)`` are returned.
        The result for a given n depends only on samples near n, never on where
        `start` and `stop` cut the stream.
        """
        start = max(start, self.lookback)
        stop = min(stop, mag.size - self.span)
        if stop <= start:
            return np.zeros(0, np.int64)
        parts = [
            self._prefilter_chunk(mag, c0, min(c0 + self._chunk, stop), noise_floor) + c0
            for c0 in range(start, stop, self._chunk)
        ]
        found = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return found.astype(np.int64, copy=False)

    def _prefilter_chunk(self, mag: F32, start: int, stop: int, noise_mean: float) -> I64:
        """Offsets from `start` of the samples in [start, stop) that pass the preamble
        prefilter. Works in preallocated cache-sized scratch arrays: fresh large
        temporaries would cost more in page faults than the arithmetic.

        The tests, with windows w (sums over `_win` samples), mu_w the noise mean of
        a window and energies counted above it: the pulse energy is a local maximum
        and above `pulse_to_noise` x the noise; the mean quiet window is below
        `quiet_to_pulse` x the mean pulse window; the weakest pulse window is above
        `weakest_to_pulse` x the mean pulse window, and with `weakest_to_pulse` 0
        above `pulse_floor` x the noise. Each test is folded into one linear
        comparison of the raw sums.

        The defaults trade CPU for weak frames. `pulse_floor` 0.7, not 1: at 12 dB
        a pulse straddling two samples leaves a window below the noise mean in
        ~1 % of windows, which lost 4.5 % of the frames at 2.0 MS/s (1.3 % at
        0.7). On noise alone it cost nothing measurable (4 M samples); on
        modes1.bin it passes 55 % more candidates, decodes 1 % more
        messages (343.6 per copy, not 340.4) and costs ~7.5 % more CPU (in one
        process, alternating), mostly in the preamble fit of the extra
        candidates (~70 ns each). Noise alone costs what `pulse_to_noise` lets
        through: with the noise mean estimated without bias
        (`clipped_noise_floor`), 1.5 ran at ~37x real time on noise, 1.55 at ~53x
        and 1.6 at ~64x, for 95.5, 95.4 and 95.1 % at 12 dB and 59.2, 57.3 and
        54.5 % at 10 dB (16 seeds each): 1.55 keeps the receiver above the C
        reference's speed on quiet air and every weak-signal figure above what
        1.5 gave with the biased quartile estimate.

        Every test is a whole-array pass, unless at most `sparse_fraction` of the
        chunk's samples pass the pulse energy threshold: then the other tests run at
        those samples only (`_prefilter_sparse`, the same arithmetic). Noise alone
        passes the threshold at ~0.05 % of the samples, and there the survivors' path
        takes ~2/3 of the whole-array path's CPU (~1.6 instead of 2.4 ns a sample);
        above ~3-4 % it is the slower one (dense air: modes1.bin passes 72 %, 12 dB
        synthetic frames 400 us apart 29 %, where it costs 2.2 and 5 times as much),
        hence the default 0.03. The order of the whole-array passes does not matter
        measurably.
        """
        width = self._win
        mu_w = noise_mean * width
        if self.native and not self.weakest_to_pulse:
            return self._prefilter_compiled(mag, start, stop, mu_w)
        length = stop - start
        ext = length + 2  # pulse energy also at start - 1 and stop, for local maxima
        po, qo = self._pulse_offsets, self._quiet_offsets
        npulse = len(po)
        w0 = start - 1
        n_win = ext + max(po + qo)
        win, pair, total, quiet = (a[:n_win] for a in self._scratch[:4])
        np.add(mag[w0 : w0 + n_win], mag[w0 + 1 : w0 + 1 + n_win], out=win)
        for j in range(2, width):
            win += mag[w0 + j : w0 + j + n_win]
        # Pulses 1, 2 and 3, 4 are the same distance apart (1 us): sum in pairs.
        gap = po[2] - po[0]
        # pair sums for the total, and for the last two quiet windows (see below)
        span = max(ext + gap, qo[1] + 1 + length) if self._quiet_pair else ext + gap
        np.add(win[po[0] : po[0] + span], win[po[1] : po[1] + span], out=pair[:span])
        total = total[:ext]
        np.add(pair[:ext], pair[gap : gap + ext], out=total)
        centre = total[1 : 1 + length]
        passed = self._scratch_bool[:length]
        tmp = self._scratch_bool2[:length]
        scratch = self._scratch[4][:length]
        # (total - n mu_w) > n (pulse_to_noise - 1) mu_w. (np.maximum with a scalar,
        # which would fold this into the test below, has no SIMD loop: 4x slower.)
        np.greater(centre, np.float32(npulse * self.pulse_to_noise * mu_w), out=passed)
        if not self.weakest_to_pulse and (
            np.count_nonzero(passed) <= self.sparse_fraction * length
        ):
            return self._prefilter_sparse(passed.nonzero()[0], win, total, mu_w)
        # Local maximum of the pulse energy (ties go to the earlier sample).
        np.greater_equal(centre, total[:length], out=tmp)
        passed &= tmp
        np.greater(centre, total[2 : 2 + length], out=tmp)
        passed &= tmp
        # (low - mu_w) > weakest_to_pulse (total - n mu_w) / n, low the weakest
        # pulse window. With weakest_to_pulse 0 this is "every pulse window above
        # pulse_floor x the noise": one comparison per window and byte-wide ANDs
        # (in pairs).
        slope = self.weakest_to_pulse / npulse
        if slope:
            low = quiet[:length]
            np.minimum(
                win[po[0] + 1 : po[0] + 1 + length], win[po[1] + 1 : po[1] + 1 + length], out=low
            )
            for o in po[2:]:
                np.minimum(low, win[o + 1 : o + 1 + length], out=low)
            np.multiply(centre, np.float32(slope), out=scratch)
            scratch += np.float32(mu_w - slope * npulse * mu_w)
            np.greater(low, scratch, out=tmp)
            passed &= tmp
        else:
            above = self._scratch_bool3[:n_win]
            np.greater(win, np.float32(self.pulse_floor * mu_w), out=above)
            both = self._scratch_bool2[: length + gap]
            np.logical_and(
                above[po[0] + 1 : po[0] + 1 + length + gap],
                above[po[1] + 1 : po[1] + 1 + length + gap],
                out=both,
            )
            passed &= both[:length]
            passed &= both[gap : gap + length]
        # (quiet - m mu_w) / m < quiet_to_pulse (total - n mu_w) / n
        quiet = quiet[:length]
        if self._quiet_pair:  # the last two quiet windows are a pulse pair apart
            np.add(
                win[qo[0] + 1 : qo[0] + 1 + length], pair[qo[1] + 1 : qo[1] + 1 + length], out=quiet
            )
        else:
            np.add(
                win[qo[0] + 1 : qo[0] + 1 + length], win[qo[1] + 1 : qo[1] + 1 + length], out=quiet
            )
            for q in qo[2:]:
                quiet += win[q + 1 : q + 1 + length]
        quiet_slope, quiet_intercept = self._quiet_line(mu_w)
        # The tests that read the pulse energy itself are done: scale it in place
        # (one scratch array fewer in cache).
        centre *= quiet_slope
        centre += quiet_intercept
        np.less(quiet, centre, out=tmp)
        passed &= tmp
        found: I64 = passed.nonzero()[0]  # np.flatnonzero without its ravel call
        return found

    def _prefilter_sparse(self, at: I64, win: F32, total: F32, mu_w: float) -> I64:
        """The tests of `_prefilter_chunk` after its energy threshold, evaluated only
        at the chunk offsets `at` that passed it, with the same float32 arithmetic
        (the same candidates); `win` and `total` are that chunk's sums. A dozen
        numpy calls: on noise the survivors are a few dozen per chunk, and the
        calls, not the arithmetic, are the cost."""
        if at.size == 0:
            return at
        npulse = len(self._pulse_offsets)
        # One row per window or neighbour, one column per survivor.
        w = win.take(self._sparse_columns[:, None] + at)  # pulse windows, then quiet ones
        t = total.take(_NEIGHBOURS[:, None] + at)  # pulse energy at i - 1, i, i + 1
        centre = t[1]
        keep = centre >= t[0]
        keep &= centre > t[2]
        keep &= np.logical_and.reduce(w[:npulse] > np.float32(self.pulse_floor * mu_w), axis=0)
        if self._quiet_pair:  # as `pair` holds it: window, then window one pulse on
            quiet = w[npulse] + (w[npulse + 1] + w[npulse + 2])
        else:
            quiet = w[npulse] + w[npulse + 1]
            for j in range(npulse + 2, w.shape[0]):
                quiet += w[j]
        quiet_slope, quiet_intercept = self._quiet_line(mu_w)
        centre = centre * quiet_slope
        centre += quiet_intercept
        keep &= quiet < centre
        found: I64 = at[keep]
        return found

    def _prefilter_compiled(self, mag: F32, start: int, stop: int, mu_w: float) -> I64:
        """`_prefilter_chunk` in the compiled kernel (`native`): the same tests in the
        same float32 arithmetic, all of them in one pass over cache-sized blocks."""
        found = self._found
        count = native_kernels.KERNELS.prefilter(
            mag,
            start,
            stop,
            found,
            self._win,
            self._pulse_offsets,
            self._quiet_offsets,
            self._quiet_pair,
            np.float32(len(self._pulse_offsets) * self.pulse_to_noise * mu_w),
            np.float32(self.pulse_floor * mu_w),
            *self._quiet_line(mu_w),
        )
        return found[:count] - start

    def _quiet_line(self, mu_w: float) -> tuple[np.float32, np.float32]:
        """Slope and intercept of the quiet test's bound on the summed quiet windows,
        linear in the pulse energy: (quiet - m mu_w) / m < quiet_to_pulse (total -
        n mu_w) / n. One computation for both prefilter paths, so that they compare
        the same float32 numbers."""
        npulse, nquiet = len(self._pulse_offsets), len(self._quiet_offsets)
        slope = self.quiet_to_pulse * nquiet / npulse
        return np.float32(slope), np.float32(nquiet * mu_w - slope * npulse * mu_w)

    # --- stages 2-4 --------------------------------------------------------------------

    def fit_preambles(
        self, mag: F32, preambles: I64, noise_floor: F32, *, plausible_only: bool = False
    ) -> tuple[npt.NDArray[np.intp], F32, npt.NDArray[np.bool_]]:
        """Best phase hypothesis, fitted amplitude and plausibility of each
        candidate's preamble (see `slicer.PulseModel.preamble_fit`).

        Plausible means the energy the best template leaves unexplained is below
        `unexplained_to_fit` x the explained energy plus `unexplained_to_noise` x
        the noise energy expected over the window: a frame's own data bits seen as
        a preamble leave whole pulses in the gaps.

        `plausible_only`: the hypothesis and amplitude are found only for the
        plausible rows (0 elsewhere), whose test needs only the largest
        correlation of each row: on modes1.bin 93 % of the candidates are not
        plausible, and the argmax over their hypotheses was ~15 % of the fit.
        """
        model = self.model
        origins = preambles - model.lookback
        if not plausible_only:
            win = gather_windows(mag, origins, model.preamble_len)
            best, explained, amp, energy = model.preamble_fit(win, noise_floor)
            return best, amp, self._plausible(explained, energy, noise_floor)
        if self.native:
            screen = self._screen_compiled(mag, origins, noise_floor)
            kept, kept_best, kept_top = screen.kept, screen.best, screen.picked
        else:
            win = gather_windows(mag, origins, model.preamble_len)
            corr, energy = model.preamble_correlations(win, noise_floor)
            top = np.maximum.reduce(corr, axis=0)  # the best fit's correlation
            explained = top * top
            explained[top <= 0] = 0.0
            kept = np.flatnonzero(self._plausible(explained, energy, noise_floor))
            kept_best, kept_top = model.preamble_pick(corr[:, kept])
        plausible = np.zeros(preambles.size, bool)
        plausible[kept] = True
        best = np.zeros(preambles.size, np.intp)
        amp = np.zeros(preambles.size, np.float32)
        best[kept] = kept_best
        amp[kept] = kept_top * model._pre_inv_norm[kept_best]
        return best, amp, plausible

    def _screen_compiled(self, mag: F32, origins: I64, noise_floor: F32) -> Screen:
        """`fit_preambles`' screen in the compiled kernel (`native`): per row the
        best template correlation and the window's energy about the noise mean,
        the plausible rows (`_plausible`'s test, the same float32 operations),
        and for those `PulseModel.preamble_pick`'s hypothesis and correlation.
        One pass over each window, where numpy gathers the windows and multiplies
        them by every template; the same sums to float32 rounding (BLAS adds in
        its own order)."""
        rows = origins.size
        top = np.empty(rows, np.float32)
        energy = np.empty(rows, np.float32)
        kept = np.empty(rows, np.int64)
        best = np.empty(rows, np.int64)
        picked = np.empty(rows, np.float32)
        count = native_kernels.KERNELS.preamble_screen(
            mag,
            np.ascontiguousarray(origins, np.int64),
            np.ascontiguousarray(noise_floor, np.float32),
            self._screen_unit_t,
            self._screen_unit_sum,
            top,
            energy,
            self.model.preamble_len,
            np.float32(self.unexplained_to_fit),
            np.float32(self.unexplained_to_noise * self.model.preamble_len),
            kept,
            best,
            picked,
        )
        return Screen(top, energy, kept[:count], best[:count], picked[:count])

    def _plausible(self, explained: F32, energy: F32, noise_floor: F32) -> npt.NDArray[np.bool_]:
        """`fit_preambles`' plausibility test of each row."""
        allowance = np.float32(self.unexplained_to_noise * self.model.preamble_len) * noise_floor**2
        limit = np.float32(self.unexplained_to_fit) * explained + allowance
        plausible = energy - explained <= limit
        return np.asarray(plausible & (explained > 0))

    def _hypothesis(self, preambles: I64, hyp: npt.NDArray[np.intp]) -> tuple[I64, IDX, F32]:
        """Slice origin (integer sample), phase step and phase (samples) of each
        row at preamble-phase hypothesis `hyp`."""
        at = np.clip(hyp, 0, self.phases.size - 1)
        return preambles + self._hyp_whole[at], self._hyp_step[at], self._hyp_phase[at]

    def _rows(
        self,
        preambles: I64,
        phase: F32,
        bits: npt.NDArray[np.uint8],
        confidence: F32,
        amplitude: F32,
        flipped: U8 | None = None,
    ) -> Candidates:
        msg = np.packbits(bits, axis=1)
        df = (msg[:, 0] >> 3).astype(np.uint8)
        long_rows = df >= 16
        nbits = np.where(long_rows, LONG_BITS, SHORT_BITS).astype(np.int16)
        residual = mixed_residuals(msg, long_rows, compiled=self.native)
        means = np.empty((confidence.shape[0], 2), np.float32)  # over 112 and 56 bits
        for lo in range(0, confidence.shape[0], 1024):  # single-threaded BLAS sizes
            np.matmul(confidence[lo : lo + 1024], _MEAN_WEIGHTS, out=means[lo : lo + 1024])
        margin = np.where(long_rows, means[:, 0], means[:, 1])
        if flipped is None:
            flipped = np.zeros(preambles.size, np.uint8)
        return Candidates(preambles, phase, msg, df, nbits, residual, margin, amplitude, flipped)

    def slice(
        self,
        mag: F32,
        preambles: I64,
        classify: Classifier = crc_classifier,
        noise_floor: float | F32 = 0.0,
        iq: U8 | IqPairs | None = None,
        known: KnownAddresses | None = None,
    ) -> Candidates:
        """Fit, slice and check candidate preambles; one row per preamble whose frame
        `classify` accepted (CLEAN preferred over REPAIRABLE), in preamble order.

        `noise_floor` is the mean noise magnitude, one for all or one per preamble.
        `iq`, when given, is the u8 interleaved IQ that `mag` was made from (sample
        k at iq[2k], iq[2k + 1]), or an `IqPairs` function that reads it (called
        only for weak frames to detect coherently): weak frames are then also
        detected coherently. `known` returns the addresses confirmed so far; with
        it and `iq`, weak DF17/18 rows near one of them get the address-aided pass.
        """
        if preambles.size == 0:
            return Candidates.empty()
        model = self.model
        noise = np.broadcast_to(np.asarray(noise_floor, np.float32), preambles.shape)
        best, pre_amp, keep = self.fit_preambles(mag, preambles, noise, plausible_only=True)
        kept = np.flatnonzero(keep)  # one nonzero for the four selections
        preambles, best, noise, pre_amp = preambles[kept], best[kept], noise[kept], pre_amp[kept]
        if preambles.size == 0:
            return Candidates.empty()
        # Stage 3: only pulse trains with a pulse in (nearly) every bit period are
        # worth slicing; most stray candidates (Mode A/C replies, echoes) are not.
        origin, step, phase = self._hypothesis(preambles, best)
        hopeful = self._quick_occupancy(mag, origin, step, pre_amp, noise)
        if hopeful is not None:
            preambles, best, noise, pre_amp = (
                preambles[hopeful], best[hopeful], noise[hopeful], pre_amp[hopeful]
            )
            origin, step, phase = origin[hopeful], step[hopeful], phase[hopeful]
            if preambles.size == 0:
                return Candidates.empty()
        # `PulseModel.occupancy` >= min_occupancy, counted in whole bits, each
        # row's window read where it lies in `mag`
        held = model.held_bits(mag, step, pre_amp, noise, SHORT_BITS, at=origin - model.lookback)
        full = held >= self._occupancy_need
        if not full.all():
            kept = np.flatnonzero(full)
            preambles, best, noise = preambles[kept], best[kept], noise[kept]
            pre_amp = pre_amp[kept]
            origin, step, phase = origin[kept], step[kept], phase[kept]
            if preambles.size == 0:
                return Candidates.empty()
        windows = gather_windows(mag, origin - model.lookback, model.window_len)
        # Stage 4: fast slice at the fitted phase.
        fast = model.slice(windows, step)
        level = fast.amplitude * model.peak[step]
        rows = self._rows(preambles, phase, fast.bits, fast.confidence, level)
        cls = classify(rows)
        # Sequence detection for strong candidates only where the fast slice read a
        # known DF: at high SNR it almost always does for real frames, and rarely
        # for stray candidates. Weak candidates all get it: their DF bits are as
        # unreliable as the rest. REPAIRABLE rows get it too (a clean reading
        # beats a repair); their fast row stays the fallback.
        weak = fast.amplitude < np.float32(self.strong_to_noise) * noise
        # Strong rows whose every bit the fast slice decided with a clear margin
        # are settled: the sequence detector reads them the same.
        settled = ~weak & (_frame_min(fast.confidence, rows.nbits) > self.settled_confidence)
        # Strong rows whose preamble is far weaker than their data bits (the
        # preamble fit's amplitude below `preamble_to_data` x the fast slice's)
        # are no frame of their own but pulses of a stronger one read out of
        # step. On modes1.bin they were half of the rows the sequence detector
        # got (fit/data < 0.3) and it made none of them clean; the rows it made
        # clean there and on dense synthetic traffic had 0.6 or more (but one
        # at 0.04, whose frame another row delivered).
        offset = ~weak & (pre_amp < np.float32(self.preamble_to_data) * fast.amplitude)
        pending = np.flatnonzero((cls != CLEAN) & (_KNOWN_DF[rows.df] | weak) & ~settled & ~offset)
        pending = pending[~self._inside(preambles, preambles[cls == CLEAN], pending)]
        if pending.size:
            more, more_cls = self._sequence_stage(
                mag,
                preambles[pending],
                best[pending],
                step[pending],
                phase[pending],
                windows[pending],
                SliceResult(
                    fast.bits[pending],
                    fast.confidence[pending],
                    fast.amplitude[pending],
                    fast.timing[pending],
                ),
                noise[pending],
                classify,
                weak[pending],
                iq,
                known,
            )
            rows = Candidates.concat([rows, more])
            cls = np.concatenate([cls, more_cls])
        return rows.take(_best_per_preamble(rows.preamble, cls))

    def _quick_occupancy(
        self, mag: F32, origin: I64, step: IDX, amplitude: F32, noise: F32
    ) -> IDX | None:
        """Rows that may still pass the occupancy test, when some cannot (else None).

        Weak rows (fitted preamble amplitude below `strong_to_noise` x the noise
        mean) are counted first over the first `_QUICK_BITS` bit periods only,
        from a short window: a row with fewer pulses there than the whole test
        needs, less the bits left, cannot pass it. On quiet air nearly every
        candidate is noise that the preamble fit finds plausible, and this
        halves what the occupancy test costs them; strong rows (a busy
        recording's aircraft) go straight to the whole test. One bit of margin:
        the short count is the whole count's first bits (each bit is decided on
        its own), but only as long as numpy sums the same way at both lengths.
        """
        weak = np.flatnonzero(amplitude < np.float32(self.strong_to_noise) * noise)
        if weak.size == 0:
            return None
        model = self.model
        at = origin[weak] - model.lookback
        held = model.held_bits(mag, step[weak], amplitude[weak], noise[weak], _QUICK_BITS, at=at)
        hopeless = held < self._quick_need
        if not hopeless.any():
            return None
        keep = np.ones(origin.size, bool)
        keep[weak[hopeless]] = False
        return np.flatnonzero(keep)

    def _sequence_stage(
        self,
        mag: F32,
        preambles: I64,
        best: npt.NDArray[np.intp],
        step: IDX,
        phase: F32,
        windows: F32,
        fast: SliceResult,
        noise_mean: F32,
        classify: Classifier,
        weak: npt.NDArray[np.bool_],
        iq: U8 | IqPairs | None = None,
        known: KnownAddresses | None = None,
    ) -> tuple[Candidates, npt.NDArray[np.int8]]:
        """Sequence detection of every row at its fitted phase, in one batch.

        `step`, `phase`, `windows` and `fast` are the rows' fast slice at the fitted
        phase. Strong rows: their fitted phase is accurate and their errors come
        from inter-symbol interference, not noise, so sequence detection settles
        them. `weak` rows first get a data-aided timing search (the fast slice's
        matched-filter energy over +-`timing_steps` phase steps: all bits weigh in,
        not just the four preamble pulses), offer their fast slice as well, and end
        with soft repair when nothing classified CLEAN. Returns the rows tried and
        their classes (soft repairs at most REPAIRABLE), in order of preference.
        """
        model = self.model
        w = np.flatnonzero(weak)
        amplitude = fast.amplitude
        if w.size:
            search = np.arange(-self.timing_steps, self.timing_steps + 1)
            rep = np.tile(w, search.size)
            origin, shifted, _ = self._hypothesis(
                preambles[rep], best[rep] + np.repeat(search, w.size)
            )
            shifted_windows = gather_windows(mag, origin - model.lookback, model.window_len)
            timing = model.slice(
                shifted_windows, shifted, amplitude[rep], passes=0, timing=True
            ).timing
            best_w = best[w] + search[np.argmax(timing.reshape(search.size, w.size), axis=0)]
            origin, step_w, phase_w = self._hypothesis(preambles[w], best_w)
            windows_w = gather_windows(mag, origin - model.lookback, model.window_len)
            fast_w = model.slice(windows_w, step_w, amplitude[w])
            step, phase, windows = step.copy(), phase.copy(), windows.copy()
            step[w], phase[w], windows[w] = step_w, phase_w, windows_w
            bits, confidence = fast.bits.copy(), fast.confidence.copy()
            bits[w], confidence[w] = fast_w.bits, fast_w.confidence
            fast = SliceResult(bits, confidence, amplitude, fast.timing)
        seq = model.sequence_slice(windows, step, amplitude, noise_mean, fast.bits)
        level = amplitude * model.peak[step]
        # Sequence rows first (the better detector where pulses straddle samples),
        # then the weak rows' fast slices (as good where they do not).
        bits = np.concatenate([seq.bits, fast.bits[w]])
        confidence = np.concatenate([seq.confidence, fast.confidence[w]])
        rows = self._rows(
            np.concatenate([preambles, preambles[w]]),
            np.concatenate([phase, phase[w]]),
            bits,
            confidence,
            np.concatenate([level, level[w]]),
        )
        cls = classify(rows)
        unresolved = ~_member(rows.preamble, rows.preamble[cls == CLEAN])
        again = np.flatnonzero(unresolved[: preambles.size] & weak)
        coherent: _Coherent | None = None
        refined_from = len(rows)
        hopeless = preambles[:0]
        if again.size:
            # Weak rows still unresolved: the phase and amplitude their decided
            # bits fit best. Rows the pulse model does not explain there (a
            # collision, a frame cut short) get nothing more; the others a second
            # trellis pass at that phase and amplitude, whose sharper
            # reliabilities feed the soft repair.
            best_now = best.copy()
            if w.size:
                best_now[w] = best_w
            fit = self._data_fit(
                mag, preambles[again], best_now[again], seq.bits[again], noise_mean[again]
            )
            frame_like = fit.misfit <= np.float32(self.frame_misfit)
            hopeless = preambles[again[~frame_like]]
            again = again[frame_like]
        if again.size:
            refined, refined_bits, refined_conf, coherent = self._refine(
                mag,
                preambles[again],
                fit.take(frame_like),
                seq.bits[again],
                noise_mean[again],
                iq,
                known,
            )
            rows = Candidates.concat([rows, refined])
            cls = np.concatenate([cls, classify(refined)])
            bits = np.concatenate([bits, refined_bits])
            confidence = np.concatenate([confidence, refined_conf])
            unresolved = ~_member(rows.preamble, rows.preamble[cls == CLEAN])
        aided_from = refined_from + again.size  # `_refine` appends the aided rows
        later = np.ones(len(rows) - preambles.size, bool)  # weak rows' fast and refined rows
        # Address-aided rows are judged by likelihood only: their fixed bits'
        # reliabilities are not comparable with the costs `_trusted` expects.
        later[aided_from - preambles.size :] = False
        sub = np.flatnonzero(unresolved & np.concatenate([weak, later]))
        if hopeless.size:
            sub = sub[~_member(rows.preamble[sub], hopeless)]
        if self.chase_bits <= 0:
            sub = sub[:0]
        rescore = np.zeros(0, np.intp)
        if coherent is not None and self.rescore_candidates > 1:
            # Coherent rows still open: their OSD candidates are rescored by likelihood.
            at = refined_from + np.arange(coherent.step.size)
            rescore = at[unresolved[at]]
        if sub.size or rescore.size:
            repaired = self._chase(
                rows, bits, confidence, sub, rescore, coherent, refined_from, aided_from
            )
            if len(repaired):
                rows = Candidates.concat([rows, repaired])
                cls = np.concatenate([cls, np.minimum(classify(repaired), np.int8(REPAIRABLE))])
        return rows, cls

    def _data_fit(
        self,
        mag: F32,
        preambles: I64,
        best: npt.NDArray[np.intp],
        bits: U8,
        noise_mean: F32,
    ) -> _DataFit:
        """Phase hypothesis (within +-`refine_steps` of `best`) at which the
        pulse model of the rows' decided `bits` (mostly right even when the CRC
        fails) fits the magnitudes best, each at its own data-aided amplitude
        (`PulseModel.data_amplitude`), with that fit's misfit per data sample in
        units of the squared noise mean (a frame the model explains: ~0.3-1.3
        at 12 dB; noise alone is ~0.27 mu^2 per sample)."""
        model = self.model
        search = np.arange(-self.refine_steps, self.refine_steps + 1)
        n = preambles.size
        hyp = (best[None, :] + search[:, None]).reshape(-1)
        rep = np.tile(np.arange(n), search.size)
        origin, step, _ = self._hypothesis(preambles[rep], hyp)
        windows = gather_windows(mag, origin - model.lookback, model.window_len)
        amp, misfit = model.data_amplitude(windows, step, bits[rep], noise_mean[rep])
        pick = np.argmin(misfit.reshape(search.size, n), axis=0) * n + np.arange(n)
        data_samples = model.window_len - int(model._tap_origin.min())
        per_sample = misfit[pick] / (np.float32(data_samples) * noise_mean * noise_mean)
        return _DataFit(hyp[pick], amp[pick], windows[pick], per_sample.astype(np.float32))

    def _refine(
        self,
        mag: F32,
        preambles: I64,
        fit: _DataFit,
        bits: U8,
        noise_mean: F32,
        iq: U8 | IqPairs | None = None,
        known: KnownAddresses | None = None,
    ) -> tuple[Candidates, U8, F32, _Coherent | None]:
        """Sequence detection again at the phase and amplitude of `fit`
        (`_data_fit`): coherently when `iq` is given (the in-phase part about the
        frame's own carrier, `PulseModel.carrier_projection`), else on the
        magnitudes. Returns the new rows, their bits and confidences, and what
        `_rescore` needs of the coherent pass (None without IQ).
        """
        model = self.model
        origin, step, phase = self._hypothesis(preambles, fit.hyp)
        amp = fit.amp
        coherent = None
        if iq is None:
            seq = model.sequence_slice(fit.windows, step, amp, noise_mean, bits)
        else:
            at = (origin - model.lookback)[:, None] + np.arange(model.window_len)
            pairs = iq(at) if callable(iq) else np.take(np.ascontiguousarray(iq).view("<u2"), at)
            z = np.empty(pairs.shape, np.complex64)
            z.real = (pairs & 0xFF).astype(np.float32) - np.float32(127.5)
            z.imag = (pairs >> 8).astype(np.float32) - np.float32(127.5)
            guess = bits
            for _ in range(self.coherent_passes):  # better bits, better carrier
                inphase, coherent_amp = model.carrier_projection(z, step, guess)
                seq = model.sequence_slice(
                    inphase, step, coherent_amp, noise_mean, guess, coherent=True
                )
                guess = seq.bits
            coherent = _Coherent(inphase, coherent_amp, step, noise_mean, seq.bits)
        level = amp * model.peak[step]
        bits_out, conf_out = seq.bits, seq.confidence
        if coherent is not None and known is not None:
            pick, fixed = address_hypotheses(seq.bits, known(), self.aid_distance)
            if pick.size:
                aided = model.sequence_slice(
                    coherent.inphase[pick],
                    step[pick],
                    coherent.amp[pick],
                    noise_mean[pick],
                    np.where(fixed >= 0, fixed, seq.bits[pick]).astype(np.uint8),
                    coherent=True,
                    fixed=fixed,
                )
                coherent = coherent.extended(pick)  # the free decision, for `_rescore`
                preambles, phase, level = (
                    np.concatenate([v, v[pick]]) for v in (preambles, phase, level)
                )
                bits_out = np.concatenate([seq.bits, aided.bits])
                conf_out = np.concatenate([seq.confidence, aided.confidence])
        rows = self._rows(preambles, phase, bits_out, conf_out, level)
        return rows, bits_out, conf_out, coherent

    def _chase(
        self,
        rows: Candidates,
        bits: U8,
        confidence: F32,
        sub: npt.NDArray[np.intp],
        rescore: npt.NDArray[np.intp],
        coherent: _Coherent | None,
        refined_from: int,
        aided_from: int,
    ) -> Candidates:
        """Soft repair of rows `sub` towards DF11/17/18 (`_trusted`) and of the
        coherently sliced rows `rescore` (`coherent` row k = row `refined_from`
        + k; the address-aided ones from row `aided_from`) likewise but chosen
        by likelihood (`_rescore`), in one order-2 OSD call: soft_decode's cost
        is mostly a fixed number of numpy calls, so every row and frame length of
        a batch share it.

        Each row is read as a 112-bit frame where its first bit says long or is
        among its 24 least reliable bits, and as a 56-bit frame where it says
        short or is that doubtful. Rows `rescore` are rescored as 112-bit frames
        only where their address was fixed: on the free coherent rows the
        112-bit likelihood winners added ~0.1 % recovery at 2.0 MS/s and 12 dB
        but were wrong 3 times in 14 400 frames.
        Returns the repaired rows (their `flipped` > 0), the rescored ones first.

        Unlike frame_check's hard repair the DF bits may flip: the result must
        still pass the strictest parity rule with a zero residual, and the
        receiver accepts it only from an address it already knows.

        Every error pattern inside the least reliable independent bits plus up to
        two of the next `chase_bits` is a candidate, whatever its size (the former
        meet-in-the-middle Chase search covered only patterns inside 14 bits).
        """
        if coherent is None:
            rescore = rescore[:0]
        both = np.concatenate([sub, rescore])
        conf = confidence[both]
        doubtful = conf[:, 0] <= np.partition(conf[:, :SHORT_BITS], 23, axis=1)[:, 23]
        first = bits[both, 0]
        short_at = doubtful | (first == 0)
        long_at = doubtful | (first == 1)
        chase = {LONG_BITS: sub[long_at[: sub.size]], SHORT_BITS: sub[short_at[: sub.size]]}
        # Rescoring: the readings that are not codewords already.
        open_long = frame_residuals(rows.msg[rescore], LONG_BITS) != 0
        open_short = frame_residuals(rows.msg[rescore], SHORT_BITS) != 0
        again = {
            LONG_BITS: rescore[open_long & (rescore >= aided_from)],
            SHORT_BITS: rescore[short_at[sub.size :] & open_short],
        }
        parts = {}
        for nb in (LONG_BITS, SHORT_BITS):
            extra = again[nb][~_member(again[nb], chase[nb])]
            parts[nb] = np.sort(np.concatenate([chase[nb], extra]))
        which = np.concatenate([parts[LONG_BITS], parts[SHORT_BITS]])
        nbits = np.repeat(
            np.array([LONG_BITS, SHORT_BITS], np.intp),
            [parts[LONG_BITS].size, parts[SHORT_BITS].size],
        )
        msg = rows.msg[which]
        residual = np.where(
            nbits == LONG_BITS,
            frame_residuals(msg, LONG_BITS),
            frame_residuals(msg, SHORT_BITS),
        )
        count = self.rescore_candidates if rescore.size else 2
        found = osd_candidates(
            bits[which], confidence[which], residual, nbits, self.chase_bits, count
        )
        entry = which[found.rows]
        length = nbits[found.rows]
        # Accepted repairs: (rows, bits, flips), the rescored ones first.
        picks = []
        if rescore.size and coherent is not None:
            mine = np.flatnonzero(
                ((length == LONG_BITS) & _member(entry, again[LONG_BITS]))
                | ((length == SHORT_BITS) & _member(entry, again[SHORT_BITS]))
            )
            if mine.size:
                best, trusted = self._rescore(
                    found, mine, entry, length[mine], coherent, refined_from
                )
                picks.append(
                    self._accepted(
                        entry[mine],
                        found.bits[mine, best],
                        found.flips[mine, best],
                        trusted,
                        length[mine],
                    )
                )
        for nb in (LONG_BITS, SHORT_BITS):
            k = np.flatnonzero((length == nb) & _member(entry, chase[nb]))
            if k.size == 0:
                continue
            sel = entry[k]
            trusted = self._trusted(
                found.cost[k, 0], found.cost[k, 1], found.flips[k, 0], confidence[sel], nb
            )
            picks.append(
                self._accepted(sel, found.bits[k, 0], found.flips[k, 0], trusted, length[k])
            )
        sel = np.concatenate([p[0] for p in picks]) if picks else np.zeros(0, np.intp)
        if sel.size == 0:
            return Candidates.empty()
        return self._rows(
            rows.preamble[sel],
            rows.phase[sel],
            np.concatenate([p[1] for p in picks]),
            confidence[sel],
            rows.signal[sel],
            np.concatenate([p[2] for p in picks]).astype(np.uint8),
        )

    @staticmethod
    def _accepted(
        sel: npt.NDArray[np.intp],
        fixed: U8,
        flips: npt.NDArray[np.intp],
        trusted: npt.NDArray[np.bool_],
        nbits: npt.NDArray[np.intp],
    ) -> tuple[npt.NDArray[np.intp], U8, npt.NDArray[np.intp]]:
        """Of rows `sel` and their repaired bits `fixed`: those `trusted`, where the
        repair flipped something and the frame is DF17/18 (read as 112 bits) or
        DF11 (56 bits; its bits past 56 cleared)."""
        df = np.packbits(fixed[:, :8], axis=1)[:, 0] >> 3
        long_rows = nbits == LONG_BITS
        target = np.where(long_rows, (df == 17) | (df == 18), df == 11)
        ok = np.flatnonzero(trusted & target & (flips > 0))
        fixed = fixed[ok]
        fixed[~long_rows[ok], SHORT_BITS:] = 0
        return sel[ok], fixed, flips[ok]

    def _trusted(
        self,
        cost: F32,
        runner_up: F32,
        flips: npt.NDArray[np.intp],
        confidence: F32,
        nbits: int,
    ) -> npt.NDArray[np.bool_]:
        """Whether to trust each OSD winner of `nbits`-bit frames.

        The OSD always finds some codeword; it is trusted when its `cost`
        (summed confidence of the flipped bits) is at most `repair_cost` x the
        row's median bit confidence and the next cheapest codeword it saw costs at
        least `repair_gap` x that median more. On noise and on frames the decoder
        misses, the winner costs about as much as its runner-up (many codewords
        fit about equally badly); a right repair is cheap and far ahead (at 2.0
        MS/s, 12 dB: 94 % of the right repairs pass, no wrong one with the right
        address of 12 seen).
        """
        half = nbits // 2  # the median bit confidence (np.median imports numpy.ma)
        typical = np.partition(confidence[:, :nbits], half, axis=1)[:, half]
        return np.asarray(
            (flips > 0)
            & (cost <= np.float32(self.repair_cost) * typical)
            & (runner_up - cost >= np.float32(self.repair_gap) * typical)
        )

    def _rescore(
        self,
        found: OsdResult,
        mine: npt.NDArray[np.intp],
        entry: npt.NDArray[np.intp],
        nbits: npt.NDArray[np.intp],
        coherent: _Coherent,
        refined_from: int,
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Likelihood choice among the OSD candidates of coherently sliced rows.

        `found.bits[mine]` hold the `rescore_candidates` cheapest codewords of
        order-2 OSD (by summed |LLR|, which overcounts errors that the trellis
        makes in correlated pairs) of rows `entry[mine]` read as `nbits`-bit
        frames; each is scored by the squared error of its pulse model against
        the in-phase samples (those of the frame's `nbits` bits only), the exact
        Gaussian log-likelihood. The best is trusted when it beats the next
        codeword by `repair_llr_gap` (`straddle_llr_gap` where the frame's pulses
        straddle samples) and lies within `repair_llr_cost` of the unconstrained
        sequence decision (both in nats). Returns the index of the best candidate
        of each and whether it is trusted.

        Why a larger gap where pulses straddle samples: at 2.0 MS/s within 0.2
        sample of straddling, codewords lie so close that the true one is often
        outside the OSD's list, whose gap then flatters a wrong winner. At 12 dB
        and 10 dB (32 seeds x 300 frames each; `repair_llr_cost` 10) all 5 and
        26 of 29 wrong repairs trusted at gap 5 were such frames; gap 8 there
        keeps 1 and 10 of them and drops 1.7 % and 6.6 % of the right ones.
        `repair_llr_cost` 12 rather than 10 then recovered 0.5 % more frames at
        12 dB with no more wrong repairs (3 in 14 400), at 10 dB 61.6 % instead
        of 53.9 % with 17 wrong instead of 14 (in 9600; both measured with
        `pulse_to_noise` 1.3).
        """
        model = self.model
        count = self.rescore_candidates
        local = entry[mine] - refined_from  # row of the coherent pass
        lo, hi_long = self._data_samples(LONG_BITS)
        hi = np.where(nbits == LONG_BITS, hi_long, self._data_samples(SHORT_BITS)[1])
        with_hard = np.concatenate(
            [found.bits[mine], coherent.bits[local][:, None]], axis=1
        )  # (n, count + 1, 112)
        rep_rows = np.repeat(local, count + 1)
        x = model.frame_template(coherent.step[rep_rows], with_hard.reshape(-1, with_hard.shape[2]))
        err = coherent.inphase[rep_rows, lo:] - coherent.amp[rep_rows, None] * x[:, lo:]
        err *= np.arange(lo, hi_long) < np.repeat(hi, count + 1)[:, None]  # the frame's bits
        misfit = np.einsum("ij,ij->i", err, err).reshape(mine.size, count + 1)
        # nats: squared error over twice the noise variance per real dimension
        # (complex noise power 4 mu^2 / pi, half of it in phase)
        noise_mean = coherent.noise_mean[local]
        scale = np.float32(math.pi / 4.0) / (noise_mean * noise_mean)
        nats = misfit * scale[:, None]
        order = np.argsort(nats[:, :count], axis=1)
        best = order[:, 0]
        at = np.arange(mine.size)
        gap = nats[at, order[:, 1]] - nats[at, best]
        excess = nats[at, best] - nats[:, count]
        # A frame the model does not fit (a carrier-phase slip, a collision) has
        # a misfit far above its chi-square expectation (N/2 nats over N samples).
        # `repair_misfit` 5 standard deviations, not 3: with an unbiased noise
        # mean the nats are ~15-30 % larger than with the quartile estimate the
        # 3 was set with, and 3 then cut the likelihood-chosen DF11 repairs of
        # known aircraft at 10 dB by 3/4 (12 seeds: 5 instead of 32 more than the
        # cheapest OSD codeword alone; 5 gives 158), none of them wrong either way.
        dof = ((hi - lo) / 2.0).astype(np.float32)
        fit = (nats[at, best] - dof) / np.sqrt(dof)
        straddles = self._straddles[coherent.step[local]]
        needed = np.where(straddles, self.straddle_llr_gap, self.repair_llr_gap)
        trusted = (gap >= needed) & (excess <= self.repair_llr_cost) & (fit <= self.repair_misfit)
        return best, np.asarray(trusted)

    def _data_samples(self, nbits: int) -> tuple[int, int]:
        """Window columns lo..hi-1 that hold the data pulses of the first `nbits`
        bits and none of a later bit's (`PulseModel` window layout)."""
        model = self.model
        pb, ps = model.period_bits, model.period_samples
        origin = model._tap_origin
        lo = int(origin.min())
        if nbits >= LONG_BITS:
            return lo, model.window_len
        # bit b (residue r = b % pb) starts its taps at origin[r] + (b // pb) * ps
        hi = min(int(origin[b % pb]) + (b // pb) * ps for b in range(nbits, nbits + pb))
        return lo, hi

    def _inside(
        self, preambles: I64, clean_starts: I64, pending: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.bool_]:
        """Which pending candidates start within a short frame after a CLEAN one."""
        if clean_starts.size == 0 or pending.size == 0:
            return np.zeros(pending.size, bool)
        clean_starts = np.sort(clean_starts)
        starts = preambles[pending]
        before = np.searchsorted(clean_starts, starts, side="left") - 1
        prev = clean_starts[np.maximum(before, 0)]
        return np.asarray((before >= 0) & (starts - prev < self._short_frame_samples))


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
    rows = demod.slice(padded, found, classify, noise_floor)
    return rows.shifted(-pad)
