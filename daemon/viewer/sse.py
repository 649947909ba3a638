"""Server-Sent Events framing (the WHATWG `text/event-stream` format).

One message on the wire, ended by a blank line::

    id: 1795672915404-1          <- the browser sends it back as Last-Event-ID on reconnect
    event: events                <- the listener name (addEventListener("events", …))
    data: [{"id":"adsb:…",…}]    <- one `data:` line per line of the payload
    <blank line>

A line starting with ``:`` is a comment (used as a keep-alive so proxies and the
browser see the connection alive while no events arrive); ``retry: MS`` sets the
browser's reconnect delay.
"""

from __future__ import annotations


def sse_frame(data: str, event: str | None = None, event_id: str | None = None) -> bytes:
    """One SSE message; `data` may hold newlines (each becomes its own `data:` line)."""
    parts: list[str] = []
    if event_id is not None:
        _check_single_line("id", event_id)
        parts.append(f"id: {event_id}\n")
    if event is not None:
        _check_single_line("event", event)
        parts.append(f"event: {event}\n")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def sse_comment(text: str = "") -> bytes:
    """A comment line (keep-alive); ignored by the browser."""
    _check_single_line("comment", text)
    return f": {text}\n\n".encode()


def sse_retry(delay_ms: int) -> bytes:
    """Set the browser's reconnect delay, milliseconds."""
    return f"retry: {int(delay_ms)}\n\n".encode()


def _check_single_line(what: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"SSE {what} must be one line: {value!r}")
