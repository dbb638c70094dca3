"""Realistic healthy T1 scans from one template: anatomy, head, scanner and acquisition variation.

Each scan is the template warped by a smooth random deformation and scaling (anatomical variation), given a
synthetic scalp and skull (clinical T1 scans are not skull-stripped), a tissue contrast, bias field and
noise of its own, and acquired on a grid with its own pose, voxel size, slice thickness, orientation and
field of view. The tissue maps come along on the scan's grid, so lesions can be made tissue-aware.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medae import geometry
from medae.training.template import Template
from medae.volume import Volume

ORIENTATIONS = ("RAS", "LPS", "LAS", "RPI", "LIP", "ASL", "PIR")


@dataclass
class HealthyScan:
    """A generated scan and its tissue maps (same grid)."""

    volume: Volume
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    params: dict


def head_distance(template: Template) -> np.ndarray:
    """Signed distance in mm outside the brain mask (0 inside), on the template grid."""
    from scipy import ndimage

    return ndimage.distance_transform_edt(~template.brain).astype(np.float32)


def head_intensity(dist: np.ndarray, t1: np.ndarray, rng: np.random.Generator | None, base: float = 1.0) -> np.ndarray:
    """Adds CSF rim, skull (dark cortex, brighter marrow) and scalp (bright fat) outside the brain."""
    if rng is None:
        csf_w, bone_w, scalp_w, scalp_i, marrow = 2.5, 6.0, 6.0, 0.85, 0.35
    else:
        csf_w, bone_w, scalp_w = rng.uniform(1.5, 3.5), rng.uniform(4.5, 8.0), rng.uniform(4.0, 8.0)
        scalp_i, marrow = rng.uniform(0.6, 1.0), rng.uniform(0.2, 0.45)
    out = t1.copy()
    rim = (dist > 0) & (dist <= csf_w)
    bone = (dist > csf_w) & (dist <= csf_w + bone_w)
    scalp = (dist > csf_w + bone_w) & (dist <= csf_w + bone_w + scalp_w)
    mid = csf_w + bone_w / 2
    out[rim] = 0.12 * base
    out[bone] = (0.08 + marrow * np.exp(-((dist[bone] - mid) ** 2) / (2 * (bone_w / 5) ** 2))) * base
    out[scalp] = scalp_i * base
    return out


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], coarse: int, amp: float) -> np.ndarray:
    """A smooth random field: coarse Gaussian noise upsampled with cubic splines."""
    from scipy import ndimage

    grid = rng.normal(0, amp, size=(coarse,) * len(shape)).astype(np.float32)
    zoom = [s / coarse for s in shape]
    return ndimage.zoom(grid, zoom, order=3, mode="nearest")[tuple(slice(0, s) for s in shape)]


def generate_healthy(
    template: Template, seed: int, dist: np.ndarray | None = None, variation: float = 1.0
) -> HealthyScan:
    """One healthy scan.

    Args:
        template: The template maps.
        seed: Everything random follows from it.
        dist: Precomputed ``head_distance(template)`` (saves time over many scans).
        variation: Scales the size of every random variation (0 = the template itself, in a 1 mm RAS grid).
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    v = float(variation)
    if dist is None:
        dist = head_distance(template)
    tshape = template.t1.shape

    # Anatomy: smooth deformation (mm) and global anisotropic scaling about the brain centre.
    # The deformation is smooth, so a quarter-resolution field looked up at the nearest node is enough.
    dshape = tuple(s // 4 + 1 for s in tshape)
    disp = [_smooth_field(rng, dshape, 6, 2.5 * v) for _ in range(3)]
    scale = 1 + rng.uniform(-0.07, 0.07, 3) * v
    # Pose of the head in the scanner.
    angles = rng.uniform(-12, 12, 3) * v
    rot = geometry.rotation_matrix(tuple(angles))
    shift = rng.uniform(-15, 15, 3) * v

    # Acquisition grid: voxel size, slice thickness, orientation, mild obliquity, field of view.
    inplane = rng.choice([0.9, 1.0, 1.0, 1.1, 1.2]) if v > 0 else 1.0
    thick = rng.choice([1.0, 1.0, 1.2, 1.5, 2.0, 3.0]) if v > 0 else 1.0
    sp = np.array([inplane, inplane, thick])
    code = ORIENTATIONS[rng.integers(len(ORIENTATIONS))] if v > 0 else "RAS"
    oblique = geometry.rotation_matrix(tuple(rng.uniform(-8, 8, 3) * v)) if rng.random() < 0.4 else np.eye(3)
    centre_world = np.array([0.0, -18.0, 10.0]) + shift
    fov = np.array([200.0, 236.0, 190.0]) * (1 + rng.uniform(-0.08, 0.12, 3) * v)
    # Build an RAS grid with the slice axis along S, then reorder axes to the chosen code.
    shape = np.maximum(8, np.round(fov / sp).astype(int))
    aff = np.eye(4)
    aff[:3, :3] = oblique @ np.diag(sp)
    aff[:3, 3] = centre_world - aff[:3, :3] @ ((shape - 1) / 2.0)

    # Output voxel -> world -> head frame (undo pose) -> template world (undo scaling) -> template voxel.
    # Compose the whole chain into one affine, then add the deformation.
    centre = np.array([0.0, -18.0, 10.0])
    undo_pose = np.eye(4)
    undo_pose[:3, :3] = np.diag(1 / scale) @ rot.T
    undo_pose[:3, 3] = centre - undo_pose[:3, :3] @ (centre + shift)
    chain = (np.linalg.inv(template.affine) @ undo_pose @ aff).astype(np.float32)
    ii = np.indices(tuple(shape), dtype=np.float32).reshape(3, -1)
    tv = chain[:3, :3] @ ii + chain[:3, 3:4]
    del ii
    tvi = [np.clip((tv[a] / 4).astype(np.int32), 0, dshape[a] - 1) for a in range(3)]
    for a in range(3):
        tv[a] += disp[a][tvi[0], tvi[1], tvi[2]]
    del tvi

    def sample(arr: np.ndarray, coords: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(arr, coords, order=1, mode="constant", cval=0.0).reshape(tuple(shape))

    t1 = sample(template.t1, tv)
    gm, wm = sample(template.gm, tv), sample(template.wm, tv)
    brain = sample(template.brain.astype(np.float32), tv)
    d = ndimage.map_coordinates(dist, tv, order=1, mode="nearest").reshape(tuple(shape))
    del tv

    # Tissue contrast of this scanner and sequence.
    csf = np.clip(brain - gm - wm, 0, 1)
    gain = 1 + rng.uniform(-0.08, 0.08) * v * gm + rng.uniform(-0.06, 0.06) * v * wm + rng.uniform(-0.3, 0.3) * v * csf
    img = np.clip(t1 * gain, 0, None) ** (1 + rng.uniform(-0.15, 0.15) * v)
    img = head_intensity(d, img, rng if v > 0 else None)
    # Partial volume at the slice thickness.
    if thick > inplane:
        img = ndimage.gaussian_filter1d(img, sigma=0.4 * thick / sp[2], axis=2)
    # Bias field and noise (Rician magnitude).
    small = tuple(int(s) // 4 + 1 for s in shape)
    bias = ndimage.zoom(np.exp(_smooth_field(rng, small, 4, 0.08 * v)), 4, order=1)
    img = img * bias[: shape[0], : shape[1], : shape[2]]
    sigma = rng.uniform(0.01, 0.035) * v
    if sigma > 0:
        n1 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
        n2 = rng.standard_normal(img.shape, dtype=np.float32) * sigma
        img = np.sqrt((img + n1) ** 2 + n2**2)
    units = float(rng.uniform(400, 3000)) if v > 0 else 1000.0
    arr = np.clip(img * units, 0, 32767).astype(np.int16)

    out, out_aff = geometry.reorient(arr, aff, code)
    maps = [geometry.reorient(m, aff, code)[0] for m in (gm, wm, csf, brain)]
    params = {
        "seed": int(seed),
        "angles_deg": angles.round(2).tolist(),
        "shift_mm": shift.round(2).tolist(),
        "scale": scale.round(4).tolist(),
        "spacing": sp.tolist(),
        "orientation": code,
        "noise_sigma": round(sigma, 4),
        "units": round(units, 1),
    }
    vol = Volume(
        np.ascontiguousarray(out),
        out_aff,
        modality="MR",
        meta={
            "format": "synthetic",
            "series_description": f"synthetic healthy T1 (seed {seed})",
            "body_part": "BRAIN",
            "generator": params,
        },
        source=f"synthetic:{seed}",
    )
    return HealthyScan(vol, *(np.ascontiguousarray(m) for m in maps), params=params)
