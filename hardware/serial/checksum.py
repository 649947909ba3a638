"""The line checksum shared by NMEA 0183 and our sensor protocol.

Wire format::

    $GPGGA,123519,4807.038,N,...,M,,*47\\r\\n     NMEA: XOR of the chars between '$' and '*'
    temp=21.5 hum=40*40\\n                        sensor line: XOR of every char before '*'

The checksum is two hex digits (either case accepted) after the last ``*``; it
is the XOR of the ASCII codes of the covered characters.
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from hardware.serial.errors import ChecksumError


def xor_checksum(text: str) -> int:
    """XOR of the character codes of `text` (0..255)."""
    return reduce(xor, text.encode("latin-1", "replace"), 0)


def append_checksum(body: str) -> str:
    """`body` with its ``*HH`` checksum appended (upper-case hex)."""
    return f"{body}*{xor_checksum(body):02X}"


def split_checksum(line: str) -> tuple[str, int | None]:
    """Split ``body*HH`` into (body, HH); (line, None) when there is no ``*HH`` suffix."""
    star = line.rfind("*")
    if star < 0 or len(line) - star != 3:
        return line, None
    try:
        return line[:star], int(line[star + 1:], 16)
    except ValueError:
        return line, None


def verify_checksum(line: str, required: bool) -> str:
    """The body of a sensor line with its ``*HH`` checked.

    Raises ChecksumError when the checksum does not match, or when it is absent
    and `required`. Without `required`, a line without a suffix passes as is.
    """
    body, actual = split_checksum(line)
    if actual is None:
        if required:
            raise ChecksumError(xor_checksum(line), None)
        return line
    expected = xor_checksum(body)
    if actual != expected:
        raise ChecksumError(expected, actual)
    return body
