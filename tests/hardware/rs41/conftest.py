"""Fixtures for the RS41 decoder tests: the bundled recording and its references."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from rs41_signal import REFERENCE_JSONL, WAV, example_frames, reference_frames

from hardware.rs41.wav import read_wav


@pytest.fixture(scope="session")
def ref_frames() -> list[bytes]:
    """The 60 plain frames rs41mod decoded from the wav."""
    return reference_frames()


@pytest.fixture(scope="session")
def examples() -> list[bytes]:
    """rs41.txt frames: K1930293; K4020244 with 2 errors; corrected; another 518-byte."""
    return example_frames()


@pytest.fixture(scope="session")
def ref_json() -> list[dict[str, Any]]:
    """rs41mod's JSON output for the wav, one dict per frame."""
    return [json.loads(line) for line in REFERENCE_JSONL.read_text().splitlines()]


@pytest.fixture(scope="session")
def wav_audio() -> tuple[NDArray[np.float32], int]:
    """The recording's samples (LSB units) and rate."""
    audio = read_wav(WAV)
    return audio.samples, audio.sample_rate_hz
