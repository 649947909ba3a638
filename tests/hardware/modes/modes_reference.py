"""The readsb reference list of modes1.bin, parsed for the Mode S decoder tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REFERENCE_PATH = Path(__file__).resolve().parents[3] / "recordings/adsb/modes1.reference.txt"
SAMPLE_RATE_HZ = 2_000_000.0


@dataclass(frozen=True)
class ReferenceLine:
    """One line of modes1.reference.txt: preamble sample index, message, bits readsb fixed."""

    sample: int
    msg: bytes
    fixed_bits: int

    @property
    def t_s(self) -> float:
        return self.sample / SAMPLE_RATE_HZ


def load_reference() -> list[ReferenceLine]:
    lines = []
    for raw in REFERENCE_PATH.read_text().splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        sample, hex_msg, fixed = raw.split()
        lines.append(ReferenceLine(int(sample), bytes.fromhex(hex_msg), int(fixed)))
    return lines
