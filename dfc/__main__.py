"""``python -m dfc`` runs the command line."""

import sys

from dfc.cli import main

sys.exit(main())
