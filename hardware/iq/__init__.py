"""IQ sample sources: RTL-SDR dongle, rtl_tcp client (and a replay server), u8 IQ file.

See base.py for the interface (IqSource -> IqBlock) and errors.py for the failures.
The modules are imported on use: `hardware.iq.rtlsdr` loads pyrtlsdr only when a
dongle is opened.
"""

from hardware.iq.base import DEFAULT_BLOCK_SAMPLES, IqBlock, IqSource, TunerSettings
from hardware.iq.errors import (
    DeviceUnavailableError,
    IqConnectionError,
    IqProtocolError,
    IqSourceError,
)

__all__ = [
    "DEFAULT_BLOCK_SAMPLES",
    "DeviceUnavailableError",
    "IqBlock",
    "IqConnectionError",
    "IqProtocolError",
    "IqSource",
    "IqSourceError",
    "TunerSettings",
]
