"""Turns slices into screen pixels: window/level, colormaps and the soft-threshold heatmap blend.

Speed comes from lookup tables. Scan values are stored as 16-bit codes (``display.encode``), so a
window is a 65,536-entry table from code to grey; the heatmap is quantised to 256 levels, so blending
grey with heat is one 256 x 256 table of finished pixels. Rendering a slice is then two table
look-ups, whatever the window, colormap, opacity or threshold; the tables are rebuilt only when a
setting changes (about a millisecond).

Pixels are 32-bit 0xAARRGGBB words, the layout of ``QImage.Format_RGB32`` and of numpy ``uint32``
on little-endian machines; ``to_rgb`` unpacks them for PNG files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medae.viewer import colormaps
from medae.viewer.windowing import Window

_OPAQUE = np.uint32(0xFF000000)

#: Where in the colormap heat at the threshold starts (0 = its bottom colour).
COLOR_FLOOR = 0.25


@dataclass(frozen=True)
class OverlayStyle:
    """How the heatmap is drawn.

    Attributes:
        colormap: Name from ``colormaps.OVERLAY_COLORMAPS``.
        opacity: Opacity of fully shown heat, 0-1.
        threshold: Value (calibrated units) from which heat is fully shown.
        fade: Width in the same units of the ramp below ``threshold`` over which heat fades in,
            so that borderline voxels are dimmed rather than cut off. 0 gives a hard cut.
        vmin: Bottom of the quantised heat range.
        vmax: Value shown with the top colour of the colormap.
    """

    colormap: str = "hot"
    opacity: float = 0.6
    threshold: float = 3.0
    fade: float = 1.0
    vmin: float = 0.0
    vmax: float = 8.0

    def levels(self) -> np.ndarray:
        """The heat value each of the 256 quantisation levels stands for."""
        return np.linspace(self.vmin, self.vmax, 256)

    def alpha(self, values: np.ndarray) -> np.ndarray:
        """Opacity of heat values: a smoothstep from ``threshold - fade`` to ``threshold``."""
        values = np.asarray(values, dtype=np.float64)
        if self.fade <= 0:
            ramp = (values >= self.threshold).astype(np.float64)
        else:
            t = np.clip((values - (self.threshold - self.fade)) / self.fade, 0.0, 1.0)
            ramp = t * t * (3.0 - 2.0 * t)
        return np.clip(self.opacity, 0.0, 1.0) * ramp

    def colors(self, values: np.ndarray) -> np.ndarray:
        """RGB (float, 0-255) of heat values; ``threshold`` to ``vmax`` spans the colormap's upper part.

        Heat at the threshold takes the colour a quarter into the map, not its dark bottom: a region
        just above a lowered threshold, far below the scan's peak, must still stand out from the grey.
        """
        table = colormaps.lut(self.colormap).astype(np.float64)
        span = max(self.vmax - self.threshold, 1e-9)
        pos = np.clip((np.asarray(values, dtype=np.float64) - self.threshold) / span, 0.0, 1.0)
        pos = COLOR_FLOOR + (1.0 - COLOR_FLOOR) * pos
        return table[np.round(pos * 255).astype(np.intp)]


def quantize_heat(heat: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Heat values -> uint8 levels over [vmin, vmax] (the index into the blend table)."""
    scale = 255.0 / max(vmax - vmin, 1e-12)
    out = np.subtract(heat, vmin, dtype=np.float32)
    out *= np.float32(scale)
    out += np.float32(0.5)
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8-valued RGB -> opaque 0xFFRRGGBB uint32 words."""
    rgb = np.asarray(rgb).astype(np.uint32)
    return _OPAQUE | (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def to_rgb(pixels: np.ndarray) -> np.ndarray:
    """0xAARRGGBB uint32 words -> (..., 3) uint8 RGB."""
    p = np.asarray(pixels, dtype=np.uint32)
    return np.stack([(p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF], axis=-1).astype(np.uint8)


def gray_lut(window: Window, code_values: np.ndarray, invert: bool = False) -> np.ndarray:
    """Code -> grey level (uint8) for a window.

    Args:
        window: The display window in the scan's units.
        code_values: The scan value each 16-bit code stands for (``display.Encoded.values``).
        invert: White for low values (negative image).
    """
    g = (code_values - window.low) * (255.0 / window.width)
    np.clip(g, 0.0, 255.0, out=g)
    if invert:
        g = 255.0 - g
    return (g + 0.5).astype(np.uint8)


def gray_pixels_lut(gray: np.ndarray) -> np.ndarray:
    """Grey-level table -> a table of finished opaque grey pixels."""
    g = gray.astype(np.uint32)
    return _OPAQUE | (g << 16) | (g << 8) | g


def blend_lut(style: OverlayStyle) -> np.ndarray:
    """The (256 grey x 256 heat) table of blended pixels, flattened to 65,536 uint32 words.

    Entry ``grey << 8 | heat`` is ``grey * (1 - a) + colour * a`` for the heat level's colour and
    opacity ``a``, so the threshold fade costs nothing per pixel.
    """
    values = style.levels()
    a = style.alpha(values).astype(np.float32)
    # The lowest level holds the voxels the model did not assess (heat 0 outside the brain and the field
    # of view) and those at or below the range's floor: never coloured, even at the lowest threshold.
    a[0] = 0.0
    ca = style.colors(values).astype(np.float32) * a[:, None]
    grey = np.arange(256, dtype=np.float32)
    # Per channel: grey * (1 - a) + colour * a as an outer product, rounded, then packed.
    out = np.full((256, 256), _OPAQUE, dtype=np.uint32)
    for channel, shift in ((0, 16), (1, 8), (2, 0)):
        plane = np.multiply.outer(grey, 1.0 - a)
        plane += ca[:, channel] + 0.5
        np.clip(plane, 0, 255, out=plane)
        out |= plane.astype(np.uint32) << np.uint32(shift)
    return out.reshape(-1)


def composite(
    codes: np.ndarray,
    gray: np.ndarray,
    heat_levels: np.ndarray | None = None,
    blend: np.ndarray | None = None,
    gray_pixels: np.ndarray | None = None,
) -> np.ndarray:
    """Renders one slice to 0xFFRRGGBB pixels.

    Args:
        codes: 2D uint16 codes of the scan slice, in screen orientation (any strides).
        gray: The window's code -> grey table (``gray_lut``).
        heat_levels: 2D uint8 heat levels of the same slice (``quantize_heat``), or None.
        blend: The blend table (``blend_lut``); needed with ``heat_levels``.
        gray_pixels: ``gray_pixels_lut(gray)``, to skip one step when there is no heat.

    Returns:
        C-contiguous uint32 array of the slice's shape.
    """
    if heat_levels is None or blend is None:
        table = gray_pixels if gray_pixels is not None else gray_pixels_lut(gray)
        return table.take(codes)
    index = gray.take(codes).astype(np.uint16)
    index <<= 8
    index |= heat_levels
    return blend.take(index)


def colorbar(style: OverlayStyle, length: int, thickness: int, background: int = 64) -> np.ndarray:
    """A vertical colour bar of the overlay as it blends over grey ``background`` (top = ``vmax``).

    The part below the threshold shows the fade, so the bar reads exactly like the overlay.
    """
    values = np.linspace(style.vmax, style.vmin, max(int(length), 2))
    a = style.alpha(values)[:, None]
    rgb = background * (1.0 - a) + style.colors(values) * a
    row = pack_rgb(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))
    return np.repeat(row[:, None], max(int(thickness), 1), axis=1)


def value_to_fraction(style: OverlayStyle, value: float) -> float:
    """Where a heat value sits on the colour bar, 0 at the bottom (``vmin``) to 1 at the top."""
    return float(np.clip((value - style.vmin) / max(style.vmax - style.vmin, 1e-12), 0.0, 1.0))
