"""``python -m medae.gui [PATH]``."""

from medae.gui.app import main

raise SystemExit(main())
