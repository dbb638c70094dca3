"""The compressed study (``medae compress``) against standard lossless coders, on the bundled scans.

Usage: python benchmarks/bench_codec.py [--repeats 5] [--inputs FILE ...] [--model models/brain-t1-codec]

For each input: the ratio (raw voxel bytes / coded bytes), encode and decode time (medians) and, for the
lossy modes, the largest error and the PSNR against the scan's range. Baselines in the same run, on the
same voxels: gzip level 6 of the raw voxels (what a .nii.gz holds), zstd level 19, and JPEG 2000
lossless (reversible, slice by slice, imagecodecs/OpenJPEG). medae's lossless and near-lossless modes
include the whole file (header, checksums); the latent mode includes the registration to the model's
reference. Times exclude reading the input and loading the model.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [
    ROOT / "resources" / "samples" / "brain_t1.nii.gz",
    ROOT / "resources" / "samples" / "ct_chest_synthetic.nii.gz",
]


def _timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def _baselines(a: np.ndarray, repeats: int) -> list[tuple]:
    import imagecodecs

    raw = np.ascontiguousarray(a).tobytes()
    rows = []
    blob, te = _timed(lambda: gzip.compress(raw, 6), repeats)
    _, td = _timed(lambda: gzip.decompress(blob), repeats)
    rows.append(("gzip -6 (a .nii.gz)", len(blob), te, td, 0.0))
    blob, te = _timed(lambda: imagecodecs.zstd_encode(raw, 19), max(1, repeats // 2))
    _, td = _timed(lambda: imagecodecs.zstd_decode(blob), repeats)
    rows.append(("zstd -19", len(blob), te, td, 0.0))
    if a.dtype.kind in "iu" and a.dtype.itemsize <= 2:
        u = (a.astype(np.int32) - int(a.min())).astype(np.uint16)
        planes = [np.ascontiguousarray(u[..., k]) for k in range(u.shape[-1])]
        parts, te = _timed(lambda: [imagecodecs.jpeg2k_encode(p, level=0, reversible=True) for p in planes], repeats)
        _, td = _timed(lambda: [imagecodecs.jpeg2k_decode(p) for p in parts], repeats)
        rows.append(("JPEG 2000 lossless", sum(len(p) for p in parts), te, td, 0.0))
    return rows


def _medae(volume, repeats: int, model) -> list[tuple]:
    from medae.codec import compress, container, decompress

    a = np.asarray(volume.array)
    rng = float(a.max()) - float(a.min())
    rows = []
    modes = [
        ("lossless", None),
        ("near-lossless", 1),
        ("near-lossless", 2),
        ("near-lossless", 4),
        ("near-lossless", None),
    ]
    if model is not None:
        modes.append(("latent", None))
    for mode, bound in modes:
        runs = max(1, repeats // 2) if mode == "latent" else repeats
        (header, sections), te = _timed(lambda m=mode, b=bound: compress(volume, m, b, model=model), runs)
        blob = container.pack(header, sections)
        back, td = _timed(lambda b=blob: decompress(*container.unpack(b), model=model), runs)
        err = back.array.astype(np.float64) - a.astype(np.float64)
        if mode == "latent":
            inside = np.abs(back.array) > 0
            err = err[inside]
        mse = float(np.mean(err**2)) if err.size else 0.0
        psnr = float("inf") if mse == 0 else 10 * np.log10(rng**2 / mse)
        name = f"medae {mode}" + (f" (within {header['max_error']:g})" if mode == "near-lossless" else "")
        if mode == "near-lossless" and bound is None:
            name = name.replace("(within", "(default bound: within")
        if mode == "latent":
            name += " (brain region only)"
        rows.append((name, len(blob), te, td, psnr, float(np.abs(err).max()) if err.size else 0.0))
    return rows


def main() -> None:
    """Runs every input and prints a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inputs", nargs="*", type=Path, default=SAMPLES)
    parser.add_argument("--model", default=str(ROOT / "models" / "brain-t1-codec"))
    args = parser.parse_args()
    import torch

    from medae.io import load
    from medae.model import load_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_model(args.model, device="cpu") if args.model else None
    threads = torch.get_num_threads()
    print(f"Machine: {platform.machine()} {platform.system()}, {threads} threads, torch {torch.__version__}")
    print("| input | coder | ratio | encode s | decode s | largest error | PSNR dB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for path in args.inputs:
        volume = load(path)
        a = np.asarray(volume.array)
        label = f"{path.name} ({'x'.join(map(str, a.shape))} {a.dtype.name}, {a.nbytes / 1e6:.1f} MB)"
        brain_like = model is not None and volume.modality.upper() == "MR"
        for row in _baselines(a, args.repeats) + _medae(volume, args.repeats, model if brain_like else None):
            name, size, te, td, psnr = row[:5]
            largest = row[5] if len(row) > 5 else 0.0
            psnr_text = "lossless" if psnr in (0.0, float("inf")) else f"{psnr:.1f}"
            print(f"| {label} | {name} | {a.nbytes / size:.2f} | {te:.3f} | {td:.3f} | {largest:g} | {psnr_text} |")


if __name__ == "__main__":
    main()
