"""sd_notify(3) without libsystemd: readiness, status, stop and watchdog messages.

Wire format: one datagram per message on the AF_UNIX/SOCK_DGRAM socket named by
``$NOTIFY_SOCKET``, holding newline-separated ``KEY=VALUE`` assignments::

    READY=1\\nSTATUS=3 sources, 1520 events/s\\n

``$NOTIFY_SOCKET`` is a filesystem path (``/run/systemd/notify``) or, when it
starts with ``@``, a name in the Linux abstract namespace (the ``@`` stands for
a leading NUL byte). Other forms (``vsock:…`` in VMs) are not supported and
leave the notifier disabled.

Watchdog: with ``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` (the period in
µs) and ``$WATCHDOG_PID`` (the pid it applies to). The service must send
``WATCHDOG=1`` more often than the period; sd_watchdog_enabled(3) advises
every half period, which is what `Notifier.watchdog_interval_s` returns.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op returning False,
so the daemon calls these unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier", "notify"]

log = logging.getLogger(__name__)

# A blocked notify socket must not hang the run loop (and the watchdog with it).
SEND_TIMEOUT_S = 1.0


def _socket_address(value: str) -> str | None:
    """Turn ``$NOTIFY_SOCKET`` into an AF_UNIX address, or None when unsupported."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def _format(fields: Mapping[str, object]) -> bytes:
    """Encode ``KEY=VALUE`` lines; newlines inside values would split a field, so they go."""
    lines = []
    for key, value in fields.items():
        if not key.isidentifier() or not key.isupper():
            raise ValueError(f"sd_notify field names are upper-case identifiers, got {key!r}")
        text = str(value).replace("\r", " ").replace("\n", " ")
        lines.append(f"{key}={text}\n")
    return "".join(lines).encode()


class Notifier:
    """Sends sd_notify messages for this process; every method is a no-op outside systemd.

    `env` defaults to ``os.environ`` read at construction. Methods return True
    when the datagram was sent. Safe to call from several threads.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        raw = env.get("NOTIFY_SOCKET", "")
        self._address = _socket_address(raw) if raw else None
        if raw and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a path or @abstract name; not notifying", raw)
        self._watchdog_usec = self._read_watchdog(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @staticmethod
    def _read_watchdog(env: Mapping[str, str]) -> int | None:
        try:
            usec = int(env.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        if usec <= 0:
            return None
        pid_text = env.get("WATCHDOG_PID")
        # The watchdog may be meant for another process (e.g. a wrapper that exec'd us
        # would have a different pid); then it is not ours to feed.
        if pid_text is not None and pid_text.strip() != str(os.getpid()):
            return None
        return usec

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a usable ``$NOTIFY_SOCKET``."""
        return self._address is not None

    def notify(self, **fields: object) -> bool:
        """Send one message with the given fields, e.g. ``notify(READY=1, STATUS="up")``."""
        if self._address is None or not fields:
            return False
        payload = _format(fields)
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.settimeout(SEND_TIMEOUT_S)
                self._sock = sock
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            # Warn once: a vanished socket would otherwise log every watchdog tick.
            if not self._warned:
                log.warning("sd_notify to %r failed: %s", self._address.lstrip("\0"), exc)
                self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd start-up is complete (``READY=1``), optionally with a status line."""
        if status is None:
            return self.notify(READY=1)
        return self.notify(READY=1, STATUS=status)

    def status(self, text: str) -> bool:
        """Set the one-line status shown by ``systemctl status`` (``STATUS=``)."""
        return self.notify(STATUS=text)

    def reloading(self) -> bool:
        """Announce a configuration reload (``RELOADING=1``); send `ready` when done.

        ``MONOTONIC_USEC`` (CLOCK_MONOTONIC, µs) is included because
        ``Type=notify-reload`` (systemd >= 253) requires it.
        """
        return self.notify(
            RELOADING=1, MONOTONIC_USEC=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        )

    def stopping(self, status: str | None = None) -> bool:
        """Tell systemd the service is shutting down (``STOPPING=1``)."""
        if status is None:
            return self.notify(STOPPING=1)
        return self.notify(STOPPING=1, STATUS=status)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for `seconds` more before the start/stop timeout fires (``EXTEND_TIMEOUT_USEC``)."""
        return self.notify(EXTEND_TIMEOUT_USEC=max(0, round(seconds * 1_000_000)))

    def watchdog(self) -> bool:
        """Feed the watchdog (``WATCHDOG=1``); call every `watchdog_interval_s` seconds."""
        if self._watchdog_usec is None:
            return False
        return self.notify(WATCHDOG=1)

    def watchdog_interval_s(self) -> float | None:
        """How often to call `watchdog`: half of ``$WATCHDOG_USEC``, in seconds.

        None when no watchdog is configured for this process.
        """
        if self._watchdog_usec is None or self._address is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def close(self) -> None:
        """Close the datagram socket (a later call opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def notify(**fields: object) -> bool:
    """One-shot sd_notify with ``$NOTIFY_SOCKET`` from the environment; False outside systemd."""
    notifier = Notifier()
    try:
        return notifier.notify(**fields)
    finally:
        notifier.close()
