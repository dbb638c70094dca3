"""Small volumes and analysis results on known grids, shared by the viewer tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Finding:
    label: int
    volume_ml: float
    peak: float
    mean: float
    centroid_world: tuple
    centroid_voxel: tuple
    side: str


@dataclass
class Result:
    """The fields of ``medae.analysis.AnalysisResult`` the viewer reads, for viewer-only unit tests."""

    heatmap: Volume
    labels: Volume
    reconstruction: Volume
    residual: Volume
    findings: list
    score: float = 4.2
    percentile: float = 99.0
    threshold: float = 3.0
    units: str = "z (healthy)"
    warnings: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    device: str = "CPU"
    model_id: str = "test-model"


def result_for(vol: Volume, blob_at=(10, 12, 8), peak: float = 6.0) -> Result:
    """A Gaussian blob of heat at a source index, with one finding there."""
    ii, jj, kk = np.meshgrid(*[np.arange(s) for s in vol.shape], indexing="ij")
    d2 = (ii - blob_at[0]) ** 2 + (jj - blob_at[1]) ** 2 + (kk - blob_at[2]) ** 2
    heat = (peak * np.exp(-d2 / 8.0)).astype(np.float32)
    labels = (heat >= 3.0).astype(np.int32)
    world = tuple(float(x) for x in vol.voxel_to_world(np.asarray(blob_at, float)))
    f = Finding(1, float(labels.sum()) * 0.0016, peak, 4.0, world, blob_at, "right")
    recon = vol.with_array(np.asarray(vol.array, np.float32) * 0.9)
    residual = vol.with_array(np.asarray(vol.array, np.float32) - recon.array)
    return Result(vol.with_array(heat), vol.with_array(labels), recon, residual, [f], warnings=["test warning"])
