"""``python -m provmark`` runs the command line (see :mod:`provmark.cli`)."""

import sys

from .cli import main

sys.exit(main())
