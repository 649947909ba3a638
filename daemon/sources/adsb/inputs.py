"""The `input` key of an adsb source, and opening the IQ source it names.

    rtl_tcp://HOST:PORT      an rtl_tcp server (port defaults to 1234)
    rtlsdr://0               a local dongle by index …
    rtlsdr://00001090        … or by USB serial (anything that is not a plain integer)
    file:///abs/path.bin     a u8 IQ recording; a plain path works too (relative paths
    path/to/file.bin         are taken from the config file's folder)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["InputSpec", "input_check", "parse_input"]

RTL_TCP_DEFAULT_PORT = 1234


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
