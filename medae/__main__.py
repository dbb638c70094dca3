"""``python -m medae``: the command line, for environments where the console script is not on PATH."""

import sys

from medae.cli import main

if __name__ == "__main__":
    sys.exit(main())
