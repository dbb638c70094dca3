"""Mouse and keyboard bindings as data, so that schemes can be listed, tested and swapped.

The GUI translates Qt events to the plain names used here ("left", "shift", "PageUp") and asks
these tables what to do; nothing here knows about Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class MouseAction(str, Enum):
    """What a mouse drag (or click) does."""

    WINDOW_LEVEL = "window/level"
    PAN = "pan"
    ZOOM = "zoom"
    CROSSHAIR = "crosshair"
    SCROLL = "scroll slices"
    NONE = "none"


@dataclass(frozen=True)
class MouseScheme:
    """One mouse binding scheme.

    Attributes:
        name: Key used in preferences.
        title: Shown in the preferences dialog.
        drags: (button, modifier) -> action while dragging; modifier is "" or "shift"/"ctrl"/"alt".
        click: Action of a click without movement, whatever the button it was bound to for drags.
        wheel: Action of the mouse wheel.
    """

    name: str
    title: str
    drags: dict[tuple[str, str], MouseAction]
    click: MouseAction = MouseAction.CROSSHAIR
    wheel: MouseAction = MouseAction.SCROLL

    def drag_action(self, button: str, modifier: str = "") -> MouseAction:
        """The action of dragging ``button`` with ``modifier`` held (falls back to no modifier)."""
        return self.drags.get((button, modifier), self.drags.get((button, ""), MouseAction.NONE))


RADIOLOGY = MouseScheme(
    name="radiology",
    title="Radiology (left: window/level, middle: pan, right: zoom)",
    drags={
        ("left", ""): MouseAction.WINDOW_LEVEL,
        ("left", "shift"): MouseAction.CROSSHAIR,
        ("left", "ctrl"): MouseAction.PAN,
        ("middle", ""): MouseAction.PAN,
        ("right", ""): MouseAction.ZOOM,
    },
)

RESEARCH = MouseScheme(
    name="research",
    title="Research (left: crosshair, middle: pan, right: zoom, ctrl+left: window/level)",
    drags={
        ("left", ""): MouseAction.CROSSHAIR,
        ("left", "ctrl"): MouseAction.WINDOW_LEVEL,
        ("left", "shift"): MouseAction.PAN,
        ("middle", ""): MouseAction.PAN,
        ("right", ""): MouseAction.ZOOM,
    },
)

MOUSE_SCHEMES: dict[str, MouseScheme] = {s.name: s for s in (RADIOLOGY, RESEARCH)}

#: Pixels the pointer may move between press and release for it to count as a click.
CLICK_SLOP_PX = 3


class KeyAction(str, Enum):
    """What a key does."""

    NEXT_SLICE = "next slice"
    PREVIOUS_SLICE = "previous slice"
    PAGE_FORWARD = "10 slices forward"
    PAGE_BACK = "10 slices back"
    LAST_SLICE = "last slice"
    FIRST_SLICE = "first slice"
    RESET = "fit the views (zoom and pan)"
    INVERT = "invert grey scale"
    TOGGLE_HEATMAP = "show/hide heatmap"
    TOGGLE_CROSSHAIR = "show/hide crosshair"
    PRESET = "window preset"
    DEFAULT_WINDOW = "default window"
    NEXT_FINDING = "next finding"
    PREVIOUS_FINDING = "previous finding"
    MEASURE = "measure: left-drag draws a ruler, shift+left-drag a region with its statistics (M again to stop)"
    NEXT_VOLUME = "next volume of a 4D file"
    PREVIOUS_VOLUME = "previous volume of a 4D file"
    ZOOM_IN = "zoom in (the view with the focus frame, about the crosshair)"
    ZOOM_OUT = "zoom out (the view with the focus frame, about the crosshair)"
    PAN_LEFT = "pan: see further left"
    PAN_RIGHT = "pan: see further right"
    PAN_UP = "pan: see further up"
    PAN_DOWN = "pan: see further down"


@dataclass(frozen=True)
class KeyBinding:
    """A key and what it does; ``arg`` carries the preset number for PRESET."""

    key: str
    action: KeyAction
    arg: int | None = None


KEYS: tuple[KeyBinding, ...] = (
    KeyBinding("Up", KeyAction.NEXT_SLICE),
    KeyBinding("Right", KeyAction.NEXT_SLICE),
    KeyBinding("Down", KeyAction.PREVIOUS_SLICE),
    KeyBinding("Left", KeyAction.PREVIOUS_SLICE),
    KeyBinding("PageUp", KeyAction.PAGE_FORWARD),
    KeyBinding("PageDown", KeyAction.PAGE_BACK),
    KeyBinding("End", KeyAction.LAST_SLICE),
    KeyBinding("Home", KeyAction.FIRST_SLICE),
    KeyBinding("Space", KeyAction.RESET),
    KeyBinding("I", KeyAction.INVERT),
    KeyBinding("H", KeyAction.TOGGLE_HEATMAP),
    KeyBinding("X", KeyAction.TOGGLE_CROSSHAIR),
    KeyBinding("0", KeyAction.DEFAULT_WINDOW),
    *(KeyBinding(str(n), KeyAction.PRESET, n) for n in range(1, 8)),
    KeyBinding("N", KeyAction.NEXT_FINDING),
    KeyBinding("P", KeyAction.PREVIOUS_FINDING),
    KeyBinding("M", KeyAction.MEASURE),
    KeyBinding("]", KeyAction.NEXT_VOLUME),
    KeyBinding("[", KeyAction.PREVIOUS_VOLUME),
    # + is Shift+= on many layouts: = zooms in too, so no modifier is needed. (0 is the window already.)
    KeyBinding("+", KeyAction.ZOOM_IN),
    KeyBinding("=", KeyAction.ZOOM_IN),
    KeyBinding("-", KeyAction.ZOOM_OUT),
    # The plain arrows step slices; with Shift they move the view over the slice instead.
    KeyBinding("Shift+Left", KeyAction.PAN_LEFT),
    KeyBinding("Shift+Right", KeyAction.PAN_RIGHT),
    KeyBinding("Shift+Up", KeyAction.PAN_UP),
    KeyBinding("Shift+Down", KeyAction.PAN_DOWN),
)

#: How much one zoom key zooms in (or out, divided).
ZOOM_KEY_FACTOR = 1.25
#: How far one pan key moves the view: this fraction of what it shows of the slice.
PAN_KEY_FRACTION = 0.1

#: Slices one PageUp/PageDown moves.
PAGE_STEP = 10
#: A step longer than any scan: Home and End.
END_STEP = 1_000_000


def key_action(key: str) -> KeyBinding | None:
    """The binding of a key name (Qt's names: "Up", "PageUp", "Space", "I", "1"), or None."""
    for binding in KEYS:
        if binding.key == key:
            return binding
    return None


def slice_step(binding: KeyBinding) -> int:
    """Slices a slice-moving key steps (signed); 0 for other keys."""
    return {
        KeyAction.NEXT_SLICE: 1,
        KeyAction.PREVIOUS_SLICE: -1,
        KeyAction.PAGE_FORWARD: PAGE_STEP,
        KeyAction.PAGE_BACK: -PAGE_STEP,
        # Past either end: the move stops at the first or last slice.
        KeyAction.LAST_SLICE: END_STEP,
        KeyAction.FIRST_SLICE: -END_STEP,
    }.get(binding.action, 0)


def view_step(binding: KeyBinding) -> tuple[float, tuple[float, float]]:
    """(zoom factor, pan step) of a zoom or pan key; (1.0, (0, 0)) for other keys.

    The pan step is in fractions of the field shown, across and down the screen, the way the view moves:
    Shift+Right shows more of what lies to the right, so the slice moves left.
    """
    zoom = {KeyAction.ZOOM_IN: ZOOM_KEY_FACTOR, KeyAction.ZOOM_OUT: 1.0 / ZOOM_KEY_FACTOR}.get(binding.action, 1.0)
    f = PAN_KEY_FRACTION
    pan = {
        KeyAction.PAN_LEFT: (-f, 0.0),
        KeyAction.PAN_RIGHT: (f, 0.0),
        KeyAction.PAN_UP: (0.0, -f),
        KeyAction.PAN_DOWN: (0.0, f),
    }.get(binding.action, (0.0, 0.0))
    return zoom, pan


def describe(preset_names: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(key, what it does) rows for the help dialog.

    Args:
        preset_names: The window presets of the scan on screen, in key order; when given, the preset keys
            are listed by name and only as many as there are presets (the others do nothing).
    """
    rows = []
    for b in KEYS:
        if b.arg is None:
            rows.append((b.key, b.action.value))
        elif preset_names is None:
            rows.append((b.key, f"{b.action.value} {b.arg}"))
        elif b.arg <= len(preset_names):
            rows.append((b.key, f"{b.action.value}: {preset_names[b.arg - 1]}"))
    return rows
