"""Noise-floor tracking for the Mode S receiver, independent of how the stream is cut.

The stream is split into segments by absolute sample index, never by block::

    sample  0      1024            1024 + 65536        1024 + 2 * 65536
            |seg 0 |     seg 1      |       seg 2       |  ...

Segments count from the tracker's `origin` (0, or where the stream resumed after
a flush). Each segment's estimate is `clipped_noise_floor` over its samples at
absolute indices divisible by 16 (what `estimate_noise_floor` does within one
block), started from the previous segment's estimate. The floor *used* in
segment j is an exponential average (time constant `tau_samples`) of the
estimates of segments 0..j-1; segment 0 uses its own estimate, so nothing in it
is searched before its 1024 samples (0.5 ms at 2 MS/s) are in, or the stream
ends. Every floor therefore depends only on samples, not on block sizes: decoding
with 4 KiB or 1 MiB blocks gives the same messages.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hardware.modes import native

__all__ = [
    "FIRST_SEGMENT_SAMPLES",
    "SEGMENT_SAMPLES",
    "NoiseTracker",
    "clipped_noise_floor",
    "estimate_noise_floor",
    "quartile_noise_floor",
]

FIRST_SEGMENT_SAMPLES = 1024
SEGMENT_SAMPLES = 65_536
_SUBSAMPLE = 16
_RAYLEIGH_MEAN_TO_QUARTILE = 1.6524  # mean / lower quartile of a Rayleigh magnitude


def quartile_noise_floor(values: npt.NDArray[np.float32]) -> float:
    """Mean noise magnitude from a sample of magnitudes, via their lower quartile:
    for Rayleigh noise of scale s the quartile is 0.759 s and the mean 1.253 s.

    The lower quartile, unlike the median, hardly moves when replies fill a third of
    the air time (the pulses sit in the upper half of the distribution), but it
    is coarse on u8 IQ (see `clipped_noise_floor`, which starts from it).
    """
    if values.size == 0:
        return 0.0
    k = values.size // 4
    return float(np.partition(values, k)[k]) * _RAYLEIGH_MEAN_TO_QUARTILE


CLIP_TO_POWER = 3.0
"""`clipped_noise_floor` averages the powers below this multiple of the noise power."""
_CLIPPED_SHARE = (1.0 - math.exp(-CLIP_TO_POWER) * (1.0 + CLIP_TO_POWER)) / (
    1.0 - math.exp(-CLIP_TO_POWER)
)  # E[P | P < c mean] / mean for exponential P (complex Gaussian noise power): 0.843
_TOLERANCE = 5e-3  # relative change of the power estimate that ends the iteration
_MAX_ITERATIONS = 40


def clipped_noise_floor(
    values: npt.NDArray[np.float32], start: float | None = None, *, compiled: bool = True
) -> float:
    """Mean noise magnitude from a sample of magnitudes with replies among them.

    The noise power P (|IQ|^2, exponential for complex Gaussian noise) is the mean
    of the powers below `CLIP_TO_POWER` x P divided by the share of P that such a
    clipped mean keeps of pure noise, found by iteration (a contraction: ~0.4 of
    the error is left per step) from `start` (a mean magnitude, such as the
    previous segment's) or from `quartile_noise_floor`; the mean magnitude is then
    sqrt(pi P) / 2. Replies stronger than the clip do not count at all.

    Why not an order statistic such as the lower quartile: u8 IQ makes the
    magnitudes discrete, and at the noise levels of a dongle at low or moderate
    gain (a few ADC units) a quantile sits on one of a few levels: on Gaussian
    noise of sigma 0.93, 1.2, 1.5 and 3 ADC units the quartile estimate was 0.94,
    0.75, 1.36 and 1.11 x the true mean (here 0.96-0.97, 0.95, 0.92-1.03 and
    0.98-1.0; at most 12 % off near sigma 1.1, where the clip passes one of the
    few power levels), and one of modes1.bin's five segments read 2.6 where the
    others read 1.17, its thresholds twice what they should have been.

    The iteration runs in the compiled kernel where it is built (`native`) and
    `compiled` is True: the same operations, one pass over the values a step
    where numpy makes four. The clipped sums are float64 and exact for the
    magnitudes of u8 IQ (see `_clipped_sum`), so both give the same floor.
    """
    if values.size == 0:
        return 0.0
    initial = start if start is not None and start > 0.0 else quartile_noise_floor(values)
    noise_power = 4.0 / math.pi * initial * initial
    if noise_power <= 0.0:  # silence (padding)
        return 0.0
    if compiled and native.KERNELS is not None:
        noise_power = native.KERNELS.clipped_noise_power(
            np.ascontiguousarray(values, np.float32),
            noise_power,
            CLIP_TO_POWER,
            _CLIPPED_SHARE,
            _TOLERANCE,
            _MAX_ITERATIONS,
        )
    else:
        noise_power = _clipped_power(values * values, noise_power)
    return math.sqrt(math.pi * noise_power) / 2.0


def _clipped_power(power: npt.NDArray[np.float32], noise_power: float) -> float:
    """`clipped_noise_floor`'s iteration in numpy: the noise power from `power`,
    the values squared, starting at `noise_power`."""
    for _ in range(_MAX_ITERATIONS):
        count, kept = _clipped_sum(power, np.float32(CLIP_TO_POWER * noise_power))
        if 4 * count < power.size:
            # Far too low a start (the previous segment was near-silent): most
            # powers lie above the clip, whose mean would stay where it is.
            noise_power *= 4.0
            continue
        updated = kept / count / _CLIPPED_SHARE
        done = abs(updated - noise_power) <= _TOLERANCE * noise_power
        noise_power = updated
        if done:
            break
    return noise_power


def _clipped_sum(power: npt.NDArray[np.float32], clip: np.float32) -> tuple[int, float]:
    """How many of `power` lie below `clip`, and their sum.

    The sum is float64, and exact for the powers of u8 IQ magnitudes (multiples
    of 2^-25, below 2^15: 4096 of them, a noise segment's subsample, need at
    most 52 bits), so the order of the additions does not matter and the
    compiled kernel, adding in another order, gets the same number.
    """
    below = power < clip
    kept = power[below]
    return kept.size, float(kept.sum(dtype=np.float64))


def estimate_noise_floor(mag: npt.NDArray[np.float32]) -> float:
    """Mean noise magnitude of a block (magnitude units): `clipped_noise_floor` of
    a 1-in-16 subsample."""
    return clipped_noise_floor(mag[::16])


def segment_of(sample: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Segment index of absolute sample indices (see module docstring)."""
    later = (sample - FIRST_SEGMENT_SAMPLES) // SEGMENT_SAMPLES + 1
    return np.where(sample < FIRST_SEGMENT_SAMPLES, 0, later).astype(np.int64)


def segment_start(index: int) -> int:
    """Absolute first sample of segment `index`."""
    return 0 if index == 0 else FIRST_SEGMENT_SAMPLES + (index - 1) * SEGMENT_SAMPLES


class NoiseTracker:
    """Per-segment noise floors (mean noise magnitude) of one sample stream."""

    def __init__(
        self, origin: int = 0, tau_samples: float = 200_000.0, *, compiled: bool = True
    ) -> None:
        self.origin = origin
        """Absolute index of the stream's first sample (segment 0 starts there)."""
        self.tau_samples = tau_samples
        self.compiled = compiled
        """Whether `clipped_noise_floor` may use the compiled kernel (the same floors)."""
        self._pending: list[npt.NDArray[np.float32]] = []  # subsamples of the open segment
        self._open = 0  # index of the segment being filled
        self._seen = origin  # absolute samples consumed
        self._average: float | None = None  # over closed segments
        self._total = 0  # samples in closed segments
        self._floors: dict[int, float] = {}  # floor used in segment j (j >= 1 when closed)
        self._first: float | None = None  # estimate of segment 0
        self._last: float | None = None  # estimate of the last closed segment

    def add(self, mag: npt.NDArray[np.float32]) -> None:
        """Consume the next samples of the stream."""
        pos = self._seen
        end = pos + mag.size
        while pos < end:
            seg_end = self.origin + segment_start(self._open + 1)
            take_to = min(end, seg_end)
            chunk = mag[pos - self._seen : take_to - self._seen]
            first = (self.origin - pos) % _SUBSAMPLE
            subsample = chunk[first::_SUBSAMPLE]
            pos = take_to
            if pos == seg_end and not self._pending:
                # A whole segment in this call: its estimate straight from the
                # strided view (the powers are a contiguous copy anyway).
                self._close(subsample)
                continue
            self._pending.append(subsample.copy())
            if pos == seg_end:
                self._close(np.concatenate(self._pending))
        self._seen = end

    def _close(self, values: npt.NDArray[np.float32]) -> None:
        """End the open segment, whose subsample is `values`."""
        self._pending = []
        estimate = clipped_noise_floor(values, self._last, compiled=self.compiled)
        self._last = estimate
        length = segment_start(self._open + 1) - segment_start(self._open)
        if self._open == 0:
            self._first = estimate
        self._total += length
        if self._average is None:
            self._average = estimate
        else:
            # Exponential average, but a plain running mean while the history is
            # shorter than tau: the short first segment must not linger.
            weight = max(1.0 - math.exp(-length / self.tau_samples), length / self._total)
            self._average = (1.0 - weight) * self._average + weight * estimate
        self._open += 1
        self._floors[self._open] = self._average

    def ready_until(self, final: bool) -> int:
        """Absolute sample up to which floors are known (all of them when `final`)."""
        if final or self._open > 0:
            return self._seen
        return 0

    def floors(self, samples: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """Noise floor in force at each absolute sample index (must be < ready_until)."""
        if samples.size == 0:
            return np.zeros(0, np.float32)
        seg = segment_of(samples - self.origin)
        first = int(seg.min())
        table = np.array([self._floor(j) for j in range(first, int(seg.max()) + 1)], np.float32)
        return table[seg - first]

    def _floor(self, j: int) -> float:
        if j == 0:
            if self._first is None:  # the stream ended inside segment 0
                values = np.concatenate(self._pending) if self._pending else np.zeros(0)
                return clipped_noise_floor(values.astype(np.float32), compiled=self.compiled)
            return self._first
        if j in self._floors:
            return self._floors[j]
        return self._average if self._average is not None else 0.0

    def floor_at(self, sample: int) -> float:
        """Noise floor in force at one absolute sample index (see `floors`)."""
        return self._floor(self._segment(sample))

    def boundaries(self, lo: int, hi: int) -> list[int]:
        """Segment starts s with lo < s < hi (absolute samples)."""
        j = self._segment(lo) + 1
        out = []
        while self.origin + segment_start(j) < hi:
            out.append(self.origin + segment_start(j))
            j += 1
        return out

    def _segment(self, sample: int) -> int:
        """Segment index of one absolute sample index (`segment_of` for one int,
        without numpy's per-call cost)."""
        rel = sample - self.origin
        if rel < FIRST_SEGMENT_SAMPLES:
            return 0
        return (rel - FIRST_SEGMENT_SAMPLES) // SEGMENT_SAMPLES + 1

    def forget_before(self, sample: int) -> None:
        """Drop floors of segments that end before `sample` (memory stays bounded)."""
        j = self._segment(sample)
        for old in [k for k in self._floors if k < j]:
            del self._floors[old]
