"""Per-event cost of the Redis sink path against a raw pipelined XADD (issue 8).

    python bench/sink.py [--events 200000] [--batch 1000] [--reference 20000] [--json]

The same run as ``geosensord bench sink``; see daemon/commands/bench.py for what is
measured and how.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.commands import bench


def main() -> int:
    """Parse the options and run the bench."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    bench.add_arguments(parser)
    return bench.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
