"""`geosensord run`: the service's main loop.

Start: open the runtime (embedded Redis, sink, spool, pipeline), start every
configured source under the supervisor, tell systemd READY=1. Loop: supervise
the embedded Redis, pet the watchdog, publish STATUS= with per-source counts.
SIGTERM/SIGINT: stop the sources, drain the queue, flush the sink, STOPPING=1,
exit 0. With `once`, each source does one pass, the pipeline drains, and the
exit code says whether every source succeeded.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from daemon.config import Config
from daemon.runtime import Runtime, open_runtime
from daemon.sources import build_source
from daemon.supervisor import Supervisor
from daemon.systemd_notify import Notifier

log = logging.getLogger(__name__)


def status_line(rt: Runtime, sup: Supervisor) -> str:
    """A one-line summary for systemd's STATUS= and the logs."""
    m = rt.metrics
    parts = [f"{name}={int(m.get('events_in_total', source=name))}" for name in sup.states]
    redis_state = "up" if rt.pipeline.primary_ok else "DOWN"
    spool = rt.pipeline.spool.depth() if rt.pipeline.spool is not None else 0
    written = int(m.total("events_written_total"))
    return f"redis {redis_state}, written {written}, spool {spool}; " + " ".join(parts)


def start_sources(rt: Runtime, sup: Supervisor, once: bool) -> None:
    """Build every configured source and start it under the supervisor."""
    ctx = rt.source_context()
    for name, cfg in rt.config.sources.items():
        source = build_source(name, cfg, ctx)
        sup.start(source, rt.pipeline.emitter(source.producer, name), once=once)


def run_service(config: Config, once: bool = False, stop_timeout_s: float = 25.0) -> int:
    """Run until SIGTERM/SIGINT (or, with `once`, until every source did one pass)."""
    notifier = Notifier()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    rt = open_runtime(config)
    sup = Supervisor(rt.metrics)
    ok = True
    try:
        start_sources(rt, sup, once)
        notifier.ready()
        log.info(
            "geosensord running: %d sources, redis %s", len(sup.states), rt.sink.options.display_url
        )
        interval_s = min(5.0, notifier.watchdog_interval_s() or 5.0)
        last_status = 0.0
        while not stop.is_set():
            if once and sup.all_done():
                break
            stop.wait(min(interval_s, 0.2) if once else interval_s)
            if rt.embedded is not None and rt.embedded.supervise_once():
                log.warning("embedded redis-server died and was restarted")
            notifier.watchdog()
            if time.monotonic() - last_status >= 5.0:
                notifier.status(status_line(rt, sup))
                last_status = time.monotonic()
        notifier.stopping()
        sup.stop()
        stuck = sup.join(stop_timeout_s / 2)
        if stuck:
            log.error("sources did not stop in time: %s", ", ".join(stuck))
        if once:
            rt.pipeline.wait_idle(stop_timeout_s / 2)
            ok = all(not s.failures for s in sup.states.values())
    finally:
        drained = rt.close(stop_timeout_s / 2)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %s", status_line(rt, sup))
    return 0 if ok and drained else 1
