"""`python -m daemon` is the same as the `geosensord` command."""

import sys

from daemon.cli import main

sys.exit(main())
