"""Server-Sent Events framing: what the browser's EventSource parses."""

from __future__ import annotations

import json

import pytest

from daemon.viewer.sse import sse_comment, sse_frame, sse_retry


def parse_sse(raw: bytes) -> list[dict[str, str]]:
    """A reference parser following the WHATWG event-stream rules (test side)."""
    messages: list[dict[str, str]] = []
    current: dict[str, list[str]] = {}
    for line in raw.decode().split("\n"):
        if line == "":
            if current:
                messages.append({k: "\n".join(v) for k, v in current.items()})
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        current.setdefault(name, []).append(value.removeprefix(" "))
    return messages


def test_frame_carries_id_event_and_json_data() -> None:
    payload = [{"id": "adsb:4d2023:1", "lat": 37.1}]
    raw = sse_frame(json.dumps(payload), "events", "1795672915404-1")
    assert raw.endswith(b"\n\n")
    (msg,) = parse_sse(raw)
    assert msg["id"] == "1795672915404-1"
    assert msg["event"] == "events"
    assert json.loads(msg["data"]) == payload


def test_multiline_data_is_split_and_joined_back() -> None:
    (msg,) = parse_sse(sse_frame("a\nb\r\nc"))
    assert msg["data"] == "a\nb\nc"
    assert "event" not in msg


def test_comments_and_retry_are_not_messages() -> None:
    raw = sse_comment("ka") + sse_retry(2000) + sse_frame("x", "ready")
    messages = parse_sse(raw)
    assert messages[0] == {"retry": "2000"}
    assert messages[1] == {"event": "ready", "data": "x"}


@pytest.mark.parametrize("bad", ["a\nb", "a\rb"])
def test_ids_and_names_must_be_one_line(bad: str) -> None:
    with pytest.raises(ValueError):
        sse_frame("x", event_id=bad)
    with pytest.raises(ValueError):
        sse_frame("x", event=bad)
