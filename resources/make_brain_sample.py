"""Writes resources/samples/brain_t1.nii.gz: a SYNTHETIC T1 head scan with one synthetic lesion.

Not a patient. It is a held-out healthy variation (seed far from the training seeds) of the MNI ICBM152
2009a template made by ``medae.training.healthy`` (anatomy, scalp and skull, contrast, bias field, noise,
pose, 1 x 1 x 1.2 mm LPS grid), with a bright, irregular 9 mm lesion added in the right frontal white
matter so the demo has something to find. Seeded: every run writes the same voxels.

Usage: python resources/make_brain_sample.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SEED = 990017
LESION_RAS_IN_TEMPLATE = (24.0, 20.0, 22.0)  # MNI mm: right frontal white matter


def main() -> None:
    """Generates the sample and its description."""
    from scipy import ndimage

    from medae import geometry
    from medae.io.nifti import save_nifti
    from medae.training.healthy import generate_healthy, head_distance
    from medae.training.template import TEMPLATE_NOTICE, load_template
    from medae.volume import Volume

    template = load_template()
    scan = generate_healthy(template, SEED, head_distance(template), variation=0.8)
    vol = scan.volume
    # Find where the template point landed: the white-matter voxel of this scan nearest to it after the
    # generator's pose, via the generator's own parameters (rotation about the brain centre and shift).
    p = scan.params
    rot = geometry.rotation_matrix(tuple(p["angles_deg"]))
    centre = np.array([0.0, -18.0, 10.0])
    target = (
        rot @ ((np.array(LESION_RAS_IN_TEMPLATE) - centre) * np.array(p["scale"])) + centre + np.array(p["shift_mm"])
    )
    grid = vol.voxel_to_world(np.indices(vol.shape).reshape(3, -1).T).reshape(vol.shape + (3,))
    rng = np.random.default_rng(SEED)
    wobble = ndimage.zoom(rng.normal(0, 1.5, (4, 4, 4)), [s / 4 for s in vol.shape], order=3)
    dist = np.linalg.norm(grid - target, axis=-1) + wobble[: vol.shape[0], : vol.shape[1], : vol.shape[2]]
    weight = np.clip((9.0 - dist) / 2.5 + 0.5, 0, 1)
    wm_level = float(np.median(vol.array[scan.wm > 0.95]))
    arr = vol.array.astype(np.float32) + weight * 0.55 * wm_level
    out = Path(__file__).parent / "samples"
    meta = dict(vol.meta, series_description="SYNTHETIC T1 sample with one synthetic lesion")
    sample = Volume(np.round(arr).astype(np.int16), vol.affine, "MR", meta=meta)
    save_nifti(sample, out / "brain_t1.nii.gz")
    (out / "brain_t1.json").write_text(
        json.dumps(
            {
                "synthetic": True,
                "seed": SEED,
                "generator": p,
                "lesion": {
                    "centre_world_mm": [round(float(v), 2) for v in target],
                    "radius_mm": 9.0,
                    "kind": "hyperintense, irregular, in white matter",
                },
                "notice": TEMPLATE_NOTICE,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out / 'brain_t1.nii.gz'}: {sample.describe()}, lesion at {np.round(target, 1)} mm")


if __name__ == "__main__":
    main()
