"""Viewer rendering: one 512 x 512 slice with window/level and the heatmap overlay.

Compares ``ViewerSession.render`` (16-bit codes, look-up tables, one blend table) with a naive
float pipeline that computes the same picture with numpy arithmetic per pixel, in the same run.

    python benchmarks/bench_render.py [--repeats 300]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from medae.viewer import colormaps
from medae.viewer.compositing import OverlayStyle
from medae.viewer.session import ViewerSession
from medae.viewer.windowing import Window
from medae.volume import Volume


class _Result:
    def __init__(self, heat: Volume) -> None:
        self.heatmap = heat
        self.labels = heat.with_array(np.zeros(heat.shape, np.int32))
        self.reconstruction = None
        self.residual = None
        self.findings = []
        self.threshold = 3.0
        self.units = "z"
        self.warnings = []


def naive(values: np.ndarray, heat: np.ndarray, window: Window, style: OverlayStyle) -> np.ndarray:
    """The straightforward way: floats for every pixel, the colormap by interpolation, then blend."""
    g = np.clip((values.astype(np.float64) - window.low) / window.width, 0.0, 1.0) * 255.0
    t = np.clip((heat - (style.threshold - style.fade)) / style.fade, 0.0, 1.0)
    alpha = style.opacity * t * t * (3 - 2 * t)
    pos = np.clip((heat - style.threshold) / (style.vmax - style.threshold), 0.0, 1.0)
    table = colormaps.lut(style.colormap).astype(np.float64)
    grid = np.linspace(0, 1, 256)
    rgb = np.stack([np.interp(pos, grid, table[:, c]) for c in range(3)], axis=-1)
    out = g[..., None] * (1 - alpha[..., None]) + rgb * alpha[..., None]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def timed(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()``."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    shape = (512, 512, 48)
    ct = rng.integers(-1000, 1500, shape).astype(np.int16)
    heat = rng.gamma(2.0, 1.0, shape).astype(np.float32)
    affine = np.diag([-0.7, -0.7, 2.5, 1.0])
    session = ViewerSession()
    session.open(Volume(ct, affine, "CT"))
    session.set_result(_Result(Volume(heat, affine)))
    session.set_style(opacity=0.6, threshold=3.0, fade=1.0)
    k = session.cursor[2]
    windows = [Window(40 + n % 50, 400 + n % 70) for n in range(64)]
    counter = iter(range(10**9))

    def drag_window():  # a new window every frame, as while dragging window/level
        session.set_window(windows[next(counter) % len(windows)])
        return session.render("axial")

    def drag_threshold():  # a new threshold every frame, as while moving the threshold slider
        session.set_style(threshold=2.5 + (next(counter) % 50) / 50)
        return session.render("axial")

    style = session.style
    # Contiguous copies, so the baseline is charged for arithmetic only, not for gathering the slice.
    values_slice, heat_slice = np.ascontiguousarray(ct[:, :, k].T), np.ascontiguousarray(heat[:, :, k].T)

    def baseline():
        return naive(values_slice, heat_slice, windows[next(counter) % len(windows)], style)

    rows = [
        ("naive float pipeline (baseline)", timed(baseline, args.repeats)),
        ("render, window changes every frame", timed(drag_window, args.repeats)),
        ("render, threshold changes every frame", timed(drag_threshold, args.repeats)),
        ("render, settings unchanged", timed(lambda: session.render("axial"), args.repeats)),
        ("render, coronal slice", timed(lambda: session.render("coronal"), args.repeats)),
    ]
    base = rows[0][1]
    print(
        f"512 x 512 slice, int16 CT + float32 heat overlay; {platform.machine()}, Python {platform.python_version()}, "
        f"numpy {np.__version__}; median of {args.repeats}"
    )
    print()
    print("| path | median ms | speed-up vs baseline |")
    print("| --- | ---: | ---: |")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {base / ms:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
