"""deploy/: the install script's plan (dry run only), the unit file, udev rule, blacklist.

Nothing here changes the machine: the script only ever runs with --dry-run, and the
tests check that the paths it would create are still as they were afterwards.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
INSTALL_SH = DEPLOY / "install.sh"
UNIT = DEPLOY / "geosensord.service"

# Everything a real install would create or change.
MACHINE_PATHS = [
    Path("/opt/geosensord"),
    Path("/etc/geosensord"),
    Path("/etc/systemd/system/geosensord.service"),
    Path("/etc/systemd/system/geosensord.service.d"),
    Path("/etc/udev/rules.d/99-rtlsdr.rules"),
    Path("/etc/modprobe.d/blacklist-rtlsdr.conf"),
    Path("/var/lib/geosensord"),
]


def _machine_state() -> tuple[object, ...]:
    user = subprocess.run(["getent", "passwd", "geosensord"], capture_output=True, text=True)
    paths = tuple(p.exists() for p in MACHINE_PATHS)
    return (user.stdout, paths)


def _fake_bin(tmp_path: Path, **scripts: str) -> Path:
    """A directory of stub commands to put first on PATH (read-only probes only)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, body in scripts.items():
        path = bin_dir / name.replace("_", "-")
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return bin_dir


def _dry_run(*args: str, path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path_prefix is not None:
        env["PATH"] = f"{path_prefix}{os.pathsep}{env.get('PATH', '')}"
    before = _machine_state()
    result = subprocess.run(
        ["bash", str(INSTALL_SH), "--dry-run", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert _machine_state() == before, "a dry run changed the machine"
    return result


def _commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def test_install_script_is_valid_bash() -> None:
    subprocess.run(["bash", "-n", str(INSTALL_SH)], check=True)
    assert INSTALL_SH.read_text().splitlines()[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in INSTALL_SH.read_text()
    assert os.access(INSTALL_SH, os.X_OK)


def test_install_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    result = subprocess.run(["shellcheck", str(INSTALL_SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_dry_run_on_a_fresh_machine_plans_every_step(tmp_path: Path) -> None:
    # A fresh Debian: no redis-server package, no geosensord user (stubbed probes).
    fake = _fake_bin(tmp_path, dpkg_query="exit 1", getent='[ "$1" = group ] && exit 0; exit 2')
    prefix = tmp_path / "prefix"
    result = _dry_run("--prefix", str(prefix), path_prefix=fake)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    cmds = _commands(out)
    assert "nothing is changed" in out
    assert not prefix.exists()

    apt = [c for c in cmds if "apt-get install -y" in c]
    assert apt and "redis-server" in apt[0] and "python3-venv" in apt[0]
    assert "gcc" in apt[0] and "python3-dev" in apt[0]  # to build the C extension
    # We installed redis-server only for its binary: its own service gets disabled.
    assert any(re.search(r"systemctl disable.* redis-server\.service", c) for c in cmds)
    assert any(c.startswith("useradd --system") and c.endswith(" geosensord") for c in cmds)
    assert any("usermod --append --groups plugdev\\,dialout geosensord" in c for c in cmds)
    assert any(c.endswith(f"python3 -m venv {prefix}/venv") for c in cmds)
    assert any(f"{prefix}/venv/bin/pip install" in c and "\\[sdr\\]" in c for c in cmds)
    config = [
        c for c in cmds if c.endswith("/etc/geosensord/config.toml  (mode 0640, group geosensord)")
    ]
    if Path("/etc/geosensord/config.toml").exists():  # a real install on this machine
        assert "kept the existing /etc/geosensord/config.toml" in out
    else:
        assert config and f"{prefix}/src/recordings/" in config[0]
    if not Path("/etc/geosensord/redis-password").exists():
        assert any("/etc/geosensord/redis-password" in c for c in cmds)
    assert any("check-config /etc/geosensord/config.toml" in c for c in cmds)
    assert f"install -D -m 0644 {DEPLOY}/99-rtlsdr.rules /etc/udev/rules.d/99-rtlsdr.rules" in cmds
    assert (
        f"install -D -m 0644 {DEPLOY}/blacklist-rtlsdr.conf /etc/modprobe.d/blacklist-rtlsdr.conf"
        in cmds
    )
    unit = [c for c in cmds if c.endswith("> /etc/systemd/system/geosensord.service")]
    assert unit and f"/opt/geosensord#{prefix}#g" in unit[0]
    assert "==> systemctl daemon-reload and enable --now geosensord" in out
    if Path("/run/systemd/system").is_dir():
        assert "systemctl daemon-reload" in cmds
        assert "systemctl enable --now geosensord.service" in cmds
    else:
        assert "systemctl enable geosensord.service" in cmds


def test_dry_run_keeps_an_already_installed_redis_and_user(tmp_path: Path) -> None:
    fake = _fake_bin(
        tmp_path,
        dpkg_query="echo 'install ok installed'",
        getent="echo 'geosensord:x:999:999::/var/lib/geosensord:/usr/sbin/nologin'",
    )
    result = _dry_run(path_prefix=fake)
    assert result.returncode == 0, result.stderr
    cmds = _commands(result.stdout)
    assert "redis-server was already installed" in result.stdout
    assert not any("redis-server" in c for c in cmds)
    assert not any(c.startswith("useradd") for c in cmds)
    assert "user geosensord exists" in result.stdout


def test_dry_run_remote_redis_installs_no_redis_server(tmp_path: Path) -> None:
    fake = _fake_bin(tmp_path, dpkg_query="exit 1")
    result = _dry_run("--remote-redis", path_prefix=fake)
    assert result.returncode == 0, result.stderr
    cmds = _commands(result.stdout)
    assert any("apt-get install -y" in c for c in cmds)
    assert not any("redis-server" in c for c in cmds)
    assert "set [redis] url" in result.stdout


def test_dry_run_uninstall_removes_the_service_and_keeps_the_data() -> None:
    result = _dry_run("--uninstall")
    assert result.returncode == 0, result.stderr
    cmds = _commands(result.stdout)
    removals = " ".join(c for c in cmds if c.startswith("rm "))
    for removed in (
        "/etc/systemd/system/geosensord.service",
        "/etc/udev/rules.d/99-rtlsdr.rules",
        "/etc/modprobe.d/blacklist-rtlsdr.conf",
        "/opt/geosensord",
    ):
        assert removed in removals
    assert "/etc/geosensord " not in removals + " "
    assert "/var/lib/geosensord" not in removals
    assert any(re.match(r"systemctl disable( --now)? geosensord\.service", c) for c in cmds)
    assert "kept: /etc/geosensord" in result.stdout
    assert "/var/lib/geosensord" in result.stdout


def test_unknown_option_is_refused() -> None:
    result = _dry_run("--frobnicate")
    assert result.returncode == 2
    assert "unknown option: --frobnicate" in result.stderr


def test_relative_prefix_is_refused() -> None:
    result = _dry_run("--prefix", "opt/geosensord")
    assert result.returncode == 2
    assert "absolute" in result.stderr


def _unit_values() -> dict[str, dict[str, list[str]]]:
    """Every key of the unit with all its values (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


def test_unit_parses_into_the_expected_keys() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]
    service = parser["Service"]
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "TimeoutStopSec": "30",
        "User": "geosensord",
        "SupplementaryGroups": "plugdev dialout",
        "StateDirectory": "geosensord",
        "LoadCredential": "redis-password:/etc/geosensord/redis-password",
        "ExecStartPre": "/opt/geosensord/venv/bin/geosensord check-config "
        "/etc/geosensord/config.toml",
        "ExecStart": "/opt/geosensord/venv/bin/geosensord run --config /etc/geosensord/config.toml",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "LockPersonality": "yes",
        "CapabilityBoundingSet": "",
        "DevicePolicy": "closed",
        "KillMode": "mixed",
    }
    assert {k: service.get(k) for k in expected} == expected
    assert "PrivateDevices" not in service  # would hide hot-plugged USB and serial nodes
    assert parser["Install"]["WantedBy"] == "multi-user.target"

    repeated = _unit_values()["Service"]
    assert repeated["ExecReload"] == [
        "/opt/geosensord/venv/bin/geosensord check-config /etc/geosensord/config.toml",
        "/bin/kill -HUP $MAINPID",
    ]
    assert {"char-usb_device rw", "char-ttyUSB rw", "char-ttyACM rw"} <= set(
        repeated["DeviceAllow"]
    )
    assert repeated["SystemCallFilter"] == ["@system-service", "~@privileged"]
    multi = ("ExecReload", "DeviceAllow", "SystemCallFilter")
    assert all(len(v) == 1 for k, v in repeated.items() if k not in multi)


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart binaries exist: point the prefix at a stub.
    prefix = tmp_path / "prefix"
    (prefix / "venv" / "bin").mkdir(parents=True)
    stub = prefix / "venv" / "bin" / "geosensord"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    unit = tmp_path / "geosensord.service"
    unit.write_text(UNIT.read_text().replace("/opt/geosensord", str(prefix)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 even for unknown keys or bad values; those are printed with the
    # file name, so any line naming our unit is a finding.
    findings = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "geosensord.service" in line
    ]
    assert result.returncode == 0, result.stderr
    assert findings == []


def test_udev_rule_gives_plugdev_the_rtl2832_dongles() -> None:
    rules = [
        line
        for line in (DEPLOY / "99-rtlsdr.rules").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    products = set()
    for rule in rules:
        assert 'ATTRS{idVendor}=="0bda"' in rule
        assert 'GROUP="plugdev"' in rule
        assert 'MODE="0660"' in rule
        match = re.search(r'ATTRS\{idProduct\}=="([0-9a-f]{4})"', rule)
        assert match is not None
        products.add(match.group(1))
    assert products == {"2838", "2832"}


def test_blacklist_names_the_dvb_drivers() -> None:
    entries = {
        line.split()[1]
        for line in (DEPLOY / "blacklist-rtlsdr.conf").read_text().splitlines()
        if line.startswith("blacklist ")
    }
    assert entries == {"dvb_usb_rtl28xxu", "rtl2832", "rtl2832_sdr", "e4000"}


MDWE_PROBE = textwrap.dedent("""
    import ctypes, sys, tempfile
    from pathlib import Path

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
        print("SKIP: kernel without PR_SET_MDWE (Linux >= 6.3)")
        sys.exit(0)

    import numpy as np
    iq = np.random.default_rng(1).integers(0, 256, 1 << 16, dtype=np.uint8)
    mag = np.hypot(iq[0::2] - 127.5, iq[1::2] - 127.5)
    assert np.fft.rfft(mag).shape == (mag.size // 2 + 1,)

    # A ctypes callback needs a libffi closure: the W+X risk MemoryDenyWriteExecute guards.
    CMP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int))
    arr = (ctypes.c_int * 4)(3, 1, 4, 2)
    libc.qsort(arr, 4, ctypes.sizeof(ctypes.c_int), CMP(lambda a, b: a[0] - b[0]))
    assert list(arr) == [1, 2, 3, 4]

    import redis
    from daemon.embedded_redis import EmbeddedRedis, EmbeddedRedisError
    try:
        srv = EmbeddedRedis(Path(tempfile.mkdtemp()))
        srv.start()
    except EmbeddedRedisError as exc:
        print("NO-REDIS:", exc)
        sys.exit(0)
    try:
        client = redis.Redis.from_url(srv.url)
        assert client.eval("return redis.call('XADD', KEYS[1], '*', 'v', '1')", 1, "s")
    finally:
        srv.stop()
    print("OK")
""")


def test_runtime_works_under_memory_deny_write_execute() -> None:
    """The unit sets MemoryDenyWriteExecute=yes; prove numpy, ctypes and Redis cope."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_MDWE is Linux-only")
    result = subprocess.run(
        [sys.executable, "-c", MDWE_PROBE],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    if result.stdout.startswith("SKIP"):
        pytest.skip(result.stdout.strip())
    last = result.stdout.strip().splitlines()[-1]
    # Without any redis-server binary only the numpy and ctypes parts ran (and passed).
    assert last == "OK" or last.startswith("NO-REDIS:"), result.stdout
