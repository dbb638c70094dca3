"""Makes ``samples/ct_chest_synthetic.nii.gz``: a synthetic chest CT for trying the CT window presets.

It is drawn from simple shapes, not taken from any person: a body ellipse (skin, fat, muscle), two
lungs at about -850 HU with branching vessels, heart and aorta, spine and ribs, sternum, the top of
the liver and a scanner table, plus mild correlated noise. Values are int16 Hounsfield units on a
256 x 256 x 120 grid of 0.8 x 0.8 x 2.5 mm, stored in DICOM-like LPS order (i towards the patient's
left, j towards posterior). The random generator is seeded, so every run writes the same voxels.

Run from the repository root::

    python resources/make_ct_sample.py            # writes resources/samples/ct_chest_synthetic.nii.gz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SHAPE = (256, 256, 120)
SPACING = (0.8, 0.8, 2.5)
SEED = 20240611
# The anatomy below is laid out in adult-sized millimetres and shrunk to fit the 205 mm field of view.
XY_SCALE = 0.58
Z_SCALE = 0.75


def affine() -> np.ndarray:
    """Voxel index -> RAS+ mm for LPS array order, centred on the origin."""
    a = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])
    a[:3, 3] = [SPACING[0] * (SHAPE[0] - 1) / 2, SPACING[1] * (SHAPE[1] - 1) / 2, -SPACING[2] * (SHAPE[2] - 1) / 2]
    return a


def _vessel_tree(rng: np.random.Generator, root: np.ndarray, direction: np.ndarray, depth: int) -> list:
    """Segments (start, end, radius) of a branching tree, in mm."""
    segments = []
    stack = [(root, direction / np.linalg.norm(direction), 4.0, depth)]
    while stack:
        start, d, radius, level = stack.pop()
        length = 12 + 10 * level + rng.uniform(0, 8)
        end = start + d * length
        segments.append((start, end, radius))
        if level > 0:
            for _ in range(2):
                turn = d + rng.normal(0, 0.55, 3)
                stack.append((end, turn / np.linalg.norm(turn), radius * 0.72, level - 1))
    return segments


def _segment_distance(px, py, pz, a, b) -> np.ndarray:
    ab = b - a
    t = ((px - a[0]) * ab[0] + (py - a[1]) * ab[1] + (pz - a[2]) * ab[2]) / float(ab @ ab)
    t = np.clip(t, 0, 1)
    return np.sqrt((px - a[0] - t * ab[0]) ** 2 + (py - a[1] - t * ab[1]) ** 2 + (pz - a[2] - t * ab[2]) ** 2)


def make_volume(seed: int = SEED) -> np.ndarray:
    """The synthetic chest CT as int16 HU, shape ``SHAPE``."""
    rng = np.random.default_rng(seed)
    aff = affine()
    i, j = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    x = (aff[0, 0] * i + aff[0, 3]) / XY_SCALE  # RAS: +x = patient right
    y = (aff[1, 1] * j + aff[1, 3]) / XY_SCALE  # +y = anterior
    vol = np.full(SHAPE, -1000.0, dtype=np.float32)
    trees = []
    for side in (-1, 1):
        for _ in range(3):
            root = np.array([side * 25.0, 5.0, rng.uniform(-40, 40)])
            trees += _vessel_tree(rng, root, np.array([side * 1.0, rng.normal(0, 0.6), rng.normal(0, 0.8)]), 4)
    for k in range(SHAPE[2]):
        z = (aff[2, 2] * k + aff[2, 3]) / Z_SCALE
        s = np.full(x.shape, -1000.0, dtype=np.float32)
        body = (x / 165) ** 2 + ((y + 5) / 115) ** 2
        s[body <= 1] = -100  # fat
        s[(x / 150) ** 2 + ((y + 5) / 100) ** 2 <= 1] = 45  # muscle wall
        s[(x / 137) ** 2 + ((y + 5) / 88) ** 2 <= 1] = 35  # soft tissue inside
        # Lungs shrink towards the apex (top) and stop at the diaphragm dome (bottom).
        apex = np.sqrt(np.clip((150 - z) / 60, 0, 1))  # a rounded dome at the top
        for side in (-1, 1):
            cx = side * 62
            dome = -95 + 25 * ((x - cx) / 60) ** 2 + (12 if side == 1 else 0)
            lung = ((x - cx) / (52 * apex + 1)) ** 2 + ((y + 2) / (72 * apex + 1)) ** 2 <= 1
            s[lung & (z > dome)] = -850
            liver = (side == 1) & ((x - cx) ** 2 / 70**2 + (y / 80) ** 2 <= 1) & (z <= dome)
            s[liver] = 60
        heart = ((x + 18) / 50) ** 2 + ((y - 18) / 42) ** 2 + ((z + 40) / 70) ** 2 <= 1
        s[heart] = 40
        s[((x + 20) ** 2 + (y + 42) ** 2 <= 13**2) & (z > -110)] = 45  # descending aorta
        s[(x**2 + (y - 40) ** 2 <= 11**2) & (z > -20)] = 45  # ascending aorta
        # Spine: vertebral body, canal, posterior arch.
        vb = x**2 + (y + 62) ** 2
        s[vb <= 19**2] = 250
        s[(vb <= 19**2) & (vb >= 16**2)] = 700
        s[(x**2 + (y + 88) ** 2 <= 12**2) & (np.abs(x) > 6)] = 600
        s[x**2 + (y + 86) ** 2 <= 7**2] = 20
        s[(np.abs(x) <= 3) & (y < -95) & (y > -110)] = 650  # spinous process
        s[(np.abs(x) <= 9) & (y > 86) & (y < 96) & (z > -80)] = 500  # sternum
        # Ribs slope down from the spine to the front, so an axial slice cuts them into short arcs.
        angle = np.arctan2(y + 5, x)
        ring = np.abs(np.sqrt((x / 142) ** 2 + ((y + 5) / 93) ** 2) - 1) < 0.05
        rib_z = z + 45 * (1 + np.sin(angle))  # sin = -1 at the back, +1 at the front
        s[ring & ((rib_z % 28.0) < 10) & (np.abs(np.cos(angle)) > 0.25) & (z > -120)] = 900
        s[(y < -128) & (y > -134) & (np.abs(x) < 200)] = 150  # table top
        s[(y <= -134) & (y > -150) & (np.abs(x) < 190)] = -300  # table core
        vol[:, :, k] = s
    # Vessels only show inside the lungs, as on a real scan.
    xs, ys = x[..., None], y[..., None]
    zs = ((aff[2, 2] * np.arange(SHAPE[2]) + aff[2, 3]) / Z_SCALE)[None, None, :]
    lungs = vol == -850
    for a, b, radius in trees:
        lo = np.minimum(a, b) - radius - 1
        hi = np.maximum(a, b) + radius + 1
        ii = np.where((x[:, 0] >= lo[0]) & (x[:, 0] <= hi[0]))[0]
        jj = np.where((y[0] >= lo[1]) & (y[0] <= hi[1]))[0]
        kk = np.where((zs[0, 0] >= lo[2]) & (zs[0, 0] <= hi[2]))[0]
        if not (ii.size and jj.size and kk.size):
            continue
        sub = np.ix_(ii, jj, kk)
        d = _segment_distance(xs[ii][:, jj], ys[ii][:, jj], zs[:, :, kk], a, b)
        hit = (d <= radius) & lungs[sub]
        vol[sub] = np.where(hit, 40.0, vol[sub])
    # Mild noise, blurred over a few voxels as CT noise is, only inside the body to keep the file small.
    noise = rng.normal(0, 5, (SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2])).astype(np.float32)
    noise = np.repeat(np.repeat(noise, 2, axis=0), 2, axis=1)
    inside = vol > -990
    vol[inside] += noise[inside]
    return np.clip(np.round(vol), -1024, 3071).astype(np.int16)


def main(argv: list[str] | None = None) -> int:
    """Writes the sample."""
    import nibabel as nib

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "samples" / "ct_chest_synthetic.nii.gz"))
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    img = nib.Nifti1Image(make_volume(args.seed), affine())
    img.set_sform(affine(), code=1)
    img.set_qform(affine(), code=1)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"medae synthetic chest CT (not a patient)"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_name(".tmp-" + Path(args.out).name)
    nib.save(img, str(tmp))
    tmp.replace(args.out)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
