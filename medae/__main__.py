"""``python -m medae``."""

import sys

from medae.cli import main

sys.exit(main())
