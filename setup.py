"""The compiled part of geosensord: hardware/modes/_samples.c (see hardware/modes/native.py).

Everything else is declared in pyproject.toml. The extension is optional: where no C
compiler or Python headers are at hand the build goes on without it and the
receiver runs its numpy code instead.
"""

import hashlib
from pathlib import Path

from setuptools import Extension, setup

SOURCE = "hardware/modes/_samples.c"
# The module carries a digest of the source it was built from: hardware/modes/native.py
# refuses an in-tree build whose source has changed since (a stale extension would
# otherwise pass for the current code).
DIGEST = hashlib.sha256((Path(__file__).parent / SOURCE).read_bytes()).hexdigest()[:16]

setup(
    ext_modules=[
        Extension(
            "hardware.modes._samples",
            [SOURCE],
            define_macros=[("SAMPLES_SOURCE_DIGEST", f'"{DIGEST}"')],
            # The kernels must round every float32 operation as numpy does: no fused
            # multiply-adds, no fast-math. -fno-math-errno lets sqrtf vectorize
            # (it only stops errno being set for negative arguments, which never occur).
            # -Wno-psabi: gcc notes that 32-byte vectors pass differently with and
            # without AVX; every function that takes or returns one is inlined.
            extra_compile_args=[
                "-O3",
                "-ffp-contract=off",
                "-fno-fast-math",
                "-fno-math-errno",
                "-Wno-psabi",
            ],
            optional=True,
        )
    ]
)
