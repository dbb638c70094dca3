"""The healthy anatomy medae trains on: the MNI ICBM152 2009a symmetric T1 template and tissue maps.

The template ships inside the ``nilearn`` package (the ``[train]`` extra); nothing is downloaded. It is
one average brain: all variation in the training set comes from ``healthy.py``.

Copyright notice of the template (kept beside anything derived from it):
Copyright (C) 1993-2009 McConnell Brain Imaging Centre, Montreal Neurological Institute,
McGill University. Permission to use, copy, modify, and distribute this software and its documentation for
any purpose and without fee is hereby granted, provided that the above copyright notice appear in all copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medae.errors import MedaeError

TEMPLATE_NOTICE = __doc__.split("Copyright notice of the template (kept beside anything derived from it):\n")[1].strip()
TEMPLATE_NAME = "MNI ICBM152 2009a symmetric (nilearn copy)"


@dataclass
class Template:
    """Template maps on its 1 mm grid: T1 (0..1), grey matter, white matter, brain mask; one affine."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    brain: np.ndarray
    affine: np.ndarray

    @property
    def csf(self) -> np.ndarray:
        """CSF probability inside the brain mask."""
        return np.clip(self.brain.astype(np.float32) - self.gm - self.wm, 0, 1)


def template_dir() -> Path:
    """Folder of nilearn's bundled template files."""
    try:
        import nilearn.datasets
    except ImportError as exc:
        raise MedaeError("Training needs the [train] extra: pip install 'medae[train]' (it brings nilearn).") from exc
    return Path(nilearn.datasets.__file__).parent / "data"


def load_template() -> Template:
    """Reads the bundled MNI template and tissue maps."""
    import nibabel as nib
    from scipy import ndimage

    folder = template_dir()
    maps = {}
    affine = None
    for key in ("t1", "gm", "wm"):
        path = folder / f"mni_icbm152_{key}_tal_nlin_sym_09a_converted.nii.gz"
        if not path.is_file():
            raise MedaeError(f"{path}: the template is missing from nilearn; reinstall nilearn.")
        img = nib.load(str(path))
        maps[key] = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        affine = img.affine
    brain = ndimage.binary_fill_holes(ndimage.binary_closing(maps["t1"] > 0.05, iterations=2))
    return Template(maps["t1"], maps["gm"], maps["wm"], brain, np.asarray(affine, dtype=np.float64))


def brain_space(
    spacing: float = 2.0,
    shape: tuple[int, int, int] = (96, 112, 96),
    centre: tuple[float, float, float] = (0.0, -18.0, 12.0),
) -> np.ndarray:
    """Model-space affine: an RAS grid of ``shape`` at ``spacing`` mm centred on ``centre`` (MNI mm)."""
    aff = np.diag([spacing, spacing, spacing, 1.0])
    aff[:3, 3] = np.asarray(centre) - spacing * (np.asarray(shape) - 1) / 2.0
    return aff


def reference_on_grid(
    template: Template, affine: np.ndarray, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The template T1 and its brain mask resampled onto a model grid."""
    from scipy import ndimage

    m = np.linalg.inv(template.affine) @ affine
    t1 = ndimage.affine_transform(template.t1, m[:3, :3], m[:3, 3], output_shape=shape, order=1)
    mask = ndimage.affine_transform(template.brain.astype(np.float32), m[:3, :3], m[:3, 3], output_shape=shape, order=1)
    return t1.astype(np.float32), mask > 0.5
