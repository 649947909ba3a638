"""A local RTL-SDR dongle as an IQ source, through pyrtlsdr (imported lazily).

pyrtlsdr binds librtlsdr with ctypes when it is imported, and fails when the library
is missing or too old (Debian's librtlsdr0 lacks ``rtlsdr_set_dithering``, which
pyrtlsdr ≥ 0.3 needs; the ``pyrtlsdrlib`` wheel ships a matching library). Both that
and a missing dongle raise `DeviceUnavailableError` with a message that says what to
do; the daemon's source retries with backoff.

`list_devices` talks to librtlsdr directly with ctypes (only the enumeration calls
that every librtlsdr has), so ``geosensord devices`` works even where pyrtlsdr
cannot load.

Reads are synchronous (`rtlsdr_read_sync`): one call per block, in the caller's
thread. Block times are the host clock when the read returns, minus the block's
duration.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hardware.iq.base import DEFAULT_BLOCK_SAMPLES, IqBlock, IqSource, TunerSettings
from hardware.iq.errors import DeviceUnavailableError
from hardware.iq.rtl_tcp import TUNER_TYPES

__all__ = ["DongleInfo", "RtlSdrSource", "list_devices", "load_pyrtlsdr"]

INSTALL_HINT = "install the sdr extra: pip install pyrtlsdr pyrtlsdrlib"


def load_pyrtlsdr(device: str = "") -> Any:
    """The pyrtlsdr ``RtlSdr`` class; raises DeviceUnavailableError when it cannot load."""
    try:
        from rtlsdr import RtlSdr
    except ImportError as exc:
        raise DeviceUnavailableError(device, f"pyrtlsdr is not installed ({exc}); "
                                             f"{INSTALL_HINT}") from None
    except (OSError, AttributeError) as exc:
        # AttributeError: librtlsdr found but lacks a symbol pyrtlsdr binds.
        raise DeviceUnavailableError(device, f"pyrtlsdr cannot load librtlsdr ({exc}); "
                                             f"{INSTALL_HINT}") from None
    return RtlSdr


class RtlSdrSource(IqSource):
    """Reads blocks from a dongle chosen by index (int) or USB serial (str)."""

    def __init__(
        self,
        device: int | str = 0,
        settings: TunerSettings | None = None,
        *,
        block_samples: int = DEFAULT_BLOCK_SAMPLES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device = device
        self.settings = settings or TunerSettings()
        self.sample_rate_hz = self.settings.sample_rate_hz
        self.block_bytes = 2 * block_samples
        self.clock = clock
        self._sdr: Any = None
        self._next_sample = 0
        self.tuner_type: int | None = None

    @property
    def name(self) -> str:
        return (f"serial {self.device!r}" if isinstance(self.device, str)
                else f"index {self.device}")

    def describe(self) -> str:
        return f"rtlsdr://{self.device}"

    def open(self) -> None:
        """Open and tune the dongle; raises DeviceUnavailableError."""
        rtl_sdr = load_pyrtlsdr(self.name)
        s = self.settings
        try:
            if isinstance(self.device, str):
                sdr = rtl_sdr(serial_number=self.device)
            else:
                sdr = rtl_sdr(device_index=self.device)
        except Exception as exc:  # LibUSBError/IOError from librtlsdr
            raise DeviceUnavailableError(
                self.name,
                f"cannot open ({exc}); is a dongle plugged in, is the DVB driver "
                "blacklisted, and may this user access it? `geosensord devices` lists them",
            ) from None
        try:
            sdr.sample_rate = s.sample_rate_hz
            sdr.center_freq = s.frequency_hz
            if s.ppm:
                sdr.freq_correction = s.ppm
            sdr.gain = "auto" if s.gain_db is None else s.gain_db
            sdr.set_agc_mode(s.rtl_agc)
            if s.bias_tee:
                sdr.set_bias_tee(True)
            self.tuner_type = int(sdr.get_tuner_type())
        except Exception as exc:
            sdr.close()
            raise DeviceUnavailableError(self.name, f"cannot tune: {exc}") from None
        self._sdr = sdr

    def read_block(self) -> IqBlock | None:
        if self._sdr is None:
            self.open()
        try:
            buf = self._sdr.read_bytes(self.block_bytes)
        except Exception as exc:  # unplugged mid-stream
            self.close()
            raise DeviceUnavailableError(self.name, f"read failed: {exc}") from None
        iq = np.frombuffer(bytes(buf), np.uint8)
        n = iq.size // 2
        block = IqBlock(iq, self._next_sample, self.clock() - n / self.sample_rate_hz)
        self._next_sample += n
        return block

    def close(self) -> None:
        sdr, self._sdr = self._sdr, None
        if sdr is not None:
            # Closing a device that was unplugged fails; it is gone either way.
            with contextlib.suppress(Exception):
                sdr.close()


@dataclass(frozen=True, slots=True)
class DongleInfo:
    """One RTL-SDR seen by librtlsdr. `tuner` is None when the device could not be opened
    (in use by another program, or no permission)."""

    index: int
    name: str
    manufacturer: str
    product: str
    serial: str
    tuner: str | None


def _load_librtlsdr() -> ctypes.CDLL:
    """librtlsdr: pyrtlsdrlib's copy when installed, else the system's."""
    candidates: list[str] = []
    try:
        import pyrtlsdrlib  # type: ignore[import-not-found]

        candidates += [str(p) for p in pyrtlsdrlib.get_library_files()]
    except Exception:  # not installed, or an API we do not know
        pass
    found = ctypes.util.find_library("rtlsdr")
    if found:
        candidates.append(found)
    candidates += ["librtlsdr.so.0", "librtlsdr.so", "librtlsdr.dylib", "rtlsdr.dll"]
    for name in candidates:
        with contextlib.suppress(OSError):
            return ctypes.CDLL(name)
    raise DeviceUnavailableError("library", "librtlsdr not found (apt-get install librtlsdr0, "
                                            f"or {INSTALL_HINT})")


def list_devices() -> list[DongleInfo]:
    """Dongles librtlsdr can see; raises DeviceUnavailableError when it is not installed."""
    lib = _load_librtlsdr()
    lib.rtlsdr_get_device_count.restype = ctypes.c_uint32
    lib.rtlsdr_get_device_name.restype = ctypes.c_char_p
    lib.rtlsdr_get_device_name.argtypes = [ctypes.c_uint32]
    lib.rtlsdr_open.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint32]
    lib.rtlsdr_get_tuner_type.argtypes = [ctypes.c_void_p]
    lib.rtlsdr_close.argtypes = [ctypes.c_void_p]
    out = []
    for index in range(int(lib.rtlsdr_get_device_count())):
        name = (lib.rtlsdr_get_device_name(index) or b"").decode(errors="replace")
        strings = [ctypes.create_string_buffer(256) for _ in range(3)]
        if lib.rtlsdr_get_device_usb_strings(ctypes.c_uint32(index), *strings) != 0:
            strings = [ctypes.create_string_buffer(b"?") for _ in range(3)]
        manufacturer, product, serial = (s.value.decode(errors="replace") for s in strings)
        tuner = None
        dev = ctypes.c_void_p()
        if lib.rtlsdr_open(ctypes.byref(dev), index) == 0:
            tuner = TUNER_TYPES.get(int(lib.rtlsdr_get_tuner_type(dev)), "unknown")
            lib.rtlsdr_close(dev)
        out.append(DongleInfo(index, name, manufacturer, product, serial, tuner))
    return out
