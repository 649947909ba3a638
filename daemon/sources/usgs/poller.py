"""HTTP for the USGS source: GET with retries, and feed polling that honours max-age.

`HttpFetcher.get` is one logical GET over a reused `requests.Session`:

    attempt 1 ──error/timeout/5xx/429──► wait ──► attempt 2 ──► … ──► attempt 1+retries
                                           │
        wait = Retry-After (429/503, seconds or HTTP date, capped at 1 h), else
               exponential backoff with jitter: d = min(backoff_max_s, base_s * 2**n),
               uniform in [d/2, d] (never zero, so a fleet of stations spreads out)

Other 4xx are not retried (FetchError with `retryable=False`). The wait is
interruptible: it is a callable ``wait(seconds) -> stop_requested`` (the source
passes its stop Event's `wait`), and tests pass a recorder instead of sleeping.

`FeedPoller.fetch` adds the summary-feed rules: a conditional GET (If-None-Match
with the last ETag, If-Modified-Since with the last Last-Modified; 304 means
"unchanged"), and the feed's ``Cache-Control: max-age=N`` (60 s on USGS feeds),
which the source uses as the floor of its polling interval. ``file://`` URLs and
plain paths are read from disk (replay of recorded feeds); they have no max-age.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

__all__ = [
    "FeedPoller",
    "FeedResponse",
    "FetchAborted",
    "FetchError",
    "HttpFetcher",
    "parse_max_age",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

USER_AGENT = "geosensord (+https://github.com/geosensord; USGS feed poller)"
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
        user_agent: str = USER_AGENT,
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


@dataclass(frozen=True)
class FeedResponse:
    """One poll: the document (None when unchanged since the last poll) and its max-age."""

    body: bytes | None
    max_age_s: float | None
    status: int


class FeedPoller:
    """Polls one feed URL (http(s), file:// or a path) with conditional GETs."""

    def __init__(self, url: str, fetcher: HttpFetcher,
                 resolve: Callable[[str], Path] = Path) -> None:
        self.url = url
        self.fetcher = fetcher
        self.is_http = url.startswith(("http://", "https://"))
        self.path: Path | None = None
        if url.startswith("file://"):
            parsed = urllib.parse.urlparse(url)
            self.path = Path(urllib.request.url2pathname(parsed.netloc + parsed.path))
        elif not self.is_http:
            self.path = resolve(url)
        self._etag: str | None = None
        self._last_modified: str | None = None

    def fetch(self) -> FeedResponse:
        """Read the feed once; raises FetchError (OSError on a file becomes FetchError)."""
        if self.path is not None:
            try:
                return FeedResponse(self.path.read_bytes(), None, 200)
            except OSError as exc:
                raise FetchError(f"{self.path}: {exc.strerror or exc}") from None
        headers: dict[str, str] = {}
        if self._etag:
            headers["If-None-Match"] = self._etag
        if self._last_modified:
            headers["If-Modified-Since"] = self._last_modified
        resp = self.fetcher.get(self.url, headers=headers)
        max_age_s = parse_max_age(resp.headers.get("Cache-Control"))
        if resp.status_code == 304:
            return FeedResponse(None, max_age_s, 304)
        self._etag = resp.headers.get("ETag") or None
        self._last_modified = resp.headers.get("Last-Modified") or None
        return FeedResponse(resp.content, max_age_s, resp.status_code)

    def forget_validators(self) -> None:
        """Drop ETag/Last-Modified so the next poll fetches the whole document again."""
        self._etag = self._last_modified = None
