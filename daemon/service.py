"""`geosensord run`: the service's main loop.

Start: open the runtime (embedded Redis, sink, spool, pipeline), start every
configured source under the supervisor, tell systemd READY=1. Loop: supervise
the embedded Redis, pet the watchdog, publish STATUS= with per-source counts.
SIGTERM/SIGINT: STOPPING=1, stop the sources, drain the queue, flush the sink,
exit 0. With `once`, each source does one pass, the pipeline drains, and the
exit code says whether every source succeeded.

Watchdog: WATCHDOG=1 is sent only while the pipeline makes progress: its sink
thread runs and has completed a step (delivered, spooled, waited idle for events,
or retried a held batch) within `pipeline_deadline_s`. A sink thread wedged in
one call longer than that stops the feeding, and systemd restarts the daemon
after WatchdogSec. The deadline is at least two socket timeouts (connect plus
reply of one attempt against a hanging Redis), so an outage, which is spooled,
never trips it.

Stop budget: `stop_timeout_s` (25 s, under the unit's TimeoutStopSec=30) is split
between the sources' join and the drain. While the drain goes on and the sink
thread progresses, EXTEND_TIMEOUT_USEC asks systemd for a few more seconds at a
time, so a long drain of a deep queue is not killed mid-way by a shorter
TimeoutStopSec; the drain itself never runs past its half of the budget.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from types import FrameType
from typing import Any

from daemon.config import Config, ConfigErrors, load_config
from daemon.gc_settings import settle_after_startup
from daemon.health import HealthServer
from daemon.malloc_settings import tune_malloc
from daemon.runtime import Runtime, StateDirLocked, open_runtime
from daemon.sources import build_source
from daemon.sources.base import Source
from daemon.status_display import build_status_display, runtime_snapshot
from daemon.supervisor import Supervisor
from daemon.systemd_notify import Notifier

log = logging.getLogger(__name__)

# Seconds asked of systemd per EXTEND_TIMEOUT_USEC while a drain progresses (sent
# every second, so a drain that stops moving runs out of extension within this).
EXTEND_STEP_S = 5.0


def status_line(rt: Runtime, sup: Supervisor) -> str:
    """A one-line summary for systemd's STATUS= and the logs."""
    m = rt.metrics
    parts = [f"{name}={int(m.get('events_in_total', source=name))}" for name in sup.states]
    redis_state = "up" if rt.pipeline.primary_ok else "DOWN"
    spool = rt.pipeline.spool.depth() if rt.pipeline.spool is not None else 0
    written = int(m.total("events_written_total"))
    return f"redis {redis_state}, written {written}, spool {spool}; " + " ".join(parts)


def health_state(rt: Runtime, sup: Supervisor) -> dict[str, Any]:
    """The /healthz body: ok when events are delivered or safely spooled and sources run."""
    sources = {
        name: {
            "running": st.running,
            "finished": st.finished,
            "failures": st.failures,
            "restarts": st.restarts,
            "stalls": st.stalls,
            "wedged": st.wedged,
            "last_error": st.last_error,
            "events": int(rt.metrics.get("events_in_total", source=name)),
        }
        for name, st in sup.states.items()
    }
    delivering = rt.pipeline.primary_ok or rt.pipeline.spool_accepting
    progressing = rt.pipeline.progressing(pipeline_deadline_s(rt.config, None))
    sources_ok = all((s["running"] or s["finished"]) and not s["wedged"] for s in sources.values())
    return {
        "ok": delivering and progressing and sources_ok,
        "ready": delivering,
        "sink_progress_age_s": round(rt.pipeline.seconds_since_progress(), 3),
        "redis": "up" if rt.pipeline.primary_ok else "down",
        "last_sink_error": rt.pipeline.last_error,
        "queue_depth": rt.pipeline.queue_depth(),
        "spool_depth": rt.pipeline.spool.depth() if rt.pipeline.spool is not None else 0,
        "sources": sources,
    }


def pipeline_deadline_s(config: Config, notifier: Notifier | None) -> float:
    """How long the sink thread may go without a step before it counts as wedged."""
    floor_s = 2 * float(config.redis["socket_timeout_s"]) + 1.0
    interval_s = notifier.watchdog_interval_s() if notifier is not None else None
    return max(floor_s, interval_s or 0.0)


def start_health(rt: Runtime, sup: Supervisor) -> HealthServer | None:
    """Start the HTTP endpoint when `[http] listen` is set; a busy port is logged, not fatal."""
    listen = str(rt.config.http["listen"])
    if not listen:
        return None
    try:
        server = HealthServer(listen, rt.metrics, lambda: health_state(rt, sup))
    except OSError as exc:
        log.error("health endpoint %s not available: %s", listen, exc.strerror)
        return None
    server.start()
    log.info("health and metrics on http://%s:%d/", listen.rpartition(":")[0], server.port)
    return server


def start_source(
    rt: Runtime, sup: Supervisor, name: str, cfg: dict[str, Any], once: bool
) -> Source:
    """Build one configured source and start it under the supervisor."""
    source = build_source(name, cfg, rt.source_context())
    sup.start(
        source,
        rt.pipeline.emitter(source.producer, name),
        once=once,
        stall_timeout_s=float(cfg.get("stall_timeout_s", 0.0)),
    )
    return source


def reload_config(rt: Runtime, sup: Supervisor, stop_timeout_s: float) -> None:
    """SIGHUP: re-read the config; restart the sources whose table changed.

    An invalid file is reported and ignored (the running config stays). Changes
    outside `[sources]` need a restart of the daemon and are reported as such.
    """
    try:
        new = load_config(rt.config.path)
    except (OSError, ConfigErrors) as exc:
        log.error("reload: keeping the running config; %s", exc)
        return
    old = rt.config
    for section in (
        "station", "redis", "streams", "pipeline", "state", "http", "sinks", "spool", "supervisor"
    ):
        if getattr(old, section) != getattr(new, section):
            log.warning("reload: [%s] changed; restart the daemon to apply it", section)
    changed = [n for n in old.sources if n in new.sources and old.sources[n] != new.sources[n]]
    removed = [n for n in old.sources if n not in new.sources]
    added = [n for n in new.sources if n not in old.sources]
    for name in changed + removed:
        if not sup.stop_source(name, stop_timeout_s):
            log.error("reload: source %s did not stop in time", name)
    rt.config = replace(old, sources=new.sources)
    for name in changed + added:
        try:
            start_source(rt, sup, name, new.sources[name], once=False)
        except Exception as exc:
            log.error("reload: source %s cannot start: %s", name, exc)
    log.info(
        "reloaded: %d restarted, %d added, %d removed, %d unchanged",
        len(changed),
        len(added),
        len(removed),
        len(new.sources) - len(changed) - len(added),
    )


def run_service(config: Config, once: bool = False, stop_timeout_s: float = 25.0) -> int:
    """Run until SIGTERM/SIGINT (or, with `once`, until every source did one pass)."""
    notifier = Notifier()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        stop.set()
        wake.set()

    reload_wanted = threading.Event()
    wake = threading.Event()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        reload_wanted.set()
        wake.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        rt = open_runtime(config)
    except (StateDirLocked, ConfigErrors) as exc:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.error("%s", exc)
        return 2 if isinstance(exc, ConfigErrors) else 1
    sup = Supervisor(
        rt.metrics,
        backoff_initial_s=float(config.supervisor["restart_initial_s"]),
        backoff_max_s=float(config.supervisor["restart_max_s"]),
    )
    deadline_s = pipeline_deadline_s(config, notifier)
    wedged_logged = False

    def extend_stop() -> None:
        # Only a drain that moves earns more time; a wedged one is left to the timeout.
        if rt.pipeline.progressing(deadline_s):
            notifier.extend_timeout(EXTEND_STEP_S)

    ok = True
    try:
        sources = {
            name: start_source(rt, sup, name, cfg, once) for name, cfg in config.sources.items()
        }
        http = start_health(rt, sup)
        display = build_status_display(
            config.status_display, runtime_snapshot(rt, list(sources)), sources, rt.metrics
        )
        if display is not None:
            display.start()
        settle_after_startup()  # GC: startup's objects frozen, higher thresholds
        tune_malloc()  # glibc: batch temporaries reuse the heap (no-op elsewhere)
        notifier.ready()
        log.info(
            "geosensord running: %d sources, redis %s", len(sup.states), rt.sink.options.display_url
        )
        interval_s = min(5.0, notifier.watchdog_interval_s() or 5.0)
        last_status = 0.0
        while True:
            if reload_wanted.is_set() and not stop.is_set():
                reload_wanted.clear()
                notifier.reloading()
                reload_config(rt, sup, stop_timeout_s / 2)
                notifier.ready()
            if stop.is_set() or (once and sup.all_done()):
                break
            wake.wait(min(interval_s, 0.2) if once else interval_s)
            wake.clear()
            if rt.embedded is not None and rt.embedded.supervise_once():
                log.warning("embedded redis-server died and was restarted")
            if rt.pipeline.progressing(deadline_s):
                notifier.watchdog()
                wedged_logged = False
            elif not wedged_logged:
                wedged_logged = True
                log.error(
                    "pipeline made no progress for %.0f s (sink thread %s); "
                    "not feeding the watchdog",
                    rt.pipeline.seconds_since_progress(),
                    "alive" if rt.pipeline.sink_thread_alive else "dead",
                )
            if time.monotonic() - last_status >= 5.0:
                notifier.status(status_line(rt, sup))
                last_status = time.monotonic()
        notifier.stopping(status_line(rt, sup))
        if http is not None:
            http.stop()
        if display is not None:
            display.stop()
        sup.stop()
        stuck = sup.join(stop_timeout_s / 2)
        if stuck:
            log.error("sources did not stop in time: %s", ", ".join(stuck))
        if once:
            rt.pipeline.wait_idle(stop_timeout_s / 2)
            ok = all(not s.failures for s in sup.states.values())
    finally:
        drained = rt.close(stop_timeout_s / 2, on_wait=extend_stop)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped: %s", status_line(rt, sup))
    return 0 if ok and drained else 1
