"""Loading speed and memory: medae's DICOM and NIfTI readers against SimpleITK and nibabel.

Writes a 512x512x300 int16 CT series (shuffled file names, reversed InstanceNumber, stored int16
with RescaleIntercept -1024) and the same volume as .nii and .nii.gz into a temporary folder, then
times in the same run (median of --repeats, page cache warm for every reader):

- full DICOM load: ``medae.io.load(folder)`` (scan, every geometry check, pixel pass) against
  SimpleITK's GetGDCMSeriesIDs + GetGDCMSeriesFileNames + ImageSeriesReader.Execute;
- folder scan alone: ``medae.io.scan(folder)`` against GetGDCMSeriesIDs + GetGDCMSeriesFileNames;
- NIfTI: ``medae.io.nifti.load_nifti`` against ``np.asanyarray(nibabel.load(p).dataobj)``, read into
  memory when nibabel returns a memory map;
- peak memory of medae's DICOM load (tracemalloc) relative to the output array.

Run: python benchmarks/bench_load.py [--repeats 5] [--slices 300]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medae.io import load, scan  # noqa: E402
from medae.io.nifti import load_nifti, save_nifti  # noqa: E402
from medae.volume import Volume  # noqa: E402
from tests.dicom_factory import axial_affine, write_series  # noqa: E402


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sitk_scan(folder: Path) -> list[str]:
    import SimpleITK as sitk

    ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    return list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), ids[0]))


def _sitk_load(folder: Path):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(_sitk_scan(folder))
    return reader.Execute()


def _nibabel_load(path: Path) -> np.ndarray:
    import nibabel as nib

    data = np.asanyarray(nib.load(str(path)).dataobj)
    # An uncompressed file comes back as a lazy memory map: read it into memory, as medae does.
    return np.array(data) if isinstance(data, np.memmap) else data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, default=300)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    shape = (512, 512, args.slices)
    hu = rng.integers(-1024, 2000, size=shape, dtype=np.int16)
    affine = axial_affine((0.7, 0.7, 1.0), origin=(180.0, 180.0, -150.0))
    with tempfile.TemporaryDirectory(prefix="medae-bench-") as tmp:
        folder = Path(tmp) / "ct"
        t0 = time.perf_counter()
        write_series(folder, hu, affine, stored_dtype=np.int16, intercept=-1024, description="bench CT")
        print(f"wrote {args.slices} DICOM files in {time.perf_counter() - t0:.1f} s", flush=True)
        nii, niigz = Path(tmp) / "ct.nii", Path(tmp) / "ct.nii.gz"
        save_nifti(Volume(hu, affine), nii)
        save_nifti(Volume(hu, affine), niigz)

        # Correctness first: the same voxels and a warm page cache for everyone.
        v = load(folder)
        assert v.array.dtype == np.int16 and np.array_equal(v.array, hu) and np.allclose(v.affine, affine)
        ref = _sitk_load(folder)
        assert ref.GetSize() == shape
        del v, ref

        results = {}
        results["dicom_load_medae"] = _median_time(lambda: load(folder), args.repeats)
        results["dicom_load_sitk"] = _median_time(lambda: _sitk_load(folder), args.repeats)
        results["dicom_scan_medae"] = _median_time(lambda: scan(folder), args.repeats)
        results["dicom_scan_sitk"] = _median_time(lambda: _sitk_scan(folder), args.repeats)
        for name, path in (("nii", nii), ("niigz", niigz)):
            results[f"{name}_medae"] = _median_time(lambda p=path: load_nifti(p), args.repeats)
            results[f"{name}_nibabel"] = _median_time(lambda p=path: _nibabel_load(p), args.repeats)

        gc.collect()
        tracemalloc.start()
        v = load(folder)
        _cur, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out_bytes = v.array.nbytes

    print(
        f"\nmachine: {platform.machine()} {platform.processor() or ''} {platform.system()}, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"volume: {shape} int16 = {out_bytes / 2**20:.0f} MiB; median of {args.repeats} runs\n")
    rows = [
        ("DICOM full load", "dicom_load_medae", "dicom_load_sitk", "SimpleITK", 0.7),
        ("DICOM folder scan", "dicom_scan_medae", "dicom_scan_sitk", "SimpleITK", 0.8),
        (".nii load", "nii_medae", "nii_nibabel", "nibabel", None),
        (".nii.gz load", "niigz_medae", "niigz_nibabel", "nibabel", None),
    ]
    print(f"{'task':<20}{'medae s':>10}{'baseline s':>12}  {'ratio':>6}  target")
    for label, ours, theirs, who, target in rows:
        ratio = results[ours] / results[theirs]
        goal = f"<= {target}x {who}" if target else f"vs {who}"
        print(f"{label:<20}{results[ours]:>10.3f}{results[theirs]:>12.3f}  {ratio:>6.2f}  {goal}")
    print(
        f"{'DICOM peak memory':<20}{peak / 2**20:>9.0f}M{out_bytes / 2**20:>11.0f}M  {peak / out_bytes:>6.2f}  "
        "<= 1.2x output array"
    )


if __name__ == "__main__":
    main()
