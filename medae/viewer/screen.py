"""Whether the viewer has a screen to open on, asked before Qt is loaded (Qt aborts without one)."""

from __future__ import annotations

import os
import sys

#: What to do instead, said in one line where the viewer cannot open.
NO_DISPLAY = (
    "no display to show the viewer on (DISPLAY and WAYLAND_DISPLAY are unset). Run it on a desktop, or over ssh "
    "with X forwarding (ssh -X); without a screen, `medae analyze` and `medae demo --headless` write the same "
    "results as files."
)


def display_available(env: dict | None = None, platform: str | None = None) -> bool:
    """Whether a window can be shown: always on macOS/Windows; on Linux, with a display or a Qt platform."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return True
    return any(env.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))
