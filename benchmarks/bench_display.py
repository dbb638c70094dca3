"""Time on the window's thread when a large scan, then its analysis, appears in the viewer.

The viewer codes a scan to 16 bits and an analysis's reconstruction and residual likewise, and
quantises the heat; on a thin-slice CT that is seconds of numpy work. Measured here: that work done
where the window shows the result (the baseline, as the viewer did it before) against the window's
part alone once a worker has prepared the layers (``ImageLayer``, ``prepare_result``), in the same run.

    python benchmarks/bench_display.py [--repeats 5] [--shape 348 458 242]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from medae.analysis.result import AnalysisResult
from medae.viewer.display import ImageLayer
from medae.viewer.session import ViewerSession, prepare_result
from medae.volume import Volume


def _scan_and_result(shape: tuple[int, int, int]) -> tuple[Volume, AnalysisResult]:
    rng = np.random.default_rng(0)
    scan = Volume(rng.integers(0, 1200, size=shape, dtype=np.int16), np.diag([0.7, 0.7, 0.7, 1.0]), "MR")
    heat = rng.normal(size=shape).astype(np.float32)
    recon = scan.with_array(scan.array.astype(np.float32) * 0.95)
    residual = scan.with_array(scan.array.astype(np.float32) - recon.array)
    result = AnalysisResult(
        volume=scan,
        heatmap=scan.with_array(heat),
        labels=scan.with_array(np.zeros(shape, np.int16)),
        reconstruction=recon,
        residual=residual,
        findings=[],
        score=0.0,
        percentile=50.0,
        threshold=8.8,
        units="z (healthy)",
        model_id="bench",
        model_sha256="",
        device="cpu",
    )
    return scan, result


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    """Prints a Markdown table: seconds on the window's thread, baseline and with prepared layers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--shape", type=int, nargs=3, default=[348, 458, 242])
    args = p.parse_args()
    shape = tuple(args.shape)
    scan, result = _scan_and_result(shape)
    session = ViewerSession()

    def open_all_here() -> None:
        session.open(scan)

    layer = ImageLayer(scan)

    def open_prepared() -> None:
        session.open(scan, layer=layer)

    def result_all_here() -> None:
        session.set_result(result)

    layers = prepare_result(result)

    def result_prepared() -> None:
        session.set_result(result, layers)

    floats = scan.with_array(scan.array.astype(np.float32))  # a float scan is coded to 16 bits; int16 is a view
    float_layer = ImageLayer(floats)
    rows = [
        ("int16 scan appears: coded on the window's thread (baseline)", _median_s(open_all_here, args.repeats)),
        ("int16 scan appears: layer coded by the loading worker", _median_s(open_prepared, args.repeats)),
        (
            "float32 scan appears: coded on the window's thread (baseline)",
            _median_s(lambda: session.open(floats), args.repeats),
        ),
        (
            "float32 scan appears: layer coded by the loading worker",
            _median_s(lambda: session.open(floats, layer=float_layer), args.repeats),
        ),
        ("result appears: layers made on the window's thread (baseline)", _median_s(result_all_here, args.repeats)),
        ("result appears: layers made by the analysis worker", _median_s(result_prepared, args.repeats)),
    ]
    print(f"Machine: {platform.machine()} {platform.system()}, voxels {np.prod(shape) / 1e6:.1f} M ({shape})")
    print("| step | median s on the window's thread |")
    print("| --- | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")
    print(
        "\nseconds saved on the window's thread: "
        + ", ".join(f"{rows[i][0].split(':')[0]} {rows[i][1] - rows[i + 1][1]:.2f}" for i in (0, 2, 4))
    )


if __name__ == "__main__":
    main()
