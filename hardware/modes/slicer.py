"""Sub-sample matched-filter bit slicer for Mode S PPM frames (2.0 and 2.4 MS/s).

Pulse model. The receiver's magnitude sample k integrates the envelope over one
sample period centred on k, blurred by a Gaussian of `blur_samples` (the RTL2832
decimator's transition band). A 0.5 us pulse starting at ``a`` samples therefore
gives sample k the value ``q(k - a)``::

        q(k - a) = integral over [a, a + w) of h(k - x) dx,   w = 0.5 us in samples
        h(t)     = Phi((t + 1/2) / blur) - Phi((t - 1/2) / blur)

Since all pulses of a frame share one carrier phase, their envelopes add linearly,
so a frame's expected magnitude is ``A * sum of q(k - a_p)`` over its pulses p
(noise aside). On modes1.bin an isolated on-grid pulse leaves about a quarter of its
height in the next sample; blur 0.3 reproduces that.

Bit decision at a fractional phase (frames start at ``n + phase``, phase quantised
to 1/`steps_per_sample`)::

    bit i:  first half  [x_i, x_i + w)        x_i = phase + (8 + i) * sps
            second half [x_i + w, x_i + 2w)

    y_i = sum_j t_j * mag[base_i + j],   t = q(first half) - q(second half)

``y_i`` is the matched-filter output for "one minus zero". Pulses of the
neighbouring bits leak into bit i's samples (at 2.0 MS/s a pulse half a sample off
the grid shares a sample with its neighbour), so the decision subtracts the leak of
the neighbours' decided pulses (decision feedback from both sides, iterated over the
whole frame at once, no per-bit loop)::

    bit_i = 1  iff  y_i / A - prev_leak[b_{i-1}] - next_leak[b_{i+1}] > (e1 + e0) / 2

with ``e1 = <q1, t>``, ``e0 = <q0, t>`` and ``A`` the pulse amplitude estimated
from the frame itself. At 2.4 MS/s the bit grid repeats every 5 bits (12 samples),
so the tables are indexed by the bit's residue mod 5 as well as the phase step.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from hardware.modes import native as native_kernels
from hardware.modes.windows import gather_windows

__all__ = [
    "FRAME_BITS",
    "PREAMBLE_US",
    "PulseModel",
    "SliceResult",
    "pulse_model",
    "pulse_samples",
]

PREAMBLE_US = (0.0, 1.0, 3.5, 4.5)
PULSE_US = 0.5
DATA_START_US = 8.0
FRAME_BITS = 112
SHORT_BITS = 56

F32 = npt.NDArray[np.float32]
IDX = npt.NDArray[np.intp]
_BLAS_ROWS = 512  # OpenBLAS runs GEMMs with m * n * k < 262144 single-threaded
_TRANSPOSE_ROWS = 256  # rows of windows per block of `PulseModel._filter`'s transpose


def _phi_integral(u: npt.NDArray[np.float64], blur: float) -> npt.NDArray[np.float64]:
    """Antiderivative of Phi(u / blur) (standard normal CDF), elementwise."""
    z = u / blur
    erf = np.array([math.erf(v / math.sqrt(2.0)) for v in z.ravel()]).reshape(z.shape)
    cdf = 0.5 * (1.0 + erf)
    pdf = np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    return np.asarray(u * cdf + blur * pdf, np.float64)


def pulse_samples(
    offsets: npt.NDArray[np.float64], start: float, width: float, blur: float
) -> npt.NDArray[np.float64]:
    """Response of samples at `offsets` (sample units) to a unit pulse [start, start + width)."""
    k = offsets - start
    # integral_{0}^{width} h(k - x) dx with h = Phi((t+.5)/b) - Phi((t-.5)/b)
    hi = _phi_integral(k + 0.5, blur) - _phi_integral(k + 0.5 - width, blur)
    lo = _phi_integral(k - 0.5, blur) - _phi_integral(k - 0.5 - width, blur)
    out = hi - lo
    # Gaussian tails would become float32 denormals, which are slow to compute with.
    out[np.abs(out) < 1e-6] = 0.0
    return np.asarray(out, np.float64)


@dataclass(frozen=True, slots=True)
class SliceResult:
    """Bits of sliced frames: `bits` (rows, 112) uint8 0/1, `confidence` (rows, 112)
    decision distance in units of one pulse's matched-filter swing (about 0.5 for a
    clean bit, near 0 for a coin toss), `amplitude` (rows,) pulse amplitude in
    magnitude units, `timing` (rows,) how well the bit grid fits: the summed
    matched-filter outputs |y_i| / |t_i| over the first 56 bits, largest at the
    right phase (0 where not computed)."""

    bits: npt.NDArray[np.uint8]
    confidence: F32
    amplitude: F32
    timing: F32


class PulseModel:
    """Matched-filter tables for one sample rate.

    Rows handed to `slice` are magnitude windows starting `lookback` samples before
    the row's integer preamble start, `window_len` long. A row's phase is a step
    index ``0 <= step < steps_per_sample`` (fraction ``step / steps_per_sample`` of a
    sample after that integer start).
    """

    def __init__(
        self, sample_rate_hz: int, *, steps_per_sample: int = 8, blur_samples: float = 0.3
    ) -> None:
        sps = sample_rate_hz / 1e6
        self.sps = sps
        self.steps = steps_per_sample
        self.period_bits = 1 if sample_rate_hz == 2_000_000 else 5
        self.period_samples = round(self.period_bits * sps)
        if abs(self.period_samples - self.period_bits * sps) > 1e-9:
            raise ValueError(f"no whole-sample bit period at {sample_rate_hz} Hz")
        self.native = False
        """Whether the matched filter, `held_bits`, `slice`'s decisions and
        `sequence_slice`'s branch metrics and trellis sweep run in the compiled
        kernels (`using_kernels`)."""
        self.lookback = 3
        self.phase_range = 1.0 if self.period_bits == 1 else 1.5
        """Preamble phases searched, +- samples from the prefilter's hit. At 2.0 MS/s
        the hit is within half a sample of the preamble when the pulse energy peaks
        there, but at 12 dB noise moves the peak to a neighbouring sample for ~2 %
        of the frames: +-1 sample instead of +-0.75 found 0.4 % more of them (48
        seeds: 94.5 % instead of 94.1 %, as many wrong repairs) for ~2 % more CPU
        on modes1.bin (the fit's 16 hypotheses instead of 12; nothing on noise)."""
        width = PULSE_US * sps
        fracs = np.arange(steps_per_sample) / steps_per_sample
        taps_lo, taps_hi = -2, math.ceil(2 * width) + 3
        offsets = np.arange(taps_lo, taps_hi + 1, dtype=np.float64)
        nres, nsteps, ntaps = self.period_bits, steps_per_sample, offsets.size
        taps = np.zeros((nres, nsteps, ntaps))
        sum_taps = np.zeros((nres, nsteps, ntaps))
        sum_norm = np.zeros((nres, nsteps))
        e1 = np.zeros((nres, nsteps))
        e0 = np.zeros((nres, nsteps))
        leak_prev = np.zeros((nres, nsteps, 2))
        leak_next = np.zeros((nres, nsteps, 2))
        base = np.zeros(nres, np.intp)
        for r in range(nres):
            x_r = (DATA_START_US + r) * sps  # first-half start at phase 0
            base[r] = math.floor(x_r)
            for s, f in enumerate(fracs):
                x = x_r - base[r] + f  # relative to the tap origin
                q1 = pulse_samples(offsets, x, width, blur_samples)
                q0 = pulse_samples(offsets, x + width, width, blur_samples)
                t = q1 - q0
                taps[r, s] = t
                sum_taps[r, s] = q1 + q0
                sum_norm[r, s] = q1 @ (q1 + q0)
                e1[r, s], e0[r, s] = q1 @ t, q0 @ t
                for b, shift in ((1, 0.0), (0, width)):
                    prev = pulse_samples(offsets, x - sps + shift, width, blur_samples)
                    nxt = pulse_samples(offsets, x + sps + shift, width, blur_samples)
                    leak_prev[r, s, b] = prev @ t
                    leak_next[r, s, b] = nxt @ t
        # Keep only the taps some phase uses.
        used = np.flatnonzero(np.abs(sum_taps).max(axis=(0, 1)) > 0)
        taps = taps[..., used[0] : used[-1] + 1]
        self._sum_taps = sum_taps[..., used[0] : used[-1] + 1].astype(np.float32)
        self._sum_norm = sum_norm.astype(np.float32)
        taps_lo += int(used[0])
        ntaps = taps.shape[2]
        # Window layout: tap j of residue r, repeat q reads window index
        # lookback + base[r] + taps_lo + j + q * period_samples.
        self._tap_origin = self.lookback + base + taps_lo
        self._tap_origin_i64 = np.ascontiguousarray(self._tap_origin, np.int64)
        fine = np.arange(-4.0, 8.0, 1.0)
        self.peak = np.array(
            [
                np.mean(
                    [
                        pulse_samples(fine, (x_r - math.floor(x_r)) + f, width, blur_samples).max()
                        for x_r in ((DATA_START_US + r) * sps for r in range(nres))
                    ]
                )
                for f in fracs
            ],
            np.float32,
        )
        """Mean highest sample of a unit pulse at each phase step."""
        self._taps = taps.astype(np.float32)
        self._mid = ((e1 + e0) / 2).astype(np.float32)
        self._swing = (e1 - e0).astype(np.float32)
        self._leak_prev = leak_prev.astype(np.float32)
        self._leak_next = leak_next.astype(np.float32)
        lp0, lp1 = self._leak_prev[..., 0], self._leak_prev[..., 1]
        ln0, ln1 = self._leak_next[..., 0], self._leak_next[..., 1]
        half = np.float32(0.5)
        # Per (residue, step): mid, swing, the zero leaks and the one-minus-zero leak
        # differences of both neighbours, the average leak of both (first pass) and
        # of the bit before / after alone (bits 0 and 111 miss a neighbour).
        # The first pass and the feedback base as offsets of the first-pass value
        # z0 = y / A - (mid + avg): base = z0 + (avg - lp0 - ln0).
        avg = (lp0 + lp1 + ln0 + ln1) * half
        self._dfe_tables = [
            self._mid,
            self._swing,
            lp0.copy(),
            ln0.copy(),
            lp1 - lp0,
            ln1 - ln0,
            self._mid + avg,
            avg - lp0 - ln0,
            (lp0 + lp1) * half,
            (ln0 + ln1) * half,
        ]
        self._dfe_stack = np.ascontiguousarray(np.stack(self._dfe_tables), np.float32)
        self._sum_taps_total = self._sum_taps.sum(axis=2)
        self._counts = [len(range(r, FRAME_BITS, self.period_bits)) for r in range(nres)]
        # Mean swing over the first 56 bits at each step (the amplitude estimate).
        per_bit_swing = self._swing[np.arange(SHORT_BITS) % nres]  # (56, steps)
        self._swing56 = per_bit_swing.mean(axis=0).astype(np.float32)
        self.window_len = self.window_len_for(FRAME_BITS)
        self._preamble_templates(width, blur_samples)
        self._trellis_tables(width, blur_samples)

    def _preamble_templates(self, width: float, blur: float) -> None:
        """Preamble templates for phases -`phase_range` .. `phase_range` samples in
        1/steps steps, over the first `preamble_len` window samples (pulses and the
        quiet gaps up to the data).

        The prefilter's pulse windows start at whole samples, so the preamble lies
        within half a sample of its hit at 2.0 MS/s; at 2.4 MS/s the pulses at 1.0,
        3.5 and 4.5 us fall 0.4, 0.4 and 0.8 samples off those windows and the hit
        can be up to 1.5 samples away.
        """
        sps, steps = self.sps, self.steps
        self.preamble_len = self.lookback + math.floor(DATA_START_US * sps) - 1
        k = np.arange(self.preamble_len, dtype=np.float64) - self.lookback
        reach = round(self.phase_range * steps)
        phases = np.arange(-reach, reach) / steps
        tmpl = np.zeros((phases.size, k.size))
        for h, ph in enumerate(phases):
            for t_us in PREAMBLE_US:
                tmpl[h] += pulse_samples(k, t_us * sps + ph, width, blur)
        self.preamble_phases = phases
        self._pre_tmpl = tmpl.astype(np.float32)
        self._pre_inv_norm2 = (1.0 / (tmpl * tmpl).sum(axis=1)).astype(np.float32)
        # Unit-norm templates: a correlation with them squared is the explained energy.
        # The last row sums the window (for its energy about the noise mean).
        unit = tmpl / np.sqrt((tmpl * tmpl).sum(axis=1))[:, None]
        self._pre_unit = np.vstack([unit, np.ones(k.size)]).astype(np.float32)
        self._pre_unit_sum = unit.sum(axis=1).astype(np.float32)[:, None]
        self._pre_inv_norm = np.sqrt(self._pre_inv_norm2)
        if phases.size > 32:
            raise ValueError(f"{phases.size} preamble phases: at most 32 fit the argmax key")
        self._pre_rank = (31 - np.arange(phases.size)).astype(np.int32)

    def preamble_fit(self, windows: F32, noise_mean: F32) -> tuple[IDX, F32, F32, F32]:
        """Least-squares fit of the preamble template at every phase hypothesis.

        `windows` is (rows, >= preamble_len) starting `lookback` before the integer
        preamble start; `noise_mean` (rows,) is mu, the mean noise magnitude.
        Returns, per row: the best hypothesis (index into `preamble_phases`), the
        energy its template explains ``<m - mu, P>^2 / |P|^2`` (0 when no fit is
        positive), its fitted pulse height (magnitude units) and the energy of the
        window about the noise mean, ``|m - mu|^2``.
        """
        corr, energy = self.preamble_correlations(windows, noise_mean)
        best, top = self.preamble_pick(corr)
        amp = top * self._pre_inv_norm[best]
        explained = top * top
        explained[amp <= 0] = 0.0
        return best, explained, amp, energy

    def preamble_correlations(self, windows: F32, noise_mean: F32) -> tuple[F32, F32]:
        """The parts of `preamble_fit` every row needs: (hypotheses, rows) the
        correlations ``<m - mu, P> / |P|`` with each unit template, and per row
        the window's energy about the noise mean ``|m - mu|^2``."""
        win = windows[:, : self.preamble_len]
        rows, length = win.shape
        # Correlations with the unit templates and the window sums in one product,
        # hypotheses along the first axis (the per-row reductions below then run
        # over contiguous rows); the noise mean comes off afterwards:
        # <m - mu, U> = <m, U> - mu sum(U).
        unit = self._pre_unit
        prod = np.empty((unit.shape[0], rows), np.float32)
        # Products under 2^18 multiply-adds keep OpenBLAS on one thread: its worker
        # threads spin for a while after every multi-threaded call, tripling the
        # CPU time.
        chunk = max(1, (1 << 18) // (unit.shape[0] * length) - 1)
        for start in range(0, rows, chunk):
            block = win[start : start + chunk]
            np.matmul(unit, block.T, out=prod[:, start : start + block.shape[0]])
        corr: F32 = prod[:-1]  # <m - mu, P> / |P| once the noise term is off
        corr -= self._pre_unit_sum * noise_mean
        # |m - mu|^2 = sum m^2 - mu (2 sum m - n mu)
        squares = win * win
        energy: F32 = np.einsum("ij->i", squares)  # ndarray.sum per row: 5x slower
        energy -= noise_mean * (np.float32(2.0) * prod[-1] - np.float32(length) * noise_mean)
        return corr, energy

    def preamble_pick(self, corr: F32) -> tuple[IDX, F32]:
        """Best hypothesis of each column of `preamble_correlations`' `corr` and
        its correlation (the fitted pulse height is that x `_pre_inv_norm`).

        Signed score corr |corr|: the explained energy where the fit is positive,
        negative where it is not. argmax over the hypotheses as one max-reduction
        of the scores' bit patterns as int32 (non-negative floats order like
        them, and every negative float is a negative int32): the low 5 mantissa
        bits (a relative 4e-6) carry the hypothesis, the first one winning
        near-ties.
        """
        rows = corr.shape[1]
        score = np.abs(corr)
        score *= corr
        key = score.view(np.int32)
        key &= np.int32(~0x1F)
        key |= self._pre_rank[:, None]
        top = np.maximum.reduce(key, axis=0)
        best = (np.int32(0x1F) - (top & np.int32(0x1F))).astype(np.intp)
        at = best * rows + np.arange(rows)  # flat index of each row's best entry
        picked: F32 = np.take(np.ascontiguousarray(corr).reshape(-1), at)
        return best, picked

    def slice(
        self,
        windows: F32,
        step: IDX,
        amplitude: F32 | None = None,
        *,
        passes: int = 2,
        timing: bool = False,
    ) -> SliceResult:
        """Decide all 112 bits of every row at its phase step (see module docstring).

        `amplitude` (rows,) seeds the pulse height; when None it is estimated from
        the matched-filter outputs of the first 56 bits. `passes` rounds of
        decision feedback follow the first decision; `timing` asks for the timing
        metric (zeros otherwise).
        """
        # Bits along the first axis and rows along the second (contiguous) one:
        # per-row values then broadcast along whole contiguous lines, which numpy
        # runs at full speed, where a (rows, 1) column costs a loop call per row.
        y = self._filter(windows, step, self._taps, FRAME_BITS)  # (112, rows)
        if amplitude is None:
            # mean |y| over the first 56 bits / (swing / 2)
            swing56 = self._swing56[step]
            total = _row_sums(np.abs(y[:SHORT_BITS]))
            amplitude = (total * np.float32(2.0 / SHORT_BITS) / swing56).astype(np.float32)
        inv_amp = np.float32(1.0) / np.maximum(amplitude, np.float32(1e-6))
        if self.native:
            return SliceResult(
                *self._decide_compiled(y, inv_amp, step, passes),
                amplitude.astype(np.float32),
                self._timing_metric(y, self._per_bit(self._swing, step))
                if timing
                else np.zeros(y.shape[1], np.float32),
            )
        mid, swing, lp0, ln0, dlp, dln, first_offset, base_shift, edge_first, edge_last = (
            self._per_bit(table, step) for table in self._dfe_tables
        )
        # First pass: neighbours unknown, assume their average leak (bit 0 has the
        # preamble before it, bit 111 nothing after it).
        z0 = y * inv_amp
        z0 -= first_offset
        if passes:
            base = z0 + base_shift
        z0[0] += _bit_row(edge_first, 0)
        z0[-1] += _bit_row(edge_last, -1)
        bits = z0 > 0
        if passes:
            # Then decision feedback from both decided neighbours: the leak of a
            # neighbour is its zero leak plus, when it is a one, the difference.
            base[0] += _bit_row(lp0, 0)
            base[-1] += _bit_row(ln0, -1)
            for _ in range(passes):
                z0[0] = base[0]
                np.subtract(base[1:], bits[:-1] * _bit_rows(dlp, 1, None), out=z0[1:])
                z0[:-1] -= bits[1:] * _bit_rows(dln, 0, -1)
                bits = z0 > 0
            # A short frame (first bit 0) ends with bit 55: nothing leaks into it
            # from a bit 56.
            short = np.flatnonzero(~bits[0])
            if short.size:
                last = SHORT_BITS - 1
                leak = (
                    _bit_row(lp0, last)[short] + bits[last - 1, short] * _bit_row(dlp, last)[short]
                )
                z = y[last, short] * inv_amp[short] - _bit_row(mid, last)[short]
                z0[last, short] = z - leak
                bits[last, short] = z0[last, short] > 0
        confidence = np.abs(z0)
        confidence /= swing
        return SliceResult(
            np.ascontiguousarray(bits.T).view(np.uint8),
            np.ascontiguousarray(confidence.T),
            amplitude.astype(np.float32),
            self._timing_metric(y, swing) if timing else np.zeros(y.shape[1], np.float32),
        )

    def _timing_metric(self, y: F32, swing: F32) -> F32:
        """`slice`'s timing metric of each row: its matched-filter energy over the
        first 56 bits, sum |y| / sqrt(swing)."""
        root: F32 = np.sqrt(_bit_rows(swing, 0, SHORT_BITS))
        if root.ndim == 1:  # one swing per row: divide the row sums
            metric: F32 = _row_sums(np.abs(y[:SHORT_BITS])) / root
            return metric
        scaled = np.abs(y[:SHORT_BITS])
        scaled /= root
        return _row_sums(scaled)

    def _decide_compiled(
        self, y: F32, inv_amp: npt.NDArray[np.floating[Any]], step: IDX, passes: int
    ) -> tuple[npt.NDArray[np.uint8], F32]:
        """`slice`'s decisions and confidences, (rows, 112) each, from its matched
        filter outputs `y` (112, rows) in the compiled kernel (`native`): the same
        float32 operations per bit, so the same numbers."""
        rows = y.shape[1]
        bits = np.empty((rows, FRAME_BITS), np.uint8)
        confidence = np.empty((rows, FRAME_BITS), np.float32)
        native_kernels.KERNELS.dfe_slice(
            np.ascontiguousarray(y, np.float32),
            np.ascontiguousarray(inv_amp, np.float32),
            np.ascontiguousarray(step, np.int64),
            self._dfe_stack,
            self.period_bits,
            self.steps,
            passes,
            SHORT_BITS,
            bits,
            confidence,
        )
        return bits, confidence

    def _filter(self, windows: F32, step: IDX, taps: F32, nbits: int) -> F32:
        """(nbits, rows): the tap table ``taps[residue, step]`` applied at every bit
        (bit i of residue r reads its taps at window index ``_tap_origin[r] + q *
        period_samples``, q = i // period_bits).

        The used window samples are transposed once (samples along the first axis,
        rows along the second); a strided (bits, taps, rows) view of them then
        meets the rows' taps in one einsum per residue, whose inner loop runs
        along the rows (numpy's batched matmul over a strided (rows, bits, taps)
        view runs a scalar loop, four times slower). The taps add up in order, as
        in a dot product.
        """
        if self.native:
            return self._filter_compiled(windows, step, taps, nbits)
        if windows.shape[0] == 1:
            # With one row the taps would be the innermost axis, which einsum sums
            # in another order: filter the row twice and keep one.
            return self._filter(np.repeat(windows, 2, axis=0), np.repeat(step, 2), taps, nbits)[
                :, :1
            ]
        rows = windows.shape[0]
        pb, ps = self.period_bits, self.period_samples
        ntaps = taps.shape[2]
        counts = [len(range(r, nbits, pb)) for r in range(min(pb, nbits))]
        lo = int(self._tap_origin.min())
        hi = max(int(self._tap_origin[r]) + ps * (n - 1) + ntaps for r, n in enumerate(counts))
        samples = np.empty((hi - lo, rows), np.float32)
        # Transposed _TRANSPOSE_ROWS rows at a time: the rows being read then stay
        # in L1, where one whole-array transpose reads every row once per sample
        # (1455 rows of modes1.bin's batch: 130 instead of 240 us).
        for r0 in range(0, rows, _TRANSPOSE_ROWS):
            samples[:, r0 : r0 + _TRANSPOSE_ROWS] = windows[r0 : r0 + _TRANSPOSE_ROWS, lo:hi].T
        item = samples.itemsize
        out = np.empty((nbits, rows), np.float32)
        for r, count in enumerate(counts):
            # (count, ntaps, rows) view: bit q of the residue at sample origin +
            # q * period_samples + tap (np.ndarray: as_strided checks cost ~20 us).
            view: F32 = np.ndarray(
                (count, ntaps, rows),
                np.float32,
                samples,
                (int(self._tap_origin[r]) - lo) * rows * item,
                (ps * rows * item, rows * item, item),
            )
            row_taps = np.ascontiguousarray(taps[r][step].T)  # (ntaps, rows)
            np.einsum("ijr,jr->ir", view, row_taps, out=out[r::pb])
        return out

    def _filter_compiled(self, windows: F32, step: IDX, taps: F32, nbits: int) -> F32:
        """`_filter` in the compiled kernel (`native`): the same sums in the same order
        (so the same numbers), without the transpose."""
        out = np.empty((nbits, windows.shape[0]), np.float32)
        native_kernels.KERNELS.filter_bits(
            np.ascontiguousarray(windows, np.float32),
            windows.shape[1],
            *self._filter_args(step, taps, nbits),
            out,
        )
        return out

    def _filter_args(self, step: IDX, taps: F32, nbits: int) -> _FilterArgs:
        """The matched filter's geometry as the compiled kernels take it after the
        windows: steps, taps and their shape, the residues' origins, samples per bit
        period, bits."""
        return (
            np.ascontiguousarray(step, np.int64),
            np.ascontiguousarray(taps, np.float32),
            taps.shape[0],
            taps.shape[1],
            taps.shape[2],
            self._tap_origin_i64,
            self.period_samples,
            nbits,
        )

    def occupancy(
        self, windows: F32, step: IDX, amplitude: F32, noise_mean: F32, nbits: int = 56
    ) -> F32:
        """Fraction of the first `nbits` bit periods holding a pulse of at least half
        `amplitude` in either slot: about 1 for a Mode S frame (every bit has one
        pulse), less for other pulse trains (Mode A/C replies, echoes) and noise.

        A bit's pulse energy is read with the slot-sum filter ``q1 + q0`` above the
        noise mean, scaled so that a pulse of amplitude A reads A.
        """
        held = self.held_bits(windows, step, amplitude, noise_mean, nbits)
        full: F32 = (held / np.float32(nbits)).astype(np.float32)
        return full

    def held_bits(
        self,
        windows: F32,
        step: IDX,
        amplitude: F32,
        noise_mean: F32,
        nbits: int,
        *,
        at: npt.NDArray[np.int64] | None = None,
    ) -> npt.NDArray[np.uint8]:
        """How many of the first `nbits` bit periods hold a pulse (`occupancy`, not
        yet divided). Each bit is decided on its own, so the count over fewer bits
        is that of the same first bits of a longer count; `windows` need only
        `window_len_for(nbits)` samples.

        With `at`, `windows` is a run of samples (the magnitudes) and row r's
        window starts at windows[at[r]]: the compiled kernel reads the windows
        there, numpy gathers a copy of each first."""
        if self.native:
            return self._held_bits_compiled(windows, step, amplitude, noise_mean, nbits, at)
        if at is not None:
            windows = gather_windows(windows, at, self.window_len_for(nbits))
        level = self._filter(windows, step, self._sum_taps, nbits)  # (nbits, rows)
        # (level - mu offset) / norm > A / 2, as one comparison per bit against a
        # per-row threshold (per bit at 2.4 MS/s).
        offset = _bit_rows(self._per_bit(self._sum_taps_total, step), 0, nbits)
        norm = _bit_rows(self._per_bit(self._sum_norm, step), 0, nbits)
        threshold = noise_mean * offset
        threshold += (amplitude * np.float32(0.5)) * norm
        # Sums of the bytes per row (at most 112, so uint8 holds them):
        # count_nonzero along an axis takes three times longer.
        held: npt.NDArray[np.uint8] = np.einsum("ij->j", (level > threshold).view(np.uint8))
        return held

    def _held_bits_compiled(
        self,
        windows: F32,
        step: IDX,
        amplitude: F32,
        noise_mean: F32,
        nbits: int,
        at: npt.NDArray[np.int64] | None = None,
    ) -> npt.NDArray[np.uint8]:
        """`held_bits` in the compiled kernel (`native`): the same filter sums in the
        same order and the same thresholds, so the same counts; with `at`, each
        row's `window_len_for(nbits)` samples read where they lie."""
        rows = step.shape[0]
        if at is None:
            wlen = windows.shape[1]
            at = np.arange(0, rows * wlen, wlen, dtype=np.int64)
        else:
            wlen = self.window_len_for(nbits)
        held = np.empty(rows, np.uint8)
        native_kernels.KERNELS.held_bits(
            np.ascontiguousarray(windows, np.float32),
            wlen,
            np.ascontiguousarray(at, np.int64),
            *self._filter_args(step, self._sum_taps, nbits),
            self._sum_taps_total,
            self._sum_norm,
            np.ascontiguousarray(noise_mean, np.float32),
            np.ascontiguousarray(amplitude, np.float32),
            held,
        )
        return held

    def using_kernels(self) -> PulseModel:
        """This model with `native` set: a shallow copy that shares every table."""
        model = copy.copy(self)
        model.native = True
        return model

    def window_len_for(self, nbits: int) -> int:
        """Window samples `_filter` reads for the first `nbits` bits, plus one
        (`window_len` for all 112)."""
        ntaps = self._sum_taps.shape[2]
        pb, ps = self.period_bits, self.period_samples
        last = max(
            int(self._tap_origin[r]) + int(ntaps) + ps * (len(range(r, nbits, pb)) - 1)
            for r in range(min(pb, nbits))
        )
        return last + 1

    def _per_bit(self, table: F32, step: IDX) -> F32:
        """table[r, step] for each bit's residue r, bits along the first axis:
        (112, rows), or (rows,) at 2.0 MS/s, where every bit has the same geometry
        (broadcasts the same)."""
        if self.period_bits == 1:
            line: F32 = table[0][step]
            return line
        out = np.empty((FRAME_BITS, step.size), np.float32)
        for r in range(self.period_bits):
            out[r :: self.period_bits] = table[r][step]
        return out

    def _trellis_tables(self, width: float, blur: float) -> None:
        """Tables for the sequence detector.

        Branch i (0..112) joins bit i-1 and bit i and owns the samples whose centres
        lie in [x_i - w, x_i + w): the second half of bit i-1 and the first half of
        bit i, where only those two bits put much energy. ``own[r, s, j]`` is the
        window index of owned sample j of a residue-r branch at phase step s (repeat
        q adds q * period_samples), ``mask`` marks the real ones (2 or 3 per branch
        at 2.4 MS/s). ``q["prev"][r, s, b, j]`` is what bit i-1 = b puts there,
        ``q["cur"]`` bit i, ``q["next"]`` bit i+1 and ``q["prev2"]`` bit i-2 (the
        last two are small; they come from a first-pass decision). The detector
        reads them per branch (``_seq_idx``, ``_seq_mask``, ``_seq_q``).
        """
        sps, steps, pb = self.sps, self.steps, self.period_bits
        nbranch = FRAME_BITS + 1
        nres = pb
        starts = [s / steps + (DATA_START_US + r) * sps for r in range(nres) for s in range(steps)]
        jmax = max(math.ceil(x + width) - math.ceil(x - width) for x in starts)
        own = np.zeros((nres, steps, jmax), np.intp)
        mask = np.zeros((nres, steps, jmax), np.float32)
        q = {name: np.zeros((nres, steps, 2, jmax)) for name in ("prev2", "prev", "cur", "next")}
        for r in range(nres):
            for s in range(steps):
                x = s / steps + (DATA_START_US + r) * sps  # bit r start, from preamble start
                first = math.ceil(x - width - 1e-9)
                ks = [k for k in range(first, first + jmax + 1) if x - width <= k < x + width]
                kk = np.array(ks, np.float64)
                own[r, s, : len(ks)] = np.array(ks) + self.lookback
                mask[r, s, : len(ks)] = 1.0
                for name, bit_start in (
                    ("prev2", x - 2 * sps),
                    ("prev", x - sps),
                    ("cur", x),
                    ("next", x + sps),
                ):
                    for b in (0, 1):
                        a = bit_start + (0.0 if b else width)
                        q[name][r, s, b, : len(ks)] = pulse_samples(kk, a, width, blur)
        # Per branch i (residue i % pb, repeat i // pb), laid out (jmax, [b,]
        # branches, steps): one take by phase step gives a row's whole trellis,
        # and rows go last in the detector's arrays (its whole-array steps then
        # run along contiguous rows). Branch 0 has no bit before it (the quiet end
        # of the preamble), branch 112 no bit 112 and nothing after.
        branch = np.arange(nbranch)
        res, rep = branch % pb, branch // pb
        self._seq_idx = np.ascontiguousarray(
            (own[res] + (rep * self.period_samples)[:, None, None]).transpose(2, 0, 1)
        )
        self._seq_mask = np.ascontiguousarray(mask[res].transpose(2, 0, 1))
        per_branch = {k: v[res].astype(np.float32).transpose(3, 2, 0, 1) for k, v in q.items()}
        per_branch["prev"][:, :, 0] = 0.0
        for name in ("cur", "next", "prev2"):
            per_branch[name][:, :, -1] = 0.0
        self._seq_q = {k: np.ascontiguousarray(v) for k, v in per_branch.items()}
        # The compiled branch metrics read the tables with the branches innermost.
        self._seq_idx_t = np.ascontiguousarray(self._seq_idx.transpose(0, 2, 1), np.int64)
        self._seq_mask_t = np.ascontiguousarray(self._seq_mask.transpose(0, 2, 1))
        self._seq_q_t = {
            k: np.ascontiguousarray(v.transpose(0, 1, 3, 2)) for k, v in self._seq_q.items()
        }

    def _expected_pulses(
        self,
        step: IDX,
        g_next: npt.NDArray[np.bool_],
        g_prev2: npt.NDArray[np.bool_],
        short: IDX,
    ) -> F32:
        """x[j, p, c, i, row]: the pulse-model value on owned sample plane j of
        branch i for bit i-1 = p and bit i = c, plus the leak of bits i+1 and i-2
        as guessed (`g_next`, `g_prev2`, (branches, rows)). Rows in `short` end
        with bit 55: no bit 56 or later puts energy anywhere."""
        if self.period_bits == 1:
            # Every branch has the same geometry (2.0 MS/s): per-row values,
            # broadcast along the branches, and the three edge branches by hand.
            # [j, b, row], rows last in memory (a fancy index on the last axis would
            # put them first, and every array derived from these would follow).
            q = {k: np.take(v[:, :, 1, :], step, axis=-1) for k, v in self._seq_q.items()}
            q_next, q_prev2 = q["next"], q["prev2"]
            other = np.where(g_next, q_next[:, 1, None], q_next[:, 0, None])
            other += np.where(g_prev2, q_prev2[:, 1, None], q_prev2[:, 0, None])
            other[:, -1] = 0.0  # nothing after bit 111
            if short.size:
                # branch 55 loses the leak of bit 56, branch 56 that of bit 57
                other[:, SHORT_BITS - 1 : SHORT_BITS + 1, short] = 0.0
            q_prev, q_cur = q["prev"], q["cur"]
            pair = q_prev[:, :, None] + q_cur[:, None]  # [j, p, c, row]
            x = pair[:, :, :, None] + other[:, None, None]
            # branch 0: bit 0 follows the quiet end of the preamble
            x[:, :, :, 0] = q_cur[:, None] + other[:, None, None, 0]
            # branch 112: no bit 112
            x[:, :, :, -1] = q_prev[:, :, None] + other[:, None, None, -1]
            if short.size:
                x[:, :, :, SHORT_BITS][..., short] = (
                    q_prev[:, :, None][..., short] + other[:, None, None, SHORT_BITS][..., short]
                )
            return x
        q_prev = np.take(self._seq_q["prev"], step, axis=-1)
        q_cur = np.take(self._seq_q["cur"], step, axis=-1)
        q_next = np.take(self._seq_q["next"], step, axis=-1)
        q_prev2 = np.take(self._seq_q["prev2"], step, axis=-1)
        other = np.where(g_next, q_next[:, 1], q_next[:, 0])
        other += np.where(g_prev2, q_prev2[:, 1], q_prev2[:, 0])
        if short.size:
            q_cur[:, :, SHORT_BITS, short] = 0.0
            other[:, SHORT_BITS - 1 : SHORT_BITS + 1, short] = 0.0
        x = q_prev[:, :, None] + q_cur[:, None]
        x += other[:, None, None]
        return x

    @cached_property
    def _idle_template(self) -> F32:
        """(steps, window_len): `frame_template` of a frame of zeros at each step
        (every bit's pulse in its second half), the part common to all frames."""
        steps = np.arange(self.steps)
        out = np.zeros((steps.size, self.window_len), np.float32)
        pb, ps = self.period_bits, self.period_samples
        for r in range(pb):
            zero = (self._sum_taps[r] - self._taps[r]) * np.float32(0.5)  # (steps, taps)
            origin = int(self._tap_origin[r])
            count = self._counts[r]
            for j in range(zero.shape[1]):
                out[:, origin + j : origin + j + ps * count : ps] += zero[:, j : j + 1]
        return out

    def frame_template(self, step: IDX, bits: npt.NDArray[np.uint8]) -> F32:
        """(rows, window_len): the expected magnitude of each row's data pulses at
        unit amplitude, noise aside: the pulse model of `bits` (rows, 112) at phase
        `step`, laid out like the rows' windows (the preamble is left out).

        A one moves a bit's pulse from its second half to its first: the template
        of zeros plus, per one, the difference (`_taps`, one minus zero)."""
        out = self._idle_template[step]
        pb, ps = self.period_bits, self.period_samples
        for r in range(pb):
            ones = bits[:, r::pb].astype(np.float32)  # (rows, bits of the residue)
            taps = self._taps[r][step]  # (rows, taps)
            origin = int(self._tap_origin[r])
            count = ones.shape[1]
            for j in range(taps.shape[1]):  # a few taps; every bit of the residue at once
                # A (rows, 1) column against whole rows of bits: a (rows, bits,
                # taps) product would run numpy's inner loop over the few taps.
                out[:, origin + j : origin + j + ps * count : ps] += ones * taps[:, j : j + 1]
        return out

    def data_amplitude(
        self, windows: F32, step: IDX, bits: npt.NDArray[np.uint8], noise_mean: F32
    ) -> tuple[F32, F32]:
        """Pulse amplitude of each row from its decided `bits` (data-aided), and how
        badly the frame fits at that amplitude.

        Moment estimate: a sample of expected envelope ``A x`` in complex noise of
        power P has ``E[m^2] = A^2 x^2 + P`` (P = 4 mu^2 / pi for a mean noise
        magnitude mu), so ``A^2 = sum x^2 (m^2 - P) / sum x^4`` (least squares,
        unbiased, unlike the matched-filter estimate, which noise and straddled
        pulses pull down by ~20 % at 12 dB). The misfit is
        ``sum (m - sqrt((A x)^2 + mu^2))^2`` over the data window: smallest at the
        right phase, so a data-aided timing search can compare phases with it.
        """
        x = self.frame_template(step, bits)
        x2 = x * x
        power = (noise_mean * noise_mean * np.float32(4.0 / math.pi))[:, None]
        num = np.einsum("ij,ij->i", x2, windows * windows - power)
        den = np.maximum(np.einsum("ij,ij->i", x2, x2), np.float32(1e-12))
        amp = np.sqrt(np.maximum(num / den, np.float32(1e-6))).astype(np.float32)
        x2 *= (amp * amp)[:, None]
        x2 += (noise_mean * noise_mean)[:, None]
        np.sqrt(x2, out=x2)
        lo = int(self._tap_origin.min())  # the data samples (not the preamble)
        err = windows[:, lo:] - x2[:, lo:]
        misfit = np.einsum("ij,ij->i", err, err).astype(np.float32)
        return amp, misfit

    def carrier_projection(
        self,
        windows: npt.NDArray[np.complex64],
        step: IDX,
        bits: npt.NDArray[np.uint8],
        half_width: int = 8,
    ) -> tuple[F32, F32]:
        """In-phase part of complex sample windows about each row's own carrier,
        and the pulse amplitude in it: (rows, window_len) and (rows,).

        All pulses of a frame share one carrier, so projecting the samples on it
        keeps the signal and half of the noise, and the noise of an empty sample
        stays zero-mean Gaussian (its magnitude would be Rayleigh, ~1.25 sigma):
        at the worst sub-sample phase, where every other sample holds half a
        pulse whatever the bits, that is worth ~3 dB to the sequence detector.

        The carrier is tracked, not assumed fixed: a coarse frequency from the
        lag-one products of the whole window (off by a few kHz at 12 dB), then
        the local phase of the samples weighted by the pulse model of `bits`
        (the rows' decisions so far) over +-`half_width` samples. A symmetric
        window averages a linear phase drift to its centre value, so a residual
        frequency error only shortens the averaged vector (robust to tens of
        kHz of transponder or dongle offset).
        """
        z = np.ascontiguousarray(windows, np.complex64)
        n = z.shape[1]
        lag = np.einsum("ij,ij->i", z[:, 1:], np.conj(z[:, :-1]))
        turn = np.angle(lag).astype(np.float32)
        k = np.arange(n, dtype=np.float32)
        z = z * np.exp(np.complex64(-1j) * (turn[:, None] * k[None, :]))
        x = self.frame_template(step, bits)
        acc = np.zeros((z.shape[0], n + 1), np.complex64)
        np.cumsum(z * x, axis=1, out=acc[:, 1:])
        at = np.arange(n)
        local = acc[:, np.minimum(at + half_width + 1, n)] - acc[:, np.maximum(at - half_width, 0)]
        local /= np.maximum(np.abs(local), np.float32(1e-12))
        y = (z.real * local.real + z.imag * local.imag).astype(np.float32)
        amp = np.einsum("ij,ij->i", x, y) / np.maximum(
            np.einsum("ij,ij->i", x, x), np.float32(1e-12)
        )
        return y, np.maximum(amp, np.float32(1e-6)).astype(np.float32)

    def sequence_slice(
        self,
        windows: F32,
        step: IDX,
        amplitude: F32,
        noise_mean: F32,
        guess: npt.NDArray[np.uint8] | None = None,
        *,
        coherent: bool = False,
        fixed: npt.NDArray[np.int8] | None = None,
    ) -> SliceResult:
        """Max-log-MAP decision of all 112 bits on a 2-state trellis (state = bit).

        Branch metrics are squared errors between the magnitudes and the expected
        magnitude ``sqrt((A s)^2 + mu^2)`` (s from the pulse model, mu the mean noise
        magnitude, per row). The forward and backward max-plus recursions run
        together, chunk-parallel (`_max_plus_sweep`). `guess` (rows, 112) supplies
        bits i+1 and i-2 whose small leak is not part of the state; zeros when None.
        `coherent`: `windows` hold the in-phase part of carrier-aligned complex
        samples instead of magnitudes, whose expected value is ``A s`` itself, with
        Gaussian noise (`noise_mean` is then unused). `fixed` (rows, 112): bits
        known beforehand (0 or 1; -1 where free), which every path must take.
        """
        rows = windows.shape[0]
        nb = FRAME_BITS + 1
        if guess is None:
            guess = np.zeros((rows, FRAME_BITS), np.uint8)
        if rows == 0:
            empty = np.zeros((0, FRAME_BITS), np.float32)
            return SliceResult(guess.copy(), empty, amplitude, np.zeros(0, np.float32))
        amp = np.maximum(amplitude, np.float32(1e-6))
        mu2 = (noise_mean * noise_mean).astype(np.float32)
        if self.native:
            sweeps = self._sequence_metrics_compiled(
                windows, step, guess, amp, mu2, coherent, fixed
            )
            return self._sequence_decide(sweeps, amp, amplitude)
        # Layout [plane j, (bit i-1 = p,) (bit i = c,) branch i, row]: rows last.
        g_next = np.zeros((nb, rows), bool)
        g_next[: FRAME_BITS - 1] = guess[:, 1:].T
        g_prev2 = np.zeros((nb, rows), bool)
        g_prev2[2:] = guess[:, : FRAME_BITS - 1].T
        # Per owned-sample plane j: the magnitudes m_j and the model values of bit
        # i-1 / bit i (b = 0, 1) plus the leak of bits i+1 and i-2 as guessed.
        # Unowned slots (masked) hold zeros everywhere: their error is then the
        # same for every branch and cannot change a decision.
        at = np.take(self._seq_idx, step, axis=-1)
        at += np.arange(rows) * windows.shape[1]
        m = np.take(np.ascontiguousarray(windows), at)
        m *= np.take(self._seq_mask, step, axis=-1)
        # Short frames (as guessed: first bit 0) end with bit 55: branches past 56
        # carry no information.
        short = np.flatnonzero(guess[:, 0] == 0)
        # All four (bit i-1 = p, bit i = c) hypotheses and all planes at once:
        # x[j, p, c, i, row] is the expected magnitude error on plane j.
        x = self._expected_pulses(step, g_next, g_prev2, short)
        x *= amp
        if not coherent:
            x *= x
            x += mu2
            np.sqrt(x, out=x)
        np.subtract(m[:, None, None], x, out=x)
        x *= x
        metric = -x[0]
        for j in range(1, x.shape[0]):
            metric -= x[j]
        if short.size:
            metric[:, :, SHORT_BITS + 1 :, short] = 0.0
        if fixed is not None:
            known = fixed.T  # (112, rows)
            for c in (0, 1):
                data = metric[:, c, :FRAME_BITS]  # [p, bit, row], a view
                data[:, known == 1 - c] = np.float32(-_FORBIDDEN)
        # Forward: alpha_i(c) = best path metric over branches 0..i ending in bit
        # i = c. Backward, as a forward sweep over the reversed branches with
        # transposed matrices: beta_i(p) over branches i+1..112 from bit i = p.
        sweeps = np.stack([metric[:, :, :FRAME_BITS], metric.transpose(1, 0, 2, 3)[:, :, :0:-1]])
        return self._sequence_decide(sweeps, amp, amplitude)

    def _sequence_decide(self, sweeps: F32, amp: F32, amplitude: F32) -> SliceResult:
        """`sequence_slice`'s decisions from its branch metrics `sweeps` (forward and
        backward, [direction, p, c, branch, row]): the best path metrics both ways,
        each bit's log-likelihood ratio, its sign and its size per amp^2."""
        sweep = _max_plus_sweep_compiled if self.native else _max_plus_sweep
        best = sweep(sweeps)  # [direction, state, bit, row]
        alpha, beta = best[0], best[1, :, ::-1]
        llr = np.ascontiguousarray(((alpha[1] + beta[1]) - (alpha[0] + beta[0])).T)
        bits = (llr > 0).astype(np.uint8)
        confidence = np.abs(llr)
        confidence /= (amp * amp)[:, None]
        return SliceResult(bits, confidence, amplitude, np.zeros(llr.shape[0], np.float32))

    def _sequence_metrics_compiled(
        self,
        windows: F32,
        step: IDX,
        guess: npt.NDArray[np.uint8],
        amp: F32,
        mu2: F32,
        coherent: bool,
        fixed: npt.NDArray[np.int8] | None,
    ) -> F32:
        """`sequence_slice`'s branch metrics in the compiled kernel (`native`), laid
        out as its sweep takes them: the same float32 operations in the same order
        as `_expected_pulses` and the metric lines of `sequence_slice`, so the same
        numbers."""
        rows = windows.shape[0]
        out = np.empty((2, 2, 2, FRAME_BITS, rows), np.float32)
        q = self._seq_q_t
        native_kernels.KERNELS.sequence_metrics(
            np.ascontiguousarray(windows, np.float32),
            windows.shape[1],
            np.ascontiguousarray(step, np.int64),
            np.ascontiguousarray(guess, np.uint8),
            np.ascontiguousarray(amp, np.float32),
            np.ascontiguousarray(mu2, np.float32),
            coherent,
            None if fixed is None else np.ascontiguousarray(fixed, np.int8),
            self._seq_idx_t,
            self._seq_mask_t,
            q["prev"],
            q["cur"],
            q["next"],
            q["prev2"],
            self._seq_mask.shape[0],
            self.steps,
            _FORBIDDEN,
            SHORT_BITS,
            out,
        )
        return out


_FORBIDDEN = 1e8  # branch metric of a path against a fixed bit (squared-error units)
_SWEEP_CHUNK = 8  # branches per chunk of `_max_plus_sweep` (112 = 14 x 8)


def _max_plus_sweep(m: F32) -> F32:
    """Best path metrics of 2-state trellises: for stacked branch matrices
    m[d, p, c, i, row] (metric of going from state p to state c at branch i),
    out[d, c, i, row] = max over paths from any start state through branches
    0..i ending in state c.

    Chunk-parallel instead of 112 sequential steps: every chunk of `_SWEEP_CHUNK`
    branches first composes its own max-plus prefix products (all chunks at once),
    then the chunks' start vectors follow one after another, then every branch
    applies its chunk's start vector in one step: about 25 whole-array steps and
    three times the work of the sequential recursion (a log-depth scan needs
    seven times)."""
    d, _, _, n, rows = m.shape
    chunks = n // _SWEEP_CHUNK
    blocks = m.reshape(d, 2, 2, chunks, _SWEEP_CHUNK, rows)
    prefix = np.empty_like(blocks)
    prefix[:, :, :, :, 0] = blocks[:, :, :, :, 0]
    for t in range(1, _SWEEP_CHUNK):
        prev, cur = prefix[:, :, :, :, t - 1], blocks[:, :, :, :, t]  # [d, p, q, k, row]
        pair = prev[:, :, :, None] + cur[:, None]  # [d, p, q, c, k, row]
        np.maximum(pair[:, :, 0], pair[:, :, 1], out=prefix[:, :, :, :, t])
    # Start vector of chunk k: best metric of each state after chunk k - 1.
    start = np.zeros((d, 2, chunks, rows), np.float32)
    for k in range(1, chunks):
        pair = start[:, :, None, k - 1] + prefix[:, :, :, k - 1, -1]  # [d, p, c, row]
        np.maximum(pair[:, 0], pair[:, 1], out=start[:, :, k])
    pair = start[:, :, None, :, None] + prefix  # [d, p, c, k, t, row]
    out: F32 = np.maximum(pair[:, 0], pair[:, 1])
    return out.reshape(d, 2, n, rows)


_FilterArgs = tuple[npt.NDArray[np.int64], F32, int, int, int, npt.NDArray[np.int64], int, int]
"""`PulseModel._filter_args`: steps, taps and their shape, the residues' origins,
samples per bit period, bits."""


def _max_plus_sweep_compiled(m: F32) -> F32:
    """`_max_plus_sweep` in the compiled kernel (`native`): the same chunked
    recursion in the same order of operations, so the same numbers."""
    dirs, _, _, n, rows = m.shape
    out = np.empty((dirs, 2, n, rows), np.float32)
    native_kernels.KERNELS.max_plus_sweep(
        np.ascontiguousarray(m, np.float32), dirs, n, rows, _SWEEP_CHUNK, out
    )
    return out


def _row_sums(lines: F32) -> F32:
    """Per row (column of `lines`, bits along the first axis) the sum over the
    bits, in an order that does not depend on how many rows there are: numpy sums
    along a contiguous axis pairwise and along a strided one in sequence, and a
    single row would make the bit axis contiguous. einsum along contiguous rows
    is also five times faster than ndarray.sum or mean along them."""
    sums: F32 = np.einsum("ij->i", np.ascontiguousarray(lines.T))
    return sums


def _bit_row(table: F32, bit: int) -> F32:
    """Bit `bit` of a `PulseModel._per_bit` table, (rows,)."""
    line: F32 = table if table.ndim == 1 else table[bit]
    return line


def _bit_rows(table: F32, lo: int, hi: int | None) -> F32:
    """Bits lo:hi of a `PulseModel._per_bit` table (all of a (rows,) one)."""
    lines: F32 = table if table.ndim == 1 else table[lo:hi]
    return lines


@cache
def pulse_model(
    sample_rate_hz: int, steps_per_sample: int = 8, blur_samples: float = 0.3
) -> PulseModel:
    """A shared `PulseModel` per parameter set: building the tables takes ~30 ms
    (erf sums over every phase and tap), more than demodulating 0.1 s of samples,
    and a model is never modified after construction."""
    return PulseModel(sample_rate_hz, steps_per_sample=steps_per_sample, blur_samples=blur_samples)
