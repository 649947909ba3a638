"""The receiver's compiled kernels (`_samples.c`), when they were built.

Ten stages of the receiver touch every sample, every preamble candidate or every
bit of a row: the IQ magnitude (`magnitude.magnitude`), the noise floor's
clipped-mean iteration (`noise.clipped_noise_floor`), the preamble prefilter
(`demod.Demodulator._prefilter_chunk`), the preamble fit's plausibility screen
and, for the plausible candidates, its best hypothesis
(`demod.Demodulator.fit_preambles`, ~4 % of the samples on dense air), and in
`slicer.PulseModel` the matched filter (`_filter`), the occupancy count
(`held_bits`, reading the windows where they lie in the magnitudes), the fast
slice's decisions (`slice`), and the sequence detector's branch metrics and trellis
sweep (`sequence_slice`), and the CRC residuals of the sliced rows
(`crc_rows.mixed_residuals`). numpy runs each step of them as a pass over whole
arrays (for a few hundred rows, one call per step costs more than its arithmetic)
and gathers a window per candidate; in C the sums stay in L1 and a row's steps run
together. On modes1.bin the receiver takes about half the CPU with them
(`bench/modes_demod.py` against `--numpy`).

Every stage but the screen gives the numpy code's numbers bit for bit (float32,
numpy's order of operations; the noise floor's and the CRC's sums are exact in any
order). The screen's sums run in another order than BLAS's,
so its correlations agree to float32 rounding; a candidate whose plausibility
margin is that small could go either way. The tests compare each kernel with the
numpy code, and the receiver's messages on modes1.bin and on weak synthetic frames
(tests/hardware/modes/test_native_kernels.py). The numpy code stays the reference
and the fallback: `pip install` builds the extension where a C compiler and the
Python headers are present (setup.py) and goes on without it where they are not;
`Demodulator(native=False)` (the ADS-B source's `native_kernels = false`) keeps
numpy even where it is built.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["KERNELS", "UNAVAILABLE_REASON", "available", "stale_reason"]


def stale_reason(built_digest: str, source: Path) -> str:
    """Why an extension built from a source with `built_digest` (setup.py's, the
    first 16 hex digits of its SHA-256) does not fit `source`, or "" when it does or
    when there is no source to compare (an installed wheel carries the source it was
    built from, so the two agree there). In a source tree, an edit to `_samples.c`
    that was not rebuilt, or that did not compile (the build is optional and leaves
    the old one), would otherwise run the old kernels under the new code."""
    if not source.exists():
        return ""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    if built_digest == digest:
        return ""
    return (
        f"hardware.modes._samples was built from another {source.name} "
        f"({built_digest or 'unknown'}, the source is {digest}): rebuild with pip install -e ."
    )


UNAVAILABLE_REASON = ""
"""Why the compiled kernels are not there ("" when they are)."""
try:
    from hardware.modes import _samples as KERNELS
except ImportError as exc:  # not built here: no compiler at install time
    KERNELS = None  # type: ignore[assignment]
    UNAVAILABLE_REASON = f"hardware.modes._samples not built ({exc})"
else:
    UNAVAILABLE_REASON = stale_reason(
        str(getattr(KERNELS, "SOURCE_DIGEST", "")), Path(__file__).with_name("_samples.c")
    )
    if UNAVAILABLE_REASON:
        KERNELS = None  # type: ignore[assignment]


def available() -> bool:
    """Whether the compiled kernels are built and importable."""
    return KERNELS is not None
