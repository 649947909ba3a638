"""`geosensord devices` and `geosensord rtl-tcp-replay` (the command modules)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from daemon.commands import devices, rtl_tcp_replay


def parse(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def test_devices_json_reports_dongles_or_why_not_and_serial_ports(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert devices.run(parse(devices, ["--json"])) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report["rtlsdr"], list)
    assert report["rtlsdr"] or report["rtlsdr_error"] is None or "librtlsdr" in report[
        "rtlsdr_error"]
    assert isinstance(report["serial"], list)


def test_serial_ports_prefer_the_stable_by_id_path(tmp_path: Path) -> None:
    node = tmp_path / "ttyACM7"
    node.touch()
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Arduino_Uno_8573-if00").symlink_to(node)
    ports = devices.serial_ports(by_id)
    entry = next(p for p in ports if p["device"] == str(node))
    assert entry["path"] == str(by_id / "usb-Arduino_Uno_8573-if00")


def test_replay_of_a_missing_file_exits_2(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    args = parse(rtl_tcp_replay, [str(tmp_path / "nope.bin"), "--port", "0"])
    assert rtl_tcp_replay.run(args) == 2
    assert "nope.bin" in capsys.readouterr().err
