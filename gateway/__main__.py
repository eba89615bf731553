"""``python -m gateway``: run the gateway (see ``gateway --help``)."""

import sys

from gateway.cli import main

sys.exit(main())
