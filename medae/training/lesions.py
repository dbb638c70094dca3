"""Synthetic lesions with ground-truth masks, for benchmarking anomaly detection on generated scans.

A lesion is a smoothly, randomly deformed sphere with a soft edge, placed in world millimetres inside the
brain mask of a ``HealthyScan``. Its intensity is always set relative to the tissue around it (a smoothed,
brain-only local mean), so it means the same thing whatever the scanner's units, bias field or contrast:

- ``hyper`` / ``hypo``: brighter or darker than the local tissue by a fraction of it, with a smooth
  internal texture (oedema, enhancing or necrotic tissue).
- ``csf_hole``: white matter turned into fluid, at this scan's own CSF intensity (cysts, lacunes).
- ``gm_island``: white matter at this scan's grey-matter intensity (heterotopia); the subtlest kind.
- ``foreign``: texture copied from elsewhere in the same head (another brain region, skull or scalp),
  rotated (a MOOD-style "source" anomaly).
- ``noise``: Gaussian noise scaled to the local intensity.

The scanner's own noise is kept inside every lesion except ``foreign`` (which brings its source's), so a
lesion never stands out merely by being too smooth. The ground truth is where the soft edge is at least
one half, inside the brain mask; the voxels change only inside the brain mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from medae import geometry
from medae.training.healthy import HealthyScan
from medae.volume import Volume

KINDS = ("hyper", "hypo", "csf_hole", "gm_island", "foreign", "noise")
# Kinds that replace white matter by another tissue: their centre must be in white matter.
WM_KINDS = ("csf_hole", "gm_island")
RADIUS_RANGE_MM = (4.0, 22.0)
# Equivalent-sphere radius bins (mm) for reporting.
SIZE_BINS = ((4.0, 7.0), (7.0, 11.0), (11.0, 16.0), (16.0, 22.0))


def size_bin(radius_mm: float) -> str:
    """Name of the size bin of a radius, e.g. "7-11 mm"."""
    for lo, hi in SIZE_BINS:
        if radius_mm < hi:
            return f"{lo:g}-{hi:g} mm"
    lo, hi = SIZE_BINS[-1]
    return f"{lo:g}-{hi:g} mm"


@dataclass
class LesionSpec:
    """Everything that defines one lesion (its randomness follows from ``seed``).

    Attributes:
        kind: One of ``KINDS``.
        centre_mm: Centre in world RAS+ millimetres.
        radius_mm: Radius of the sphere of equal volume (before clipping to the brain).
        contrast: Strength: fraction of the local intensity for hyper/hypo/noise, fraction of the way to
            the target tissue for csf_hole/gm_island, opacity for foreign.
        irregularity: Relative amplitude of the smooth deformation of the sphere's radius.
        edge_mm: Width of the soft edge.
        seed: Seed of the shape, texture and (for foreign) source placement.
    """

    kind: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    contrast: float = 0.5
    irregularity: float = 0.2
    edge_mm: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown lesion kind {self.kind!r}; choose one of {KINDS}")
        if self.radius_mm <= 0:
            raise ValueError("lesion radius must be positive")
        self.centre_mm = tuple(float(c) for c in self.centre_mm)  # type: ignore[assignment]


@dataclass
class LesionRecord:
    """A lesion as placed: its spec, label in the label map, and the ground-truth size."""

    spec: LesionSpec
    label: int
    voxels: int
    volume_ml: float
    size_bin: str
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON form."""
        d = asdict(self.spec)
        d["centre_mm"] = [round(c, 2) for c in self.spec.centre_mm]
        for k in ("radius_mm", "contrast", "irregularity", "edge_mm"):
            d[k] = round(float(d[k]), 3)
        return {
            **d,
            "label": self.label,
            "voxels": self.voxels,
            "volume_ml": round(self.volume_ml, 3),
            "size_bin": self.size_bin,
            **self.extra,
        }


@dataclass
class LesionScan:
    """A scan with lesions: the volume, its ground-truth label map (0 = none, k = lesion k), brain mask."""

    volume: Volume
    labels: np.ndarray
    brain: np.ndarray
    lesions: list[LesionRecord]


# --- shape -------------------------------------------------------------------------------------------


class _Shape:
    """Radius as a smooth function of direction: R0 (1 + f(u)), f a sum of a few low-frequency waves."""

    def __init__(self, radius: float, irregularity: float, rng: np.random.Generator) -> None:
        n = 4
        self.freq = rng.normal(size=(n, 3))
        self.freq *= (rng.uniform(1.0, 3.0, n) / np.linalg.norm(self.freq, axis=1))[:, None]
        self.phase = rng.uniform(0, 2 * np.pi, n)
        amp = rng.uniform(0.5, 1.0, n)
        dirs = _fibonacci_sphere(2000)
        raw = self._raw(dirs, amp)
        # Scale the waves to the asked relative amplitude (std over the sphere).
        self.amp = amp * (irregularity / max(float(raw.std()), 1e-9))
        f = self._f(dirs)
        # Pick R0 so that the shape's volume (1/3 of the integral of r^3 over directions) is the sphere's.
        self.r0 = radius / float(np.mean(np.clip(1 + f, 0.3, None) ** 3)) ** (1 / 3)
        self.max_radius = self.r0 * float(np.clip(1 + f, 0.3, None).max()) * 1.05

    def _raw(self, u: np.ndarray, amp: np.ndarray) -> np.ndarray:
        return np.cos(u @ self.freq.T + self.phase) @ amp

    def _f(self, u: np.ndarray) -> np.ndarray:
        return np.cos(u @ self.freq.T + self.phase) @ self.amp

    def radius(self, u: np.ndarray) -> np.ndarray:
        """Radius (mm) along unit directions ``u`` (N, 3)."""
        return self.r0 * np.clip(1 + self._f(u), 0.3, None)


def _fibonacci_sphere(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def _box(affine: np.ndarray, shape: tuple[int, ...], centre: np.ndarray, reach_mm: float) -> tuple[slice, ...] | None:
    """Voxel box holding every voxel within ``reach_mm`` of ``centre``; None if outside the grid."""
    inv = np.linalg.inv(affine)
    c = geometry.apply_affine(inv, centre[None])[0]
    # A world ball of radius r spans r * |row of the inverse| voxels along each array axis.
    half = reach_mm * np.linalg.norm(inv[:3, :3], axis=1) + 1
    lo = np.maximum(np.floor(c - half).astype(int), 0)
    hi = np.minimum(np.ceil(c + half).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _world_offsets(affine: np.ndarray, box: tuple[slice, ...], centre: np.ndarray) -> np.ndarray:
    """World offsets (mm) from ``centre`` of every voxel in ``box``, shape (*box, 3)."""
    idx = np.stack(np.meshgrid(*[np.arange(s.start, s.stop) for s in box], indexing="ij"), axis=-1)
    return geometry.apply_affine(affine, idx.astype(np.float64)) - centre


def lesion_alpha(
    spec: LesionSpec, affine: np.ndarray, shape: tuple[int, ...]
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray] | None:
    """The lesion's soft occupancy on a voxel box of the grid.

    Returns:
        (box, alpha in [0, 1] on the box, world offsets (mm) of the box voxels from the centre),
        or None when the lesion lies outside the grid.
    """
    rng = np.random.default_rng([spec.seed, 1])
    shape_fn = _Shape(spec.radius_mm, spec.irregularity, rng)
    centre = np.asarray(spec.centre_mm, dtype=np.float64)
    edge = max(float(spec.edge_mm), 0.05)
    box = _box(affine, shape, centre, shape_fn.max_radius + 3 * edge)
    if box is None:
        return None
    d = _world_offsets(affine, box, centre)
    dist = np.linalg.norm(d, axis=-1)
    u = d / np.maximum(dist, 1e-9)[..., None]
    r = shape_fn.radius(u.reshape(-1, 3)).reshape(dist.shape)
    # A logistic edge: one half exactly on the surface, so the ground truth keeps the asked volume.
    alpha = 1.0 / (1.0 + np.exp(-(r - dist) / (edge / 2.0)))
    return box, alpha.astype(np.float32), d


def _smooth_texture(d: np.ndarray, scale_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [-1, 1] over world offsets ``d`` (a few plane waves)."""
    n = 5
    k = rng.normal(size=(n, 3))
    k *= (2 * np.pi / scale_mm / np.linalg.norm(k, axis=1))[:, None]
    ph = rng.uniform(0, 2 * np.pi, n)
    t = np.cos(d @ k.T + ph).sum(-1) / np.sqrt(n / 2)
    return np.clip(t / 2, -1, 1)


# --- intensity ---------------------------------------------------------------------------------------


@dataclass
class TissueLevels:
    """Typical intensities of one scan: median over voxels that are mostly one tissue."""

    wm: float
    gm: float
    csf: float


def tissue_levels(scan: HealthyScan) -> TissueLevels:
    """The scan's own WM, GM and CSF intensities."""
    img = scan.volume.array
    brain = scan.brain > 0.5

    def level(tissue: np.ndarray, fallback: float) -> float:
        for cut in (0.8, 0.6, 0.4):
            sel = brain & (tissue > cut)
            if sel.sum() > 50:
                return float(np.median(img[sel]))
        return fallback

    wm = level(scan.wm, float(np.percentile(img[brain], 90)) if brain.any() else 1.0)
    return TissueLevels(wm=wm, gm=level(scan.gm, 0.75 * wm), csf=level(scan.csf, 0.3 * wm))


def _local_mean(
    img: np.ndarray, brain: np.ndarray, box: tuple[slice, ...], spacing: tuple[float, ...], sigma_mm: float
) -> np.ndarray:
    """Brain-only Gaussian mean of the image on ``box`` (skull and scalp do not leak in)."""
    from scipy import ndimage

    pad = [int(np.ceil(3 * sigma_mm / s)) for s in spacing]
    big = tuple(slice(max(0, b.start - p), min(n, b.stop + p)) for b, p, n in zip(box, pad, img.shape, strict=True))
    sig = [sigma_mm / s for s in spacing]
    w = brain[big].astype(np.float32)
    num = ndimage.gaussian_filter(img[big].astype(np.float32) * w, sig)
    den = ndimage.gaussian_filter(w, sig)
    local = num / np.maximum(den, 1e-3)
    inner = tuple(slice(b.start - g.start, b.stop - g.start) for b, g in zip(box, big, strict=True))
    return local[inner]


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _foreign_source(scan: HealthyScan, spec: LesionSpec, reach: float, rng: np.random.Generator) -> np.ndarray:
    """World centre of the patch a ``foreign`` lesion copies: head tissue far from the lesion."""
    img = scan.volume.array
    head = img > 0.15 * float(np.percentile(img, 99))
    idx = np.argwhere(head[::3, ::3, ::3]) * 3
    if idx.size == 0:
        idx = np.argwhere(np.ones(img.shape, bool)[::3, ::3, ::3]) * 3
    world = scan.volume.voxel_to_world(idx.astype(np.float64))
    far = np.linalg.norm(world - np.asarray(spec.centre_mm), axis=1) > 2 * reach + 10
    cand = world[far] if far.any() else world
    return cand[rng.integers(len(cand))]


def insert_lesion(
    image: np.ndarray, scan: HealthyScan, spec: LesionSpec, levels: TissueLevels | None = None
) -> tuple[tuple[slice, ...], np.ndarray, dict] | None:
    """Paints one lesion into ``image`` (float32, the scan's grid) in place.

    Args:
        image: Intensities to modify (a float copy of ``scan.volume.array``, possibly with other lesions).
        scan: The healthy scan (tissue maps and geometry; its own array is the healthy reference).
        spec: The lesion.
        levels: Precomputed ``tissue_levels(scan)``.

    Returns:
        (box, ground-truth mask on the box, details for the record), or None if it misses the grid.
    """
    vol = scan.volume
    placed = lesion_alpha(spec, vol.affine, vol.shape)
    if placed is None:
        return None
    box, alpha, d = placed
    brain_p = np.clip(scan.brain[box], 0, 1).astype(np.float32)
    truth = (alpha >= 0.5) & (brain_p > 0.5)
    alpha = alpha * brain_p  # lesions never reach the skull or scalp
    rng = np.random.default_rng([spec.seed, 2])
    orig = image[box]
    local = _local_mean(image, scan.brain > 0.5, box, vol.spacing, sigma_mm=3.0)
    levels = levels or tissue_levels(scan)
    c = float(spec.contrast)
    extra: dict = {}
    if spec.kind in ("hyper", "hypo"):
        texture = 1 + 0.3 * _smooth_texture(d, max(4.0, spec.radius_mm), rng)
        sign = 1.0 if spec.kind == "hyper" else -1.0
        new = orig + sign * c * texture * local
    elif spec.kind in WM_KINDS:
        target = levels.csf if spec.kind == "csf_hole" else levels.gm
        texture = 1 + 0.1 * _smooth_texture(d, max(4.0, spec.radius_mm), rng)
        # Move the local mean to the target tissue's level; the voxel-to-voxel noise stays.
        new = orig + c * (target * texture - local)
        extra["target_level"] = round(target, 2)
    elif spec.kind == "noise":
        from scipy import ndimage

        n = ndimage.gaussian_filter(rng.standard_normal(orig.shape).astype(np.float32), 0.6)
        n /= max(float(n.std()), 1e-6)
        new = orig + c * n * local
    else:  # foreign
        from scipy import ndimage

        reach = float(np.linalg.norm(d, axis=-1).max())
        src = _foreign_source(scan, spec, reach, rng)
        rot = _random_rotation(rng)
        pts = src + d.reshape(-1, 3) @ rot.T
        ijk = vol.world_to_voxel(pts).T
        patch = ndimage.map_coordinates(scan.volume.array.astype(np.float32), ijk, order=1, mode="nearest")
        new = orig + c * (patch.reshape(orig.shape) - orig)
        extra["source_mm"] = [round(float(v), 3) for v in src]
        extra["rotation"] = np.round(rot, 6).tolist()
    image[box] = orig + alpha * (new - orig)
    np.clip(image[box], 0, None, out=image[box])
    return box, truth, extra


# --- placement ---------------------------------------------------------------------------------------


def random_spec(kind: str, centre_mm: np.ndarray, radius_mm: float, rng: np.random.Generator) -> LesionSpec:
    """A lesion of ``kind`` with random contrast, irregularity, edge and seed."""
    contrast = {
        "hyper": rng.uniform(0.25, 0.8),
        "hypo": rng.uniform(0.25, 0.6),
        "csf_hole": rng.uniform(0.7, 1.0),
        "gm_island": rng.uniform(0.8, 1.0),
        "foreign": rng.uniform(0.8, 1.0),
        "noise": rng.uniform(0.15, 0.45),
    }[kind]
    return LesionSpec(
        kind=kind,
        centre_mm=tuple(centre_mm),
        radius_mm=float(radius_mm),
        contrast=float(contrast),
        irregularity=float(rng.uniform(0.08, 0.3)),
        edge_mm=float(rng.uniform(0.5, 2.5)),
        seed=int(rng.integers(2**31)),
    )


def place_specs(
    scan: HealthyScan,
    kind: str,
    n: int,
    rng: np.random.Generator,
    radius_range: tuple[float, float] = RADIUS_RANGE_MM,
    max_tries: int = 200,
) -> list[LesionSpec]:
    """``n`` lesions of one kind at random places inside the brain, not touching one another.

    Radii are log-uniform in ``radius_range``. A centre lies at least 0.6 radius inside the brain mask
    (so most of the lesion is brain), in white matter for the tissue-replacing kinds.
    """
    from scipy import ndimage

    step = 2
    brain = scan.brain[::step, ::step, ::step] > 0.5
    sp = np.array(scan.volume.spacing) * step
    depth = ndimage.distance_transform_edt(brain, sampling=sp)
    wm = scan.wm[::step, ::step, ::step] > 0.5
    specs: list[LesionSpec] = []
    for _ in range(n):
        for _try in range(max_tries):
            r = float(np.exp(rng.uniform(np.log(radius_range[0]), np.log(radius_range[1]))))
            ok = depth >= max(0.6 * r, 3.0)
            if kind in WM_KINDS:
                ok &= wm
            cand = np.argwhere(ok)
            if cand.size == 0:
                continue
            vox = cand[rng.integers(len(cand))] * step + rng.uniform(0, step, 3)
            centre = scan.volume.voxel_to_world(vox[None])[0]
            # Irregular shapes reach about 1.5 radii: keep that clear of earlier lesions, plus a gap.
            if all(np.linalg.norm(centre - np.array(s.centre_mm)) > 1.5 * (r + s.radius_mm) + 4 for s in specs):
                specs.append(random_spec(kind, centre, r, rng))
                break
    return specs


def add_lesions(scan: HealthyScan, specs: list[LesionSpec]) -> LesionScan:
    """The scan with ``specs`` painted in, and its ground truth (later lesions win where they overlap)."""
    vol = scan.volume
    image = vol.array.astype(np.float32)
    labels = np.zeros(vol.shape, dtype=np.int16)
    levels = tissue_levels(scan)
    voxel_ml = float(abs(np.linalg.det(vol.affine[:3, :3]))) / 1000.0
    records = []
    for spec in specs:
        out = insert_lesion(image, scan, spec, levels)
        if out is None:
            continue
        box, truth, extra = out
        k = len(records) + 1
        labels[box][truth] = k
        records.append(LesionRecord(spec, k, 0, 0.0, size_bin(spec.radius_mm), extra))
    for rec in records:
        rec.voxels = int((labels == rec.label).sum())
        rec.volume_ml = rec.voxels * voxel_ml
    info = np.iinfo(vol.array.dtype) if np.issubdtype(vol.array.dtype, np.integer) else None
    if info is not None:
        image = np.clip(np.rint(image), info.min, info.max)
    arr = image.astype(vol.array.dtype)
    meta = dict(vol.meta)
    meta["series_description"] = f"{meta.get('series_description', 'scan')} + {len(records)} synthetic lesion(s)"
    meta["lesions"] = [r.to_dict() for r in records]
    return LesionScan(vol.with_array(arr, meta=meta), labels, scan.brain > 0.5, records)


def make_lesion_scan(
    scan: HealthyScan, kind: str, n_lesions: int, seed: int, radius_range: tuple[float, float] = RADIUS_RANGE_MM
) -> LesionScan:
    """A lesion scan: ``n_lesions`` random lesions of one kind in ``scan``, all following from ``seed``."""
    rng = np.random.default_rng([seed, 7])
    return add_lesions(scan, place_specs(scan, kind, n_lesions, rng, radius_range))
