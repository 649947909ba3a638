from collections.abc import Sequence
from typing import SupportsFloat

import numpy as np
import numpy.typing as npt

SOURCE_DIGEST: str

def magnitude(iq: npt.NDArray[np.uint8], out: npt.NDArray[np.float32], /) -> None: ...
def prefilter(
    mag: npt.NDArray[np.float32],
    start: int,
    stop: int,
    out: npt.NDArray[np.int64],
    width: int,
    pulse: Sequence[int],
    quiet: Sequence[int],
    quiet_pair: bool,
    energy_min: SupportsFloat,
    floor_min: SupportsFloat,
    quiet_slope: SupportsFloat,
    quiet_intercept: SupportsFloat,
    /,
) -> int: ...
def preamble_screen(
    mag: npt.NDArray[np.float32],
    origin: npt.NDArray[np.int64],
    noise: npt.NDArray[np.float32],
    unit_t: npt.NDArray[np.float32],
    unit_sum: npt.NDArray[np.float32],
    top: npt.NDArray[np.float32],
    energy: npt.NDArray[np.float32],
    len: int,
    fit_coef: SupportsFloat,
    noise_coef: SupportsFloat,
    kept: npt.NDArray[np.int64],
    best: npt.NDArray[np.int64],
    picked: npt.NDArray[np.float32],
    /,
) -> int: ...
def held_bits(
    windows: npt.NDArray[np.float32],
    wlen: int,
    row_at: npt.NDArray[np.int64],
    step: npt.NDArray[np.int64],
    taps: npt.NDArray[np.float32],
    pb: int,
    nsteps: int,
    ntaps: int,
    origin: npt.NDArray[np.int64],
    ps: int,
    nbits: int,
    offset: npt.NDArray[np.float32],
    norm: npt.NDArray[np.float32],
    noise: npt.NDArray[np.float32],
    amplitude: npt.NDArray[np.float32],
    out: npt.NDArray[np.uint8],
    /,
) -> None: ...
def dfe_slice(
    y: npt.NDArray[np.float32],
    inv_amp: npt.NDArray[np.float32],
    step: npt.NDArray[np.int64],
    tables: npt.NDArray[np.float32],
    pb: int,
    nsteps: int,
    passes: int,
    short_bits: int,
    bits: npt.NDArray[np.uint8],
    conf: npt.NDArray[np.float32],
    /,
) -> None: ...
def max_plus_sweep(
    m: npt.NDArray[np.float32],
    dirs: int,
    n: int,
    rows: int,
    chunk: int,
    out: npt.NDArray[np.float32],
    /,
) -> None: ...
def sequence_metrics(
    windows: npt.NDArray[np.float32],
    wlen: int,
    step: npt.NDArray[np.int64],
    guess: npt.NDArray[np.uint8],
    amp: npt.NDArray[np.float32],
    mu2: npt.NDArray[np.float32],
    coherent: bool,
    fixed: npt.NDArray[np.int8] | None,
    idx: npt.NDArray[np.int64],
    mask: npt.NDArray[np.float32],
    q_prev: npt.NDArray[np.float32],
    q_cur: npt.NDArray[np.float32],
    q_next: npt.NDArray[np.float32],
    q_prev2: npt.NDArray[np.float32],
    planes: int,
    nsteps: int,
    forbidden: SupportsFloat,
    short_bits: int,
    out: npt.NDArray[np.float32],
    /,
) -> None: ...
def filter_bits(
    windows: npt.NDArray[np.float32],
    wlen: int,
    step: npt.NDArray[np.int64],
    taps: npt.NDArray[np.float32],
    pb: int,
    nsteps: int,
    ntaps: int,
    origin: npt.NDArray[np.int64],
    ps: int,
    nbits: int,
    out: npt.NDArray[np.float32],
    /,
) -> None: ...
def clipped_noise_power(
    values: npt.NDArray[np.float32],
    power: float,
    clip_to_power: float,
    share: float,
    tolerance: float,
    max_iterations: int,
    /,
) -> float: ...
def frame_residuals(
    msgs: npt.NDArray[np.uint8],
    long_rows: npt.NDArray[np.uint8],
    table: npt.NDArray[np.uint32],
    out: npt.NDArray[np.uint32],
    /,
) -> None: ...
