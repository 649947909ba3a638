"""sd_notify over real datagram sockets standing in for systemd's notify socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.systemd_notify import Notifier, notify


@pytest.fixture
def systemd_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket playing systemd, and the NOTIFY_SOCKET value naming it."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield sock, str(path)
    sock.close()


def _fields(sock: socket.socket) -> dict[str, str]:
    payload = sock.recv(4096).decode()
    assert payload.endswith("\n")
    return dict(line.split("=", 1) for line in payload.splitlines())


def test_ready_status_stopping_reach_the_notify_socket(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, address = systemd_socket
    notifier = Notifier({"NOTIFY_SOCKET": address})
    assert notifier.enabled

    assert notifier.ready(status="2 sources running")
    assert _fields(sock) == {"READY": "1", "STATUS": "2 sources running"}
    assert notifier.status("1520 events/s")
    assert _fields(sock) == {"STATUS": "1520 events/s"}
    assert notifier.stopping()
    assert _fields(sock) == {"STOPPING": "1"}
    assert notifier.extend_timeout(12.5)
    assert _fields(sock) == {"EXTEND_TIMEOUT_USEC": "12500000"}
    assert notifier.reloading()
    reloading = _fields(sock)
    assert reloading["RELOADING"] == "1"
    assert int(reloading["MONOTONIC_USEC"]) > 0
    notifier.close()


def test_abstract_namespace_socket(tmp_path: Path) -> None:
    name = f"geosensord-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert _fields(sock) == {"READY": "1"}
        notifier.close()


def test_newlines_in_a_status_cannot_inject_fields(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, address = systemd_socket
    assert Notifier({"NOTIFY_SOCKET": address}).status("bad feed\nSTOPPING=1")
    assert _fields(sock) == {"STATUS": "bad feed STOPPING=1"}


def test_watchdog_interval_is_half_the_period_for_this_pid(
    systemd_socket: tuple[socket.socket, str],
) -> None:
    sock, address = systemd_socket
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier(env)
    assert notifier.watchdog_interval_s() == 15.0
    assert notifier.watchdog()
    assert _fields(sock) == {"WATCHDOG": "1"}


def test_watchdog_for_another_pid_is_not_ours(systemd_socket: tuple[socket.socket, str]) -> None:
    _, address = systemd_socket
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}
    notifier = Notifier(env)
    assert notifier.watchdog_interval_s() is None
    assert notifier.watchdog() is False


def test_watchdog_without_pid_applies_to_us(systemd_socket: tuple[socket.socket, str]) -> None:
    _, address = systemd_socket
    assert (
        Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "1000000"}).watchdog_interval_s()
        == 0.5
    )
    assert (
        Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "junk"}).watchdog_interval_s() is None
    )


def test_everything_is_a_no_op_outside_systemd() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.stopping() is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval_s() is None
    assert Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).ready() is False


def test_a_vanished_socket_returns_false_instead_of_raising(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_module_notify_reads_the_environment(
    systemd_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = systemd_socket
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert notify(READY=1, STATUS="up")
    assert _fields(sock) == {"READY": "1", "STATUS": "up"}
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify(READY=1) is False


def test_field_names_must_be_upper_case() -> None:
    with pytest.raises(ValueError, match="upper-case"):
        Notifier({"NOTIFY_SOCKET": "/nonexistent"}).notify(ready=1)
