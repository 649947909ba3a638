"""``geosensord devices``: list RTL-SDR dongles and serial ports this host can see.

    geosensord devices [--json]

Dongles come from librtlsdr (index, USB name, serial, tuner; the tuner shows as
"busy" when another program has the dongle open). Serial ports are listed by their
stable ``/dev/serial/by-id/…`` paths where udev provides them (use those in config:
``/dev/ttyUSB0`` can change between boots), else by device node.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from hardware.iq.errors import DeviceUnavailableError
from hardware.iq.rtlsdr import list_devices

__all__ = ["add_arguments", "run", "serial_ports"]

BY_ID = Path("/dev/serial/by-id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options (wired by daemon.cli)."""
    parser.add_argument("--json", action="store_true", help="one JSON document")


def serial_ports(by_id_dir: Path = BY_ID) -> list[dict[str, str]]:
    """Serial ports: stable by-id path (when present), device node and description."""
    ports: dict[str, dict[str, str]] = {}
    try:
        from serial.tools import list_ports

        for p in list_ports.comports():
            ports[str(Path(p.device).resolve())] = {
                "path": p.device, "device": p.device, "description": p.description or ""}
    except ImportError:  # pyserial is a dependency, but keep the listing useful without it
        pass
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            node = str(link.resolve())
            entry = ports.setdefault(node, {"device": node, "description": ""})
            entry["path"] = str(link)
    return sorted(ports.values(), key=lambda p: p["path"])


def run(args: argparse.Namespace) -> int:
    """Print what was found; exit 0 (finding nothing is not an error)."""
    report: dict[str, Any] = {"rtlsdr": [], "rtlsdr_error": None, "serial": serial_ports()}
    try:
        report["rtlsdr"] = [
            {"index": d.index, "name": d.name, "manufacturer": d.manufacturer,
             "product": d.product, "serial": d.serial, "tuner": d.tuner or "busy"}
            for d in list_devices()
        ]
    except DeviceUnavailableError as exc:
        report["rtlsdr_error"] = str(exc)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("RTL-SDR dongles:")
    if report["rtlsdr_error"]:
        print(f"  (cannot list: {report['rtlsdr_error']})")
    elif not report["rtlsdr"]:
        print("  none found")
    for d in report["rtlsdr"]:
        print(f"  rtlsdr://{d['index']}  serial {d['serial']!r}  tuner {d['tuner']}  "
              f"{d['manufacturer']} {d['product']} ({d['name']})")
        print(f"      or by serial: rtlsdr://{d['serial']}")
    print("Serial ports:")
    if not report["serial"]:
        print("  none found")
    for p in report["serial"]:
        extra = f" -> {p['device']}" if p["device"] != p["path"] else ""
        print(f"  {p['path']}{extra}  {p['description']}".rstrip())
    sys.stdout.flush()
    return 0
