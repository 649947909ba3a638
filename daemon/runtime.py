"""Builds the running parts of the daemon from a validated Config.

`open_runtime(config)` starts the embedded Redis when configured, connects the
Redis Streams sink, opens the spool and the mirror sinks, and starts the
pipeline's sink thread. It is a context manager: on exit the pipeline is drained
and flushed and the embedded Redis is shut down. `geosensord run`, `replay`,
`backfill` and the tests all go through it, so they publish with the same
dedupe and the same guarantees.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from daemon.config import Config, ConfigError, ConfigErrors
from daemon.embedded_redis import EmbeddedRedis
from daemon.encode import EntryEncoder
from daemon.metrics import Metrics
from daemon.pipeline import Pipeline, Spool
from daemon.s2index import S2Indexer
from daemon.sequence import SequenceStore
from daemon.sinks_registry import build_sink
from daemon.sources.base import SourceContext, Station
from sinks.base import SinkError
from sinks.redis_connection import RedisOptions
from sinks.redis_streams import RedisStreamsSink

log = logging.getLogger(__name__)


def read_password(config: Config) -> str:
    """The Redis password from `password` or `password_file`.

    ``password_file = "credential:NAME"`` reads systemd's
    ``$CREDENTIALS_DIRECTORY/NAME`` (the unit's ``LoadCredential=``). A password
    file that every user may read is refused (a config error naming the key and
    the file): a secret another account can read is already leaked.
    """
    r = config.redis
    if r["password"]:
        return str(r["password"])
    spec = str(r["password_file"])
    if not spec:
        return ""

    def problem(message: str) -> ConfigErrors:
        return ConfigErrors([ConfigError(config.path, None, "redis.password_file", message)])

    if spec.startswith("credential:"):
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if not cred_dir:
            raise problem("credential: needs $CREDENTIALS_DIRECTORY (LoadCredential= in the unit)")
        path = Path(cred_dir) / spec.removeprefix("credential:")
    else:
        path = config.resolve(spec)
    try:
        mode = path.stat().st_mode
        if mode & stat.S_IROTH:
            raise problem(
                f"{path} is readable by every user (mode {stat.S_IMODE(mode):04o}); "
                f"restrict it, e.g. chmod 600 {path}"
            )
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise problem(f"cannot read {path}: {exc.strerror}") from None


def make_spool(state_dir: Path, cfg: dict[str, Any] | None = None) -> Spool:
    """The disk spool in ``<state_dir>/spool`` as `[spool]` configures it (MiB sizes)."""
    from sinks.spool import DiskSpool, MiB

    cfg = cfg or {}
    spool: Spool = DiskSpool(
        state_dir / "spool",
        max_bytes=round(float(cfg.get("max_mb", 256.0)) * MiB),
        segment_bytes=round(float(cfg.get("segment_mb", 4.0)) * MiB),
        policy=str(cfg.get("policy", "drop_oldest")),
        fsync=str(cfg.get("fsync", "batch")),
        fsync_interval_s=float(cfg.get("fsync_interval_s", 1.0)),
    )
    return spool


@dataclass
class Runtime:
    """The running daemon parts (see the module docstring)."""

    config: Config
    metrics: Metrics
    station: Station
    indexer: S2Indexer
    sink: RedisStreamsSink
    pipeline: Pipeline
    embedded: EmbeddedRedis | None = None
    lock_fd: int | None = None

    def source_context(self) -> SourceContext:
        """The context handed to each source."""
        return SourceContext(
            station=self.station,
            metrics=self.metrics,
            state_dir=self.config.state_dir,
            config_dir=Path(self.config.path).resolve().parent,
            memo=self.sink.memo,
        )

    def close(self, timeout_s: float = 20.0, on_wait: Callable[[], None] | None = None) -> bool:
        """Drain and flush the pipeline, then stop the embedded Redis; True if nothing was left.

        `on_wait` is called about every second while the drain goes on.
        """
        drained = self.pipeline.stop(timeout_s, on_wait=on_wait)
        spool = self.pipeline.spool
        # A sink thread that outlived the stop timeout may still write to the spool.
        if spool is not None and not self.pipeline.sink_thread_alive:
            spool.close()
        if self.embedded is not None:
            self.embedded.stop()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None
        return drained

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


def embedded_server(config: Config) -> EmbeddedRedis:
    """The embedded Redis of this config's state directory (not started)."""
    return EmbeddedRedis(
        config.state_dir / "redis",
        binary=str(config.redis["server_binary"]) or None,
        maxmemory_mb=int(config.redis["maxmemory_mb"]),
    )


def start_embedded(config: Config, attach: bool) -> EmbeddedRedis | None:
    """Start the embedded Redis when the config asks for one; return it (the caller stops it).

    With `attach`, a server that already answers on the socket (the running daemon's) is
    used as it is and None is returned, as for an external Redis.
    """
    if config.redis["url"] != "embedded":
        return None
    embedded = embedded_server(config)
    if attach and _answers(embedded.socket_path):
        log.info("using the running daemon's embedded redis at %s", embedded.socket_path)
        return None
    embedded.start()
    return embedded


def redis_options(config: Config, embedded: EmbeddedRedis | None) -> RedisOptions:
    """Connection options from `[redis]` (the embedded server's socket when embedded)."""
    r = config.redis
    if embedded is None and r["url"] == "embedded":
        embedded = embedded_server(config)
    return RedisOptions(
        url=embedded.url if embedded is not None else str(r["url"]),
        username=str(r["username"]),
        password=read_password(config),
        tls_ca_file=str(r["tls_ca_file"]),
        tls_cert_file=str(r["tls_cert_file"]),
        tls_key_file=str(r["tls_key_file"]),
        tls_verify=bool(r["tls_verify"]),
        socket_timeout_s=float(r["socket_timeout_s"]),
    )


def _answers(socket_path: Path) -> bool:
    """Whether a Redis server answers PING on a unix socket."""
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


class StateDirLocked(RuntimeError):
    """Another daemon already runs with this state directory."""


def lock_state_dir(state_dir: Path) -> int:
    """Take the daemon's exclusive lock on `state_dir` (held until the process exits)."""
    fd = os.open(state_dir / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirLocked(
            f"another geosensord is running with state directory {state_dir}"
        ) from None
    return fd


def open_runtime(config: Config, metrics: Metrics | None = None, role: str = "daemon") -> Runtime:
    """Start the embedded Redis (if configured), the sinks and the pipeline.

    `role` "daemon" owns the state directory (exclusive lock, the spool, the
    embedded server). Any other role (e.g. "backfill") is a client beside a
    running daemon: it attaches to the daemon's embedded Redis when it answers
    (starting its own only when none does), keeps its sequences in
    ``sequences.<role>.json``, and has no spool (it retries instead).
    """
    metrics = metrics or Metrics()
    read_password(config)  # a bad password file is a config error before anything starts
    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    owner = role == "daemon"
    lock_fd = lock_state_dir(state_dir) if owner else None
    embedded = start_embedded(config, attach=not owner)
    options = redis_options(config, embedded)
    streams = config.streams
    indexer = S2Indexer(tuple(streams["index_levels"]), int(streams["cell_stream_level"]))
    encoder = EntryEncoder(indexer)
    stream_options: dict[str, Any] = {
        "prefix": str(streams["prefix"]),
        "maxlen": int(streams["maxlen"]),
        "cell_maxlen": int(streams["cell_maxlen"]),
        "max_age_s": int(streams["max_age_s"]),
        "global_stream": bool(streams["global_stream"]),
        "source_streams": bool(streams["source_streams"]),
        "cell_streams": bool(streams["cell_streams"]),
    }
    sink: RedisStreamsSink
    if options.is_cluster:
        from sinks.redis_cluster import ClusterStreamsSink

        sink = ClusterStreamsSink(
            options,
            encoder.field_names,
            wait_replicas=int(config.redis["wait_replicas"]),
            wait_timeout_ms=int(config.redis["wait_timeout_ms"]),
            **stream_options,
        )
    else:
        sink = RedisStreamsSink(options, encoder.field_names, **stream_options)

    def committed(producer: str) -> int | None:
        try:
            return sink.committed_offset(producer)
        except SinkError:
            return None

    seq_file = "sequences.json" if owner else f"sequences.{role}.json"
    seqs = SequenceStore(state_dir / seq_file, committed=committed)
    mirrors = [build_sink(name, cfg, config.resolve) for name, cfg in config.sinks.items()]
    pipe = config.pipeline
    pipeline = Pipeline(
        encoder,
        sink,
        seqs,
        metrics,
        mirrors=mirrors,
        spool=make_spool(state_dir, config.spool) if owner else None,
        queue_size=int(pipe["queue_size"]),
        batch_size=int(pipe["batch_size"]),
        batch_latency_s=int(pipe["batch_latency_ms"]) / 1000.0,
    )
    try:
        sink.open()
    except SinkError as exc:
        log.warning("redis not reachable yet (%s); events will be spooled", exc)
    pipeline.start()
    st = config.station
    station = Station(str(st["id"]), float(st["lat"]), float(st["lon"]), float(st["alt"]))
    rt = Runtime(config, metrics, station, indexer, sink, pipeline, embedded)
    rt.lock_fd = lock_fd
    return rt
