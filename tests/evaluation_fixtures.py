"""Shared, cached inputs of the lesion, metric and evaluation tests.

The template and generated scans are cached for the whole test process (they take seconds each), and a
small analytic "head" gives exact geometry on any grid in milliseconds.
"""

from __future__ import annotations

import functools

import numpy as np

from medae import geometry
from medae.volume import Volume


@functools.lru_cache(maxsize=1)
def template():
    from medae.training.template import load_template

    return load_template()


@functools.lru_cache(maxsize=1)
def template_distance():
    from medae.training.healthy import head_distance

    return head_distance(template())


def generated_scan(seed: int, cache: bool = True):
    """A realistic generated healthy scan; cached ones are shared, do not modify them."""
    from medae.training.healthy import generate_healthy

    if cache:
        return _cached_scan(seed)
    return generate_healthy(template(), seed, template_distance())


@functools.lru_cache(maxsize=2)
def _cached_scan(seed: int):
    return generated_scan(seed, cache=False)


def grid_affine(
    code: str = "RAS",
    spacing=(1.0, 1.0, 1.0),
    oblique_deg=(0.0, 0.0, 0.0),
    shape=(120, 140, 110),
    centre=(0.0, -18.0, 10.0),
) -> np.ndarray:
    """A grid of ``shape`` centred on ``centre`` (world mm) with the given orientation, spacing, obliquity."""
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix(oblique_deg) @ np.diag(spacing)
    aff[:3, 3] = np.asarray(centre) - aff[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    arr, out = geometry.reorient(np.zeros(shape, np.int8), aff, code)
    return out, arr.shape


@functools.lru_cache(maxsize=4)
def analytic_scan(code: str = "RAS", spacing=(1.0, 1.0, 1.0), oblique_deg=(0.0, 0.0, 0.0), seed: int = 0):
    """An ellipsoid "head" on any grid: white matter, a grey-matter shell, CSF ventricles, skull.

    Tissue is defined in world millimetres, so the same anatomy sits at the same world place whatever
    the grid; intensities: WM 600, GM 450, CSF 200, skull 150, with noise. Shared: do not modify it.
    """
    from medae.training.healthy import HealthyScan

    fov = np.array([150.0, 170.0, 140.0])
    shape = tuple(int(round(f / s)) for f, s in zip(fov, spacing, strict=True))
    aff, shape = grid_affine(code, spacing, oblique_deg, shape)
    world = geometry.apply_affine(aff, np.indices(shape, dtype=np.float32).reshape(3, -1).T).reshape(*shape, 3)
    centre = np.array([0.0, -18.0, 10.0])

    def inside(radii, c=centre):
        return (((world - c) / np.asarray(radii)) ** 2).sum(-1) <= 1.0

    brain = inside((60, 72, 55))
    csf = inside((8, 20, 10), centre + [0, 5, 5]) & brain
    wm = inside((45, 57, 42)) & ~csf
    gm = brain & ~wm & ~csf
    skull = inside((66, 78, 61)) & ~brain
    rng = np.random.default_rng(seed)
    img = 600.0 * wm + 450.0 * gm + 200.0 * csf + 150.0 * skull + rng.normal(0, 15, shape)
    vol = Volume(np.clip(img, 0, None).astype(np.int16), aff, "MR", meta={"body_part": "BRAIN"}, source="analytic")
    maps = [m.astype(np.float32) for m in (gm, wm, csf, brain)]
    return HealthyScan(vol, *maps, params={"seed": seed, "orientation": code})
