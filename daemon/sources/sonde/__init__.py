"""Radiosondes: the `rs41`, `autorx` and `sondehub` source types (see README.md here).

Types (each a module with FIELDS and build, registered in daemon.sources):

    rs41      an SDR (rtl_tcp, RTL-SDR) or a recording (u8/cs16 IQ, WAV audio) tuned
              near a Vaisala RS41, decoded here with hardware.rs41      -> rs41.py
    autorx    radiosonde_auto_rx's PAYLOAD_SUMMARY UDP JSON (port 55673) -> autorx.py
    sondehub  the SondeHub v2 HTTP API, polled                         -> sondehub.py

All three emit the same `sonde.telemetry` event (telemetry.py): id
``sonde:<serial>:<frame>``, t in UTC, alt ellipsoidal, data in SI units.
"""

from daemon.sources.sonde.telemetry import KIND, FrameMemo, SondeFix, event_id

__all__ = ["KIND", "FrameMemo", "SondeFix", "event_id"]
