"""Feed polling for the USGS source: conditional GETs that honour max-age.

`FeedPoller.fetch` adds the summary-feed rules to `daemon.sources.http_poll.HttpFetcher`
(GET with retries, backoff and Retry-After): a conditional GET (If-None-Match
with the last ETag, If-Modified-Since with the last Last-Modified; 304 means
"unchanged"), and the feed's ``Cache-Control: max-age=N`` (60 s on USGS feeds),
which the source uses as the floor of its polling interval. ``file://`` URLs and
plain paths are read from disk (replay of recorded feeds); they have no max-age.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.sources.http_poll import FetchError, HttpFetcher, parse_max_age

__all__ = ["USER_AGENT", "FeedPoller", "FeedResponse"]

USER_AGENT = "geosensord (+https://github.com/geosensord; USGS feed poller)"


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
