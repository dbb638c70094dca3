"""Small volumes and analysis results on known grids, shared by the viewer tests."""

from __future__ import annotations

import numpy as np

from medae.analysis.result import AnalysisResult, Finding
from medae.volume import Volume

LPS_AFFINE = np.array(
    [[-0.8, 0, 0, 50.0], [0, -0.8, 0, 40.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]],
    dtype=np.float64,
)


def ct_volume(shape=(40, 36, 20), affine=LPS_AFFINE) -> Volume:
    """Int16 HU ramp with a bright marker on the patient's right (world x > 0)."""
    arr = np.full(shape, -1000, np.int16)
    arr[5:-5, 5:-5, :] = 40
    vol = Volume(arr, affine, "CT", meta={"series_description": "test CT"}, source="test.nii.gz")
    return vol


def marker_index(vol: Volume, world) -> tuple[int, int, int]:
    """The source voxel nearest a world point."""
    return tuple(int(v) for v in np.rint(vol.world_to_voxel(np.asarray(world, float))))


def result_for(vol: Volume, blob_at=(10, 12, 8), peak: float = 6.0) -> AnalysisResult:
    """A known Gaussian blob of heat at a source index, with one finding there (a real result object)."""
    ii, jj, kk = np.meshgrid(*[np.arange(s) for s in vol.shape], indexing="ij")
    d2 = (ii - blob_at[0]) ** 2 + (jj - blob_at[1]) ** 2 + (kk - blob_at[2]) ** 2
    heat = (peak * np.exp(-d2 / 8.0)).astype(np.float32)
    labels = (heat >= 3.0).astype(np.int32)
    world = tuple(float(x) for x in vol.voxel_to_world(np.asarray(blob_at, float)))
    f = Finding(1, float(labels.sum()) * 0.0016, peak, 4.0, world, blob_at, world, "right")
    recon = vol.with_array(np.asarray(vol.array, np.float32) * 0.9)
    residual = vol.with_array(np.asarray(vol.array, np.float32) - recon.array)
    return AnalysisResult(
        volume=vol,
        heatmap=vol.with_array(heat),
        labels=vol.with_array(labels),
        reconstruction=recon,
        residual=residual,
        findings=[f],
        score=4.2,
        percentile=99.0,
        threshold=3.0,
        units="z (healthy)",
        model_id="test-model",
        model_sha256="0" * 64,
        device="CPU",
        warnings=["test warning"],
    )
