"""ADS-B / Mode S sources (see README.md beside this file).

Types (each a module with FIELDS and build, registered in daemon.sources):

    adsb    IQ samples from rtl_tcp://HOST:PORT, rtlsdr://INDEX|SERIAL or a u8 IQ
            file, demodulated here (hardware.modes.receiver)      -> source.py
    beast   Beast binary feed of dump1090/readsb (TCP 30005)      -> beast.py
    raw     raw hex (AVR) feed, *HEX; and @TIMESTAMPHEX; (30002)  -> raw.py
    sbs     SBS BaseStation CSV feed (TCP 30003)                  -> sbs.py

Modules: tracker (messages -> aircraft -> events, shared by every type), feeds (the
TCP client with reconnect/backoff behind beast, raw and sbs). The `input` key and the
reader thread with its drop policy are shared with the rs41 source:
daemon.sources.iq_input and daemon.sources.iq_pump.

Config of `type = "adsb"` (every key, with its default)::

    [sources.adsb]
    type = "adsb"
    input = "rtl_tcp://127.0.0.1:1234"   # or "rtlsdr://0", "file:///path.bin", "path.bin"
    rate = 2000000            # sample rate, Hz: 2000000 or 2400000
    frequency_hz = 1090000000
    gain = "auto"             # or the tuner gain in dB, e.g. 49.6
    ppm = 0                   # frequency correction
    agc = false               # RTL2832 digital AGC
    bias_tee = false          # power an LNA over the coax
    realtime = false          # files: pace at the sample rate (and drop when behind)
    loop = false              # files: start over at the end
    start_time = ""           # files: time of the first sample; "" = the file's mtime,
                              # "now", epoch seconds or ISO 8601
    min_interval_s = 1.0      # at most one aircraft.position per aircraft per interval
    max_range_km = 400.0      # positions further from the receiver are rejected
    receiver_lat = …          # receiver location (CPR reference, range check);
    receiver_lon = …          # default: the [station] location
    raw_stream = false        # also publish every message as an aircraft.raw event
    max_fix_bits = 1          # CRC repair: 0 off, 1 (default), 2 (risky)
    queue_blocks = 8          # IQ blocks buffered between reader and demodulator
    block_samples = 131072    # complex samples per block (65.5 ms at 2 MS/s)
    batch_samples = 1048576   # samples gathered before demodulating (0.52 s at 2 MS/s): the
                              # most a message waits; smaller costs more CPU (0: every block)
    native_kernels = "auto"   # compiled demodulator kernels where built; false: numpy
    timeout_s = 10.0          # rtl_tcp: connect timeout and longest silence
    backoff_max_s = 30.0      # cap of the reconnect/retry backoff
"""

from __future__ import annotations

from typing import Any

from daemon.config import Field, between
from daemon.sources.adsb.source import AdsbSource, native_check, start_time_check
from daemon.sources.base import SourceContext
from daemon.sources.iq_input import gain_check, input_check
from hardware.modes.receiver import DEFAULT_BATCH_SAMPLES

__all__ = ["FIELDS", "AdsbSource", "build", "common_fields"]


def _rate_check(value: Any) -> str | None:
    return None if value in (2_000_000, 2_400_000) else f"{value!r}: use 2000000 or 2400000"


def common_fields() -> dict[str, Field]:
    """Keys shared by every ADS-B source type."""
    return {
        "min_interval_s": Field((float,), default=1.0, check=between(0, 3600),
                                doc="at most one aircraft.position per aircraft per interval"),
        "max_range_km": Field((float,), default=400.0, check=between(1, 1000),
                              doc="reject positions further than this from the receiver"),
        "receiver_lat": Field((float,), default=None, check=between(-90, 90),
                              doc="receiver latitude; default the station's"),
        "receiver_lon": Field((float,), default=None, check=between(-180, 180),
                              doc="receiver longitude; default the station's"),
        "backoff_max_s": Field((float,), default=30.0, check=between(0.1, 3600),
                               doc="cap of the reconnect backoff"),
    }


FIELDS: dict[str, Field] = {
    "input": Field((str,), required=True, check=input_check,
                   doc="rtl_tcp://HOST:PORT, rtlsdr://INDEX|SERIAL, file:///PATH or a path"),
    "rate": Field((int,), default=2_000_000, check=_rate_check),
    "frequency_hz": Field((int,), default=1_090_000_000,
                          check=between(24_000_000, 1_766_000_000)),
    "gain": Field((str, float), default="auto", check=gain_check),
    "ppm": Field((int,), default=0, check=between(-1000, 1000)),
    "agc": Field((bool,), default=False),
    "bias_tee": Field((bool,), default=False),
    "realtime": Field((bool,), default=False),
    "loop": Field((bool,), default=False),
    "start_time": Field((str, float), default="", check=start_time_check),
    "raw_stream": Field((bool,), default=False),
    "max_fix_bits": Field((int,), default=1, check=between(0, 2)),
    "queue_blocks": Field((int,), default=8, check=between(1, 1024)),
    "block_samples": Field((int,), default=131_072, check=between(4096, 4_194_304)),
    "batch_samples": Field((int,), default=DEFAULT_BATCH_SAMPLES, check=between(0, 8_388_608)),
    "native_kernels": Field((str, bool), default="auto", check=native_check,
                            doc="compiled demodulator: \"auto\" (where built), true, false"),
    "timeout_s": Field((float,), default=10.0, check=between(0.1, 600)),
    **common_fields(),
}


def build(name: str, cfg: dict[str, Any], ctx: SourceContext) -> AdsbSource:
    """Factory used by the source registry."""
    return AdsbSource(name, cfg, ctx)
