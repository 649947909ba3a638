"""Mode S CRC-24 (ICAO Annex 10 Vol IV, generator polynomial 0x1FFF409).

Wire format: the last 24 bits of every Mode S frame (56 or 112 bits) are the
parity field PI/AP. For DF11/17/18 the parity equals the CRC of the preceding
bits (DF11 may have the interrogator id overlaid on the low 7 bits); for
DF0/4/5/16/20/21 the parity is the CRC XORed with the aircraft address (AP).
`residual` returns CRC(data) XOR parity, so it is 0 for a clean DF17, the IID
for a DF11 reply, and the ICAO address for an address/parity format.
"""

from __future__ import annotations

POLY = 0xFFF409

def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        c = byte << 16
        for _ in range(8):
            c = ((c << 1) ^ POLY) if c & 0x800000 else (c << 1)
        table.append(c & 0xFFFFFF)
    return tuple(table)


_TABLE = _make_table()


def crc24(data: bytes) -> int:
    """CRC-24 of `data` (the message bits before the parity field), as a 24-bit int."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ _TABLE[((crc >> 16) ^ b) & 0xFF]
    return crc


def residual(msg: bytes) -> int:
    """CRC of the data bits XOR the transmitted 24-bit parity field (7 or 14 byte frames)."""
    return crc24(msg[:-3]) ^ int.from_bytes(msg[-3:], "big")
