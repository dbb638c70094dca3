"""Training data: find scans, bring them to model space once (cached), then augment on the fly."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medae.errors import InputError, MedaeError, ModelMismatchError, VolumeSelectionError
from medae.model.card import ALIGNMENT_LIMITS, ModelCard
from medae.model.preprocess import to_model_space
from medae.progress import ProgressFn, check_cancel, report
from medae.training.contrast import random_contrast
from medae.training.prep_cache import Prepared, file_stamp, read_entry, write_entry
from medae.volume import Volume

#: The names a text file listing scans is known by (any other file is read as a scan).
LIST_SUFFIXES = (".txt", ".lst", ".list")


def find_scans(data: str | Path) -> list[tuple[str, str | None]]:
    """Scans named by a folder (searched recursively) or a text file listing paths, one per line.

    A list's relative paths are taken from its own folder; blank lines and lines starting with ``#`` are
    skipped, and a scan listed twice is taken once (else it could be drawn for training and validation both).

    Returns:
        (path, series uid or None) pairs: a folder's sorted, a list's in its order, so runs are reproducible.
    """
    from medae.io import scan

    p = Path(data)
    if p.is_file() and p.suffix in LIST_SUFFIXES:
        # utf-8-sig: a list saved by Windows Notepad starts with a byte-order mark, not part of the first path.
        try:
            entries = [line.strip() for line in p.read_text(encoding="utf-8-sig").splitlines()]
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{p}: the list of scans is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 "
                "(Windows PowerShell 5 writes UTF-16 when its output is redirected: use Out-File -Encoding utf8)."
            ) from exc
        paths: dict[str, str] = {}  # by the file itself, however it is named: the first name it is given
        for e in entries:
            if e and not e.startswith("#"):
                path = os.path.normpath(p.parent / e)
                paths.setdefault(os.path.realpath(path), path)
        return [scan for path in paths.values() for scan in _listed(path)]
    if not p.exists():
        raise InputError(f"{p}: no such folder or list of scans.")
    out = []
    try:
        infos = scan(p)
    except InputError as exc:
        if p.is_file() and _looks_like_text(p):
            raise InputError(
                f"{exc} If it lists the scans: a list of scans is read from a text file named "
                f"{', '.join('*' + s for s in LIST_SUFFIXES)}, one scan a line."
            ) from exc
        raise
    for info in infos:
        single = info.kind != "dicom"
        out.append((info.source if single else str(p), None if single else info.uid))
    if p.is_dir():
        from medae.io.loader import list_volume_files

        # Listed anyway, so that preparing them fails and the card's ``training.skipped`` names them.
        out.extend((str(f), None) for f, _ in list_volume_files(p)[1])
    if not out:
        raise InputError(f"{p}: no scans found to train on.")
    return sorted(out)


def _listed(path: str) -> list[tuple[str, str | None]]:
    """The scans a list's line names: a folder of several series (a DICOM study) stands for each of them.

    A folder of one scan stays as it is named (a checkpoint records it so); one with none, or that cannot
    be read, too, so that preparing it names why it is left out.
    """
    if not os.path.isdir(path):
        return [(path, None)]
    try:
        found = find_scans(path)
    except InputError:
        return [(path, None)]
    return found if len(found) > 1 else [(path, None)]


def _looks_like_text(path: Path) -> bool:
    """Whether a file's first bytes are text (a list of scans under another name), not an image's."""
    import codecs

    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
        codecs.getincrementaldecoder("utf-8")().decode(head)  # a character cut at the end is no error
    except (OSError, UnicodeDecodeError):
        return False
    return b"\0" not in head


def prepare_reference(cfg: dict) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Reference template and mask on the model grid, for models that register to a template."""
    space = cfg["space"]
    if space.get("alignment") != "register":
        return None, None
    from medae.training.healthy import head_distance, head_intensity
    from medae.training.template import load_template, reference_on_grid

    template = load_template()
    # The reference has an average head around the brain, like the clinical scans it must align.
    with_head = head_intensity(head_distance(template), template.t1, None)
    from dataclasses import replace

    t1, _ = reference_on_grid(replace(template, t1=with_head), card_affine(cfg), tuple(space["shape"]))
    _, mask = reference_on_grid(template, card_affine(cfg), tuple(space["shape"]))
    return t1, mask


def card_affine(cfg: dict) -> np.ndarray:
    """Model voxel -> reference mm for a config's ``space``."""
    from medae.training.template import brain_space

    s = cfg["space"]
    return brain_space(float(s["spacing"]), tuple(s["shape"]), tuple(s.get("centre", (0.0, 0.0, 0.0))))


def mapping_fingerprint() -> str:
    """A digest of the code that maps a scan to model space (alignment, resampling, normalisation).

    Cached preprocessing is keyed by it, so that a change to that code never lets a scan prepared by
    the earlier code be calibrated or trained on as if prepared by today's: a version number bumped by
    hand was forgotten once, and a calibration then mixed both (scan scores off by up to 0.05 z).
    """
    from medae.model import brain_only, despike, preprocess, registration

    h = hashlib.sha256()
    for module in (preprocess, registration, brain_only, despike):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def preprocess_scans(
    scans: list[tuple[str, str | None]],
    card: ModelCard,
    reference: np.ndarray | None,
    reference_mask: np.ndarray | None,
    cache: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    screen: Callable[[Volume, ModelCard], object] | None = None,
    screen_contrast: Callable[[float | None, ModelCard], object] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every scan in model space: images (N, *grid) float16, masks (N, *grid) bool, and skip messages.

    A scan that cannot be read or aligned, or that ``screen`` refuses (raising a ``MedaeError``: the
    analysis's input checks, which ``medae train`` passes), is skipped with a message, not fatal; so is one
    whose aligned image's correlation with the reference ``screen_contrast`` refuses (another sequence).
    A scan found in ``cache`` is screened too, as a fresh run screens it, without being aligned again.
    """
    from medae.io import load

    images, masks, skipped = [], [], []
    key = hashlib.sha256(repr((card.space, card.intensity, card.mask, mapping_fingerprint())).encode())
    for n, (path, series) in enumerate(scans):
        check_cancel(cancel)
        cached = None
        if cache is not None:
            h = hashlib.sha256((key.hexdigest() + path + str(series)).encode()).hexdigest()[:16]
            cached = cache / f"{Path(path).name.split('.')[0]}_{h}.npz"
        stamp = file_stamp(path)
        prepared = None if cached is None else read_entry(cached, stamp)
        where = path
        try:
            if prepared is None or screen is not None:  # the screen reads the scan itself
                vol = load(path, series=series)
                where = vol.location or path
                _screen_loaded(vol.modality, card)
                if screen is not None:  # what the analysis refuses (a label map, a crop) is no healthy scan
                    screen(vol, card)
            else:
                _screen_loaded(prepared.modality, card)
            if prepared is None:
                prepared = _prepare(vol, card, reference, reference_mask, cancel)
                if cached is not None:  # kept whatever the screens below say: they may change before a rerun
                    write_entry(cached, stamp, prepared)
            unlike = _unlike_reference(prepared.alignment, card)
            if unlike:  # another body part, aligned as well as it could be, would be learnt as healthy
                raise MedaeError(unlike)
            if screen_contrast is not None and reference is not None:  # a T2 among T1 scans, for example
                screen_contrast(prepared.contrast_r, card)
        except VolumeSelectionError as exc:  # the analysis's --volume has no place in a training
            skipped.append(
                f"{path}: a 4D file with {exc.volumes} volumes (a time series or several contrasts); the training "
                "takes 3D scans: save the volume to train on as a file of its own"
            )
            continue
        except ModelMismatchError as exc:  # the analysis's advice (--model, --force) has no place in a training
            skipped.append(_named(path, where, exc.problem or str(exc)))
            continue
        except MedaeError as exc:
            skipped.append(_named(path, where, str(exc)))
            continue
        images.append(prepared.image)
        masks.append(prepared.mask)
        report(progress, (n + 1) / len(scans), f"preprocessed {n + 1}/{len(scans)}")
    if not images:
        raise InputError("None of the training scans could be used: " + "; ".join(skipped[:3]))
    return np.stack(images), np.stack(masks), skipped


def _named(path: str, where: str, said: str) -> str:
    """A message that names the scan: most start with its path already, or a series' inside the folder.

    ``where`` is the scan's own location when it was read (a DICOM series' folder inside ``path``).
    """
    return said if said.startswith((f"{path}: ", os.path.join(path, ""))) else f"{where}: {said}"


def _screen_loaded(modality: str | None, card: ModelCard) -> None:
    """Refuses a scan of another modality: a CT among MR scans would teach the model that CT is healthy MR."""
    if card.modality and modality and modality.upper() != card.modality.upper():
        raise MedaeError(f"a {modality} scan, and the model learns {card.modality}")


def _prepare(
    vol: Volume,
    card: ModelCard,
    reference: np.ndarray | None,
    reference_mask: np.ndarray | None,
    cancel: threading.Event | None,
) -> Prepared:
    """A scan in model space, with its alignment and its correlation with the reference for the screens."""
    mi = to_model_space(vol, card, reference, reference_mask, cancel=cancel)
    r = None
    if reference is not None:
        from medae.model.brain_only import correlation

        r = correlation(mi.image, reference, mi.mask)
    return Prepared(mi.image.astype(np.float16), mi.mask, mi.alignment, vol.modality or "", r)


def _unlike_reference(alignment, card: ModelCard) -> str | None:
    """Why a registered scan is not what the reference shows (the limits the analysis refuses by), or None."""
    if alignment.method not in ("affine", "similarity"):
        return None
    limits = card.space.get("alignment_limits", ALIGNMENT_LIMITS)
    part = card.body_part.lower()
    scales = np.linalg.svd(alignment.ref_to_input[:3, :3], compute_uv=False)
    if alignment.metric is not None and alignment.metric > limits["metric"]:
        return (
            f"it matches the {part} reference poorly (similarity {-alignment.metric:.2f}): not a scan of the {part}, "
            "or its header's voxel sizes or axes are wrong"
        )
    if scales.min() < limits["scale"][0] or scales.max() > limits["scale"][1]:
        return (
            f"its alignment to the {part} reference needed a scaling of {scales.min():.2f}-{scales.max():.2f}: "
            f"its header's voxel sizes are probably wrong, or it is not a scan of the {part}"
        )
    return None


def coarse_noise(shape: tuple[int, ...], factor: int, std: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise drawn on a grid ``factor`` times coarser and upsampled (trilinear)."""
    from scipy import ndimage

    small = tuple(max(2, s // factor) for s in shape)
    noise = rng.normal(0, std, small).astype(np.float32)
    up = ndimage.zoom(noise, [s / c for s, c in zip(shape, small, strict=True)], order=1)
    return up[tuple(slice(0, s) for s in shape)]


class AugmentedScans:
    """A map-style dataset: item ``i`` is a deterministic function of (seed, i), so resuming is exact.

    Each item is a dict of float32 arrays with a channel axis: ``target`` (augmented clean scan, masked),
    ``input`` (target corrupted with the configured noise), ``mask``.
    """

    def __init__(
        self, images: np.ndarray, masks: np.ndarray, cfg: dict, length: int, seed: int, noise: bool = True
    ) -> None:
        self.images = images
        self.masks = masks
        self.cfg = cfg
        self.length = length
        self.seed = seed
        self.noise = noise
        self._transform = None

    def __len__(self) -> int:
        return self.length

    def _build(self):
        from monai import transforms as T

        a = self.cfg["augment"]
        rot = np.radians(a["rotate_deg"])
        keys = ["image", "mask"]
        return T.Compose(
            [
                T.RandAffined(
                    keys,
                    prob=a["affine_prob"],
                    rotate_range=(rot,) * 3,
                    scale_range=(a["scale"],) * 3,
                    translate_range=(a["translate_vox"],) * 3,
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                T.Rand3DElasticd(
                    keys,
                    sigma_range=(6, 8),
                    magnitude_range=(20, 60),
                    prob=a["elastic_prob"],
                    mode=("bilinear", "nearest"),
                    padding_mode="zeros",
                ),
                T.RandBiasFieldd(["image"], prob=a["bias_prob"], coeff_range=(0.0, 0.15)),
                T.RandAdjustContrastd(["image"], prob=a["gamma_prob"], gamma=(0.8, 1.25)),
                T.RandGaussianSmoothd(
                    ["image"], prob=a["blur_prob"], sigma_x=(0.3, 0.9), sigma_y=(0.3, 0.9), sigma_z=(0.3, 0.9)
                ),
                T.RandGaussianNoised(["image"], prob=a["noise_prob"], std=0.02),
            ]
        )

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(i)])
        k = int(rng.integers(len(self.images)))
        image = self.images[k].astype(np.float32)[None]
        mask = self.masks[k].astype(np.float32)[None]
        if self.cfg.get("augment") and self.noise:
            if self._transform is None:
                self._transform = self._build()
            self._transform.set_random_state(seed=int(rng.integers(2**31)))
            out = self._transform({"image": image, "mask": mask})
            image = np.asarray(out["image"], dtype=np.float32)
            mask = (np.asarray(out["mask"]) > 0.5).astype(np.float32)
            a = self.cfg["augment"]
            if rng.random() < float(a.get("contrast_prob", 0.0)):
                image[0] = random_contrast(image[0], mask[0] > 0, rng, float(a.get("contrast_sd", 0.3)))
        target = image * mask
        noisy = target.copy()
        fp = self.cfg.get("patches") or {}
        chance = float(fp.get("prob", 0.0))
        # Drawn only when patches are on, so that a recipe without them keeps its items (and exact resumes).
        if self.noise and chance > 0 and rng.random() < chance:
            from medae.training.patches import foreign_patches

            noisy[0] = foreign_patches(
                noisy[0],
                mask[0],
                self.images,
                self.masks,
                rng,
                count=tuple(fp.get("count", (1, 3))),
                radius_vox=tuple(fp.get("radius_vox", (1.5, 6.0))),
                alpha=tuple(fp.get("alpha", (0.3, 1.0))),
            )
        nz = self.cfg.get("noise", {})
        if self.noise and nz.get("kind") == "coarse" and rng.random() < nz.get("prob", 1.0):
            factor = nz["factor"]
            if isinstance(factor, list | tuple):  # several scales: one drawn per item
                factor = factor[int(rng.integers(len(factor)))]
            noisy[0] += coarse_noise(target.shape[1:], int(factor), float(nz["std"]), rng) * mask[0]
        return {"target": target, "input": noisy, "mask": mask}
