"""Colormaps as 256-entry RGB tables, built from a few control points (numpy only).

The control points sample the published maps (viridis and inferno from matplotlib, turbo from
Google's 2019 polynomial); linear interpolation between them is within a few levels of the originals,
which is all a display overlay needs.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_POINTS: dict[str, tuple[tuple[float, tuple[int, int, int]], ...]] = {
    # Dark red -> orange -> yellow -> white: every level stays visible on a grey scan.
    "hot": ((0.0, (150, 0, 0)), (0.35, (255, 60, 0)), (0.7, (255, 200, 0)), (1.0, (255, 255, 210))),
    "inferno": (
        (0.0, (40, 11, 84)),
        (0.125, (85, 15, 109)),
        (0.25, (136, 34, 106)),
        (0.375, (186, 54, 85)),
        (0.5, (227, 89, 51)),
        (0.625, (249, 140, 10)),
        (0.75, (249, 180, 30)),
        (0.875, (249, 215, 80)),
        (1.0, (252, 255, 164)),
    ),
    "viridis": (
        (0.0, (68, 1, 84)),
        (0.125, (71, 44, 122)),
        (0.25, (59, 81, 139)),
        (0.375, (44, 113, 142)),
        (0.5, (33, 144, 141)),
        (0.625, (39, 173, 129)),
        (0.75, (92, 200, 99)),
        (0.875, (170, 220, 50)),
        (1.0, (253, 231, 37)),
    ),
    "turbo": (
        (0.0, (48, 18, 59)),
        (0.125, (67, 95, 216)),
        (0.25, (54, 170, 249)),
        (0.375, (26, 228, 182)),
        (0.5, (114, 254, 94)),
        (0.625, (200, 239, 52)),
        (0.75, (250, 186, 57)),
        (0.875, (230, 92, 22)),
        (1.0, (122, 4, 3)),
    ),
    "red": ((0.0, (255, 40, 40)), (1.0, (255, 40, 40))),
    "gray": ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
}

#: Colormaps offered for the anomaly overlay, first is the default.
OVERLAY_COLORMAPS: tuple[str, ...] = ("hot", "inferno", "turbo", "viridis", "red")


def names() -> tuple[str, ...]:
    """Every colormap name."""
    return tuple(_POINTS)


@lru_cache(maxsize=32)
def lut(name: str) -> np.ndarray:
    """The (256, 3) uint8 table of a colormap.

    Raises:
        KeyError: unknown name (the message lists the known ones).
    """
    try:
        points = _POINTS[name]
    except KeyError:
        raise KeyError(f"unknown colormap {name!r}; choose one of {', '.join(_POINTS)}") from None
    xs = np.array([p for p, _ in points])
    rgb = np.array([c for _, c in points], dtype=np.float64)
    grid = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(grid, xs, rgb[:, ch]) for ch in range(3)], axis=1)
    out = np.clip(np.round(table), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out
