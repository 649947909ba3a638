"""Outputs of geosensord behind one small lifecycle: open, write a batch, flush, close.

Exception tree::

    SinkError                 base class of every sink failure
    ├── SinkUnavailable       the backend cannot be reached now; retry the same batch later
    └── SinkRejected          the backend refused the batch (OOM, READONLY, auth); retry later

This package never imports `hardware/` (no radio code) and knows nothing of the
Event class: it writes already-encoded `StreamEntry` values.
"""

from sinks.base import Sink, SinkError, SinkRejected, SinkUnavailable
from sinks.entry import StreamEntry

__all__ = ["Sink", "SinkError", "SinkRejected", "SinkUnavailable", "StreamEntry"]
