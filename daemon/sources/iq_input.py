"""The `input` key of the IQ sources (adsb, rs41), and what they build from it.

    rtl_tcp://HOST:PORT      an rtl_tcp server (port defaults to 1234)
    rtlsdr://0               a local dongle by index …
    rtlsdr://00001090        … or by USB serial (anything that is not a plain integer)
    file:///abs/path.bin     a recording; a plain path works too (relative paths
    path/to/file.bin         are taken from the config file's folder)

Also shared by both sources: the tuner keys (`rate`, `gain`, `ppm`, `agc`,
`bias_tee`) as `TunerSettings`, opening a live input, and the fingerprint of a
recording that makes replayed files publish under a producer of their own::

    sha1( first 64 KiB of the file ‖ "<size in bytes>:<param>:<param>…" )[:12] hex
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hardware.iq.base import IqSource, TunerSettings
from hardware.iq.rtl_tcp import RtlTcpClient

__all__ = [
    "InputSpec",
    "file_fingerprint",
    "gain_check",
    "input_check",
    "open_live_input",
    "parse_input",
    "tuner_settings",
]

RTL_TCP_DEFAULT_PORT = 1234
FINGERPRINT_BYTES = 65_536


@dataclass(frozen=True, slots=True)
class InputSpec:
    """A parsed `input`: kind is "rtl_tcp", "rtlsdr" or "file"."""

    kind: str
    host: str = ""
    port: int = 0
    device: int | str = 0
    path: str = ""


def parse_input(text: str) -> InputSpec:
    """Parse an `input` value; raises ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    if "://" not in text:
        return InputSpec("file", path=text)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    # urlsplit does not take "rtl_tcp" as a scheme (no "_" allowed there).
    url = urlsplit(f"x://{rest}")
    if scheme in ("rtl_tcp", "rtl-tcp"):
        if not url.hostname:
            raise ValueError(f"{text!r}: expected rtl_tcp://HOST:PORT")
        try:
            port = url.port or RTL_TCP_DEFAULT_PORT
        except ValueError:
            raise ValueError(f"{text!r}: the port must be 1..65535") from None
        return InputSpec("rtl_tcp", host=url.hostname, port=port)
    if scheme == "rtlsdr":
        name = (url.netloc + url.path).strip("/")
        if not name:
            raise ValueError(f"{text!r}: expected rtlsdr://INDEX or rtlsdr://SERIAL")
        device: int | str = int(name) if name.isdigit() else unquote(name)
        return InputSpec("rtlsdr", device=device)
    if scheme == "file":
        path = unquote(url.netloc + url.path)
        if not path:
            raise ValueError(f"{text!r}: expected file:///PATH")
        return InputSpec("file", path=path)
    raise ValueError(
        f"{text!r}: unknown scheme {scheme!r}; use rtl_tcp://HOST:PORT, rtlsdr://INDEX, "
        "file:///PATH or a plain path"
    )


def input_check(value: object) -> str | None:
    """Config check for `input`."""
    try:
        spec = parse_input(str(value))
    except ValueError as exc:
        return str(exc)
    if spec.kind == "file" and not Path(spec.path).name:
        return f"{value!r}: not a file name"
    return None


def gain_check(value: Any) -> str | None:
    """Config check for `gain`: "auto" or a tuner gain in dB within [0, 60]."""
    if isinstance(value, str):
        return None if value == "auto" else f'{value!r}: use "auto" or a gain in dB'
    return None if 0 <= value <= 60 else f"{value!r} dB is outside [0, 60]"


def tuner_settings(cfg: Mapping[str, Any], frequency_hz: int) -> TunerSettings:
    """What to tune to: `frequency_hz` and the source's `rate`, `gain` ("auto" = tuner
    AGC), `ppm`, `agc` and `bias_tee` keys."""
    gain = cfg["gain"]
    return TunerSettings(
        frequency_hz=frequency_hz,
        sample_rate_hz=int(cfg["rate"]),
        gain_db=None if gain == "auto" else float(gain),
        ppm=int(cfg["ppm"]),
        rtl_agc=bool(cfg["agc"]),
        bias_tee=bool(cfg["bias_tee"]),
    )


def open_live_input(spec: InputSpec, settings: TunerSettings, *, block_samples: int,
                    timeout_s: float) -> IqSource:
    """A fresh (not yet connected) IqSource for an rtl_tcp or rtlsdr input.

    `timeout_s` bounds the rtl_tcp connect and its longest silence.
    """
    if spec.kind == "rtl_tcp":
        return RtlTcpClient(spec.host, spec.port, settings, block_samples=block_samples,
                            timeout_s=timeout_s)
    if spec.kind == "rtlsdr":
        # Imported here: pyrtlsdr is only needed by those who use a local dongle.
        from hardware.iq.rtlsdr import RtlSdrSource

        return RtlSdrSource(spec.device, settings, block_samples=block_samples)
    raise ValueError(f"{spec.kind!r} is not a live input")


def file_fingerprint(path: Path, *params: object) -> str:
    """12 hex digits that name a recording read with `params` (module docstring).

    Raises OSError when the file cannot be read.
    """
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        h.update(fh.read(FINGERPRINT_BYTES))
    h.update(":".join(str(p) for p in (path.stat().st_size, *params)).encode())
    return h.hexdigest()[:12]
