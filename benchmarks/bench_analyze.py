"""End-to-end ``analyze`` on a 1 mm brain and a 512x512x300 volume, split by stage, with peak memory.

Usage: python benchmarks/bench_analyze.py [--model models/brain-t1-dae] [--repeats 3] [--device cpu]
    [--head FILE]

``--head`` takes the head from a scan file (the bundled sample, say) instead of generating it, for
machines without the ``[train]`` extra.

Process start and model load are excluded. Stages: load (file -> Volume), preprocess (alignment,
resampling, normalisation), network, post-process (residual, calibration, back to the input grid,
findings), write (heatmap, findings, report). Each case runs in its own subprocess. Times come from
untraced runs; peak memory from one more run under tracemalloc (numpy and Python allocations during
the whole analysis; the network's own buffers are on the small model grid and not included),
compared with the input volume's float32 size. The baseline in the same run is nibabel reading the
same file into memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, statistics, sys, time, tempfile, tracemalloc
import numpy as np
path, model_dir, repeats, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
from medae.model import load_model
from medae.io import load
from medae.analysis import analyze, write_outputs
import nibabel as nib
model = load_model(model_dir, device=device)
rows = []
peaks = []
# Timed runs first, without tracemalloc (it slows every allocation); then one traced run for memory.
for traced in [False] * repeats + [True]:
    if traced:
        tracemalloc.start()
    t = time.perf_counter(); vol = load(path); t_load = time.perf_counter() - t
    r = analyze(vol, model, reconstruction=False)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        write_outputs(r, d)
    t_write = time.perf_counter() - t
    timings = dict(r.timings)
    del r
    if traced:
        peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    else:
        rows.append({"load": t_load, **timings, "write": t_write})
peak = max(peaks)
base = []
for _ in range(repeats):
    t = time.perf_counter(); np.array(nib.load(path).dataobj); base.append(time.perf_counter() - t)
med = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
# The machine's speed in the same process: a 2048 x 2048 float32 matrix product (as bench_model).
import torch
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
gemm = []
for _ in range(repeats + 1):
    t = time.perf_counter(); (a @ b).sum().item(); gemm.append(time.perf_counter() - t)
print(json.dumps({"stages": med, "peak_growth_mib": peak, "input_f32_mib": vol.array.size * 4 / 2**20,
                  "shape": list(vol.shape), "nibabel_s": statistics.median(base),
                  "gemm_ms": 1000 * statistics.median(gemm[1:])}))
"""


def make_inputs(folder: Path, head: str | None = None) -> dict[str, Path]:
    """A 1 mm healthy brain and the same head on a 512x512x300 grid (0.45 x 0.45 x 0.6 mm)."""
    import numpy as np
    from scipy import ndimage

    from medae import geometry
    from medae.io.nifti import save_nifti
    from medae.volume import Volume

    if head:
        from medae.io import load

        vol = load(head)
    else:
        from medae.training.healthy import generate_healthy, head_distance
        from medae.training.template import load_template

        template = load_template()
        vol = generate_healthy(template, seed=777001, dist=head_distance(template), variation=0.5).volume
    arr, aff = geometry.reorient(vol.array, vol.affine, "RAS")
    iso = ndimage.zoom(arr.astype(np.float32), geometry.spacing(aff), order=1)
    iso_aff = aff.copy()
    iso_aff[:3, :3] = aff[:3, :3] / np.asarray(geometry.spacing(aff))
    brain = folder / "brain_1mm.nii"
    save_nifti(Volume(np.round(iso).astype(np.int16), iso_aff, "MR"), brain)
    shape = (512, 512, 300)
    sp = np.array([0.45, 0.45, 0.6])
    big_aff = np.diag([*sp, 1.0])
    centre = geometry.apply_affine(iso_aff, (np.array(iso.shape) - 1) / 2)
    big_aff[:3, 3] = centre - sp * (np.array(shape) - 1) / 2
    m = np.linalg.inv(iso_aff) @ big_aff
    big = ndimage.affine_transform(iso, m[:3, :3], m[:3, 3], output_shape=shape, order=1)
    large = folder / "head_512x512x300.nii"
    save_nifti(Volume(np.round(big).astype(np.int16), big_aff, "MR"), large)
    return {"1 mm brain": brain, "512x512x300 head": large}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/brain-t1-dae")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (the network's device)")
    ap.add_argument("--head", help="take the head from this scan instead of generating it")
    args = ap.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp), args.head)
        results = {}
        for name, path in inputs.items():
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), args.model, str(args.repeats), args.device],
                capture_output=True,
                text=True,
                check=True,
            )
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    gpu = f", {torch.cuda.get_device_name(0)}" if args.device == "cuda" else ", CPU only"
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} CPU threads{gpu}; network on {args.device}; "
        f"torch {torch.__version__}"
    )
    print(
        "| input | load | preprocess | network | post-process | write | total s | non-network share |"
        " peak memory / input float32 | nibabel read (baseline) | GEMM ms (machine speed) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in results.items():
        s = r["stages"]
        total = sum(s[k] for k in ("load", "preprocess", "network", "postprocess", "write"))
        print(
            f"| {name} | {s['load']:.2f} | {s['preprocess']:.2f} | "
            f"{s['network']:.2f} | {s['postprocess']:.2f} | {s['write']:.2f} | {total:.2f} | "
            f"{(total - s['network']) / total:.0%} | {r['peak_growth_mib'] / r['input_f32_mib']:.2f}x "
            f"({r['peak_growth_mib']:.0f} / {r['input_f32_mib']:.0f} MiB) | {r['nibabel_s']:.2f} s | "
            f"{r['gemm_ms']:.0f} |"
        )
    print(f"(median of {args.repeats} runs per input)")


if __name__ == "__main__":
    main()
