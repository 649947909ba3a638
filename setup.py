"""The compiled part of geosensord: hardware/modes/_samples.c (see hardware/modes/native.py).

Everything else is declared in pyproject.toml. The extension is optional: where no C
compiler or Python headers are at hand the build goes on without it and the
receiver runs its numpy code instead.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hardware.modes._samples",
            ["hardware/modes/_samples.c"],
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
