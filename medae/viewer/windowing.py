"""Window/level: presets for CT in Hounsfield units, percentile windows for MR, the file's own window.

A window is (center, width) as in DICOM PS3.3 C.11.2.1.2: values below ``center - width / 2`` show
black, above ``center + width / 2`` white, linear in between.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A display window in the volume's own units (HU for CT).

    Attributes:
        center: Window centre (level).
        width: Window width; always > 0.
    """

    center: float
    width: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.center) or not np.isfinite(self.width):
            raise ValueError("window centre and width must be finite numbers")
        if self.width <= 0:
            object.__setattr__(self, "width", 1e-6)

    @property
    def low(self) -> float:
        """The value shown black."""
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        """The value shown white."""
        return self.center + self.width / 2

    def dragged(self, dx: float, dy: float, scale: float) -> Window:
        """The window after a mouse drag, as radiology workstations do it.

        Args:
            dx: Horizontal drag in pixels; right widens the window.
            dy: Vertical drag in pixels; down raises the level (image darker).
            scale: Units per pixel of drag (e.g. a fraction of the data range).
        """
        return Window(self.center + dy * scale, max(self.width + dx * scale, scale))


@dataclass(frozen=True)
class Preset:
    """A named window.

    Attributes:
        name: Shown in menus.
        window: Fixed window, or None for a percentile window computed from the data.
        percentiles: (low, high) percentiles of the data when ``window`` is None.
        head: Take the percentiles over the head only (voxels above the background's noise), not the
            whole field of view, whose air can be most of an MR volume.
    """

    name: str
    window: Window | None = None
    percentiles: tuple[float, float] | None = None
    head: bool = False


# Width/level pairs as commonly taught for CT reading (W/L in HU).
CT_PRESETS: tuple[Preset, ...] = (
    Preset("Brain", Window(40, 80)),
    Preset("Subdural", Window(75, 200)),
    Preset("Stroke", Window(40, 40)),
    Preset("Lung", Window(-600, 1500)),
    Preset("Mediastinum", Window(50, 350)),
    Preset("Abdomen", Window(40, 400)),
    Preset("Bone", Window(400, 2000)),
)

# MR intensities have no absolute scale, so its presets are percentiles: of everything in view, or of
# the head alone, where a narrow range separates grey from white matter.
MR_PRESETS: tuple[Preset, ...] = (
    Preset("Auto (1-99 %)", percentiles=(1.0, 99.0)),
    Preset("Head (2-98 % of the head)", percentiles=(2.0, 98.0), head=True),
    Preset("Grey/white (30-95 % of the head)", percentiles=(30.0, 95.0), head=True),
    Preset("Dark tissue (0-60 % of the head)", percentiles=(0.0, 60.0), head=True),
    Preset("Wide (0.1-99.9 %)", percentiles=(0.1, 99.9)),
)


def presets_for(modality: str) -> tuple[Preset, ...]:
    """The preset list for a modality: HU presets for CT, percentile presets otherwise."""
    return CT_PRESETS if modality.upper() == "CT" else MR_PRESETS


def _subsample(array: np.ndarray, target: int = 400_000) -> np.ndarray:
    """About ``target`` values spread over the whole array, read without copying it first.

    A scan on screen is a turned view of the file's array (flipped or transposed axes), which no ravel
    reads in place: the copy took a quarter of a second of the window's thread on a 58 M-voxel scan.
    Every axis is strided instead, so only the sample is gathered.
    """
    if array.size <= target or array.ndim == 0:
        return array.ravel(order="K")
    step = int(np.ceil((array.size / target) ** (1.0 / array.ndim)))  # from target / 2**ndim values to target
    return array[(slice(None, None, step),) * array.ndim].ravel(order="K")


def percentile_window(array: np.ndarray, low: float = 1.0, high: float = 99.0, head: bool = False) -> Window:
    """A window spanning two percentiles of the non-background voxels.

    Background (the most common lowest value, typically air or zero padding) is left out, so the
    window follows the tissue. A subsample keeps this fast on large volumes.

    Args:
        array: The values.
        low: Lower percentile.
        high: Upper percentile.
        head: Leave out the air's noise too: only voxels above a tenth of the robust (2-98 %) range count,
            the robust-range rule of common MR tools for telling the head from the air around it.
    """
    array = np.asarray(array)
    sample = _subsample(array).astype(np.float64, copy=False)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return Window(0.5, 1.0)
    floor = sample.min()
    tissue = sample[sample > floor]
    if tissue.size >= max(16, sample.size // 100):
        sample = tissue
    if head:
        lo2, hi98 = np.percentile(sample, [2.0, 98.0])
        inside = sample[sample > lo2 + 0.1 * (hi98 - lo2)]
        if inside.size >= max(16, sample.size // 100):
            sample = inside
    lo, hi = np.percentile(sample, [low, high])
    if hi <= lo:
        # Few distinct values (a mask, a phantom, a label map): the percentiles collapse onto one value,
        # which would sit at the black end. The full range shows such a scan white on black.
        lo, hi = float(np.min(_finite(array))), float(np.max(_finite(array)))
        if hi <= lo:
            lo, hi = lo - 0.5, lo + 0.5  # one value everywhere: mid grey
    return Window(float((lo + hi) / 2), float(hi - lo))


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite values of an array (all of them when it is integer)."""
    return values if values.dtype.kind in "iub" else values[np.isfinite(values)]


def preset_window(preset: Preset, array: np.ndarray) -> Window:
    """The window a preset gives for this data."""
    if preset.window is not None:
        return preset.window
    low, high = preset.percentiles or (1.0, 99.0)
    return percentile_window(array, low, high, head=preset.head)


def file_window(meta: dict) -> Window | None:
    """The window stored in the source file (DICOM Window Center/Width), if any and usable."""
    center, width = meta.get("window_center"), meta.get("window_width")
    if center is None or width is None:
        return None
    # DICOM allows several windows (multi-valued); the first one is the primary.
    if isinstance(center, (list, tuple)):
        center = center[0] if center else None
    if isinstance(width, (list, tuple)):
        width = width[0] if width else None
    try:
        c, w = float(center), float(width)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
        return None
    return Window(c, w)


def default_window(array: np.ndarray, modality: str, meta: dict | None = None) -> Window:
    """The window a scan opens with: the file's own, else soft tissue for CT, else auto percentiles."""
    own = file_window(meta or {})
    if own is not None:
        return own
    if modality.upper() == "CT":
        return Window(40, 400)
    return percentile_window(array)
