"""Preferences and recent files, kept in QSettings between runs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from PySide6.QtCore import QSettings

ORGANIZATION = "medae"
APPLICATION = "medae"
MAX_RECENT = 10


@dataclass
class Preferences:
    """What the user can set in Edit > Preferences.

    Attributes:
        mouse_scheme: "radiology" (left-drag window/level) or "research" (left-click crosshair).
        convention: "radiological" (patient's right on screen left) or "neurological".
        colormap: Overlay colormap.
        opacity: Overlay opacity, 0-1.
        smooth: Interpolate pixels when zoomed in (off: show voxels as squares).
        model: Model folder, "" for the shipped default.
        device: "auto", "cpu", "cuda" or "mps".
        layout: "single", "1x3" or "2x2".
        link_zoom: Zooming one view zooms the others about the crosshair.
    """

    mouse_scheme: str = "radiology"
    convention: str = "radiological"
    colormap: str = "hot"
    opacity: float = 0.6
    smooth: bool = False
    model: str = ""
    device: str = "auto"
    layout: str = "1x3"
    link_zoom: bool = True


def settings() -> QSettings:
    """The application's settings store (INI-style on Linux)."""
    return QSettings(ORGANIZATION, APPLICATION)


def _choices() -> dict[str, tuple]:
    """The values each named preference may take (a file edited by hand, or by a newer version, may hold others)."""
    from medae.viewer.bindings import MOUSE_SCHEMES
    from medae.viewer.colormaps import OVERLAY_COLORMAPS
    from medae.viewer.planes import CONVENTIONS
    from medae.viewer.session import LAYOUTS

    return {
        "mouse_scheme": tuple(MOUSE_SCHEMES),
        "convention": tuple(CONVENTIONS),
        "colormap": OVERLAY_COLORMAPS,
        "layout": LAYOUTS,
    }


def load_preferences() -> Preferences:
    """Reads preferences; unknown or broken values fall back to the defaults."""
    store = settings()
    prefs = Preferences()
    choices = _choices()
    for f in fields(Preferences):
        raw = store.value(f"prefs/{f.name}")
        if raw is None:
            continue
        default = getattr(prefs, f.name)
        try:
            if isinstance(default, bool):
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
            else:
                value = type(default)(raw)
        except (TypeError, ValueError):
            continue
        if f.name in choices and value not in choices[f.name]:
            continue
        if isinstance(value, float) and not 0.0 <= value <= 1.0:  # the opacity (NaN fails this too)
            continue
        if f.name == "device" and not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(value)):
            continue
        setattr(prefs, f.name, value)
    return prefs


def save_preferences(prefs: Preferences) -> None:
    """Writes preferences."""
    store = settings()
    for name, value in asdict(prefs).items():
        store.setValue(f"prefs/{name}", value)
    store.sync()


def recent_files() -> list[str]:
    """Recently opened paths that still exist, newest first."""
    raw = settings().value("recent", [])
    if isinstance(raw, str):
        raw = [raw]
    return [p for p in (raw or []) if Path(p).exists()][:MAX_RECENT]


def add_recent(path: str) -> list[str]:
    """Puts a path at the top of the recent list; returns the new list."""
    path = str(Path(path).resolve())
    items = [path] + [p for p in recent_files() if p != path]
    store = settings()
    store.setValue("recent", items[:MAX_RECENT])
    store.sync()
    return items[:MAX_RECENT]


def last_folder(kind: str) -> str:
    """Where a file dialog of ``kind`` ("open", "export", "batch_in", "batch_out") starts.

    The folder last chosen for that kind; for opening, else the folder of the newest recent file; else
    the home folder. Never the process's working folder, which for a desktop launch means nothing.
    """
    folder = settings().value(f"folders/{kind}", "")
    if folder and Path(str(folder)).is_dir():
        return str(folder)
    if kind == "open":
        for path in recent_files():
            return str(Path(path).parent)
    return str(Path.home())


def remember_folder(kind: str, folder: str | Path) -> None:
    """Keeps the folder a file dialog of ``kind`` was last used in."""
    store = settings()
    store.setValue(f"folders/{kind}", str(folder))
    store.sync()
