"""HTTP polling shared by the usgs and sondehub sources: GET with retries, max-age.

`HttpFetcher.get` is one logical GET over a reused `requests.Session`:

    attempt 1 ──error/timeout/5xx/429──► wait ──► attempt 2 ──► … ──► attempt 1+retries
                                           │
        wait = Retry-After (429/503, seconds or HTTP date, capped at 1 h), else
               exponential backoff with jitter: d = min(backoff_max_s, base_s * 2**n),
               uniform in [d/2, d] (never zero, so a fleet of stations spreads out)

Other 4xx are not retried (FetchError with `retryable=False`). The wait is
interruptible: it is a callable ``wait(seconds) -> stop_requested`` (a source
passes its stop Event's `wait`), and tests pass a recorder instead of sleeping.

`parse_max_age` reads ``Cache-Control: max-age=N`` (``s-maxage`` too), which the
polling sources use as the floor of their polling interval.

`PollingSource` is what both polling sources share: the fetcher built from their
`timeout_s`, `retries` and `backoff_max_s` keys, a wait that returns early on stop
(injectable for tests), the max-age and failed-poll state, and the loop::

    poll ──► wait next_delay_s() (the source's rule) ──► poll … until stop (or once)
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import requests

from daemon.pipeline import Emit
from daemon.sources.base import Source, SourceContext

__all__ = [
    "DEFAULT_USER_AGENT",
    "FetchAborted",
    "FetchError",
    "HttpFetcher",
    "PollingSource",
    "Wait",
    "parse_max_age",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "geosensord (+https://github.com/geosensord)"
RETRY_AFTER_MAX_S = 3600.0

Wait = Callable[[float], bool]


class FetchError(Exception):
    """A GET failed for good (after its retries, or with a non-retryable status)."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class FetchAborted(FetchError):
    """Stop was requested while waiting to retry."""

    def __init__(self) -> None:
        super().__init__("stopped while waiting to retry", retryable=False)


def _never_stop(seconds: float) -> bool:
    """The default wait: a plain interruptible sleep that never reports a stop."""
    threading.Event().wait(seconds)
    return False


def parse_max_age(cache_control: str | None) -> float | None:
    """Seconds of ``max-age`` (or ``s-maxage``) in a Cache-Control header, else None."""
    if not cache_control:
        return None
    m = re.search(r"(?:^|[,\s])(?:s-)?max-age\s*=\s*\"?(\d+)", cache_control, re.IGNORECASE)
    return float(m.group(1)) if m else None


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


class HttpFetcher:
    """GET with retries, exponential backoff with jitter, Retry-After and a reused Session."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        wait: Wait = _never_stop,
        rng: random.Random | None = None,
        session: requests.Session | None = None,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.wait = wait
        self.rng = rng or random.Random()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.requests_total = 0

    def backoff_s(self, attempt: int) -> float:
        """The jittered wait after failed attempt number `attempt` (0-based), in seconds."""
        d_s = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        return d_s / 2 + self.rng.uniform(0.0, d_s / 2)

    def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """The response of a GET (2xx or 304); raises FetchError / FetchAborted."""
        last = ""
        for attempt in range(self.retries + 1):
            retry_after_s: float | None = None
            try:
                self.requests_total += 1
                resp = self.session.get(url, params=params, headers=dict(headers or {}),
                                        timeout=self.timeout_s)
            except requests.Timeout:
                last = f"timed out after {self.timeout_s:g} s"
            except requests.RequestException as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 400:
                    return resp
                last = f"HTTP {resp.status_code} {resp.reason}"
                if resp.status_code in (429, 503):
                    retry_after_s = parse_retry_after(resp.headers.get("Retry-After"))
                if resp.status_code < 500 and resp.status_code != 429:
                    body = resp.text[:300].strip()
                    raise FetchError(f"{url}: {last}: {body}", resp.status_code, retryable=False)
            if attempt == self.retries:
                break
            delay_s = self.backoff_s(attempt)
            if retry_after_s is not None:
                delay_s = max(delay_s, min(retry_after_s, RETRY_AFTER_MAX_S))
            log.info("GET %s: %s; retry %d/%d in %.1f s", url, last, attempt + 1,
                     self.retries, delay_s)
            if self.wait(delay_s):
                raise FetchAborted()
        raise FetchError(f"{url}: {last} (after {self.retries + 1} attempts)")

    def close(self) -> None:
        """Close the Session's pooled connections."""
        self.session.close()


class PollingSource(Source):
    """A source that polls over HTTP (module docstring); `wait` and `fetcher` are
    injectable for tests. Subclasses implement `poll` and `next_delay_s`."""

    def __init__(
        self,
        name: str,
        cfg: dict[str, Any],
        ctx: SourceContext,
        *,
        wait: Wait | None,
        fetcher: HttpFetcher | None,
        user_agent: str,
    ) -> None:
        super().__init__(name, cfg, ctx)
        self.interval_s = float(cfg["interval"])
        self.backoff_max_s = float(cfg["backoff_max_s"])
        self._wait_override = wait
        self._stop = threading.Event()
        self.fetcher = fetcher or HttpFetcher(
            timeout_s=float(cfg["timeout_s"]),
            retries=int(cfg["retries"]),
            backoff_max_s=self.backoff_max_s,
            wait=self._wait,
            user_agent=user_agent,
        )
        #: The answers' Cache-Control max-age (the floor of the interval), once seen.
        self.max_age_s: float | None = None
        #: Consecutive failed polls (they slow the polling down).
        self.failed_polls = 0

    @abstractmethod
    def poll(self, emit: Emit) -> object:
        """One poll; failures are logged and counted, not raised."""

    @property
    @abstractmethod
    def effective_interval_s(self) -> float:
        """Seconds between polls while they succeed."""

    def next_delay_s(self) -> float:
        """Seconds until the next poll: `effective_interval_s`, doubled per consecutive
        failed poll (2x after one, 4x after two …), capped at `backoff_max_s` (or the
        interval, when that is longer). One rule for every polling source."""
        base_s = self.effective_interval_s
        if self.failed_polls == 0:
            return base_s
        return min(base_s * 2.0 ** self.failed_polls, max(base_s, self.backoff_max_s))

    def _wait(self, seconds: float) -> bool:
        """Wait, returning True when stop was requested (injectable for tests)."""
        if self._wait_override is not None:
            return self._wait_override(seconds) or self._stop.is_set()
        return self._stop.wait(seconds)

    def poll_until_stopped(self, emit: Emit, once: bool) -> None:
        """Poll, wait `next_delay_s()`, poll … until stop; with `once`, one poll."""
        while not self._stop.is_set():
            self.poll(emit)
            if once or self._wait(self.next_delay_s()):
                return
