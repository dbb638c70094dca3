"""The training's cache of scans in model space, with what the screens need to judge them again.

A scan's registration takes seconds; its result is kept in ``train_state/cache`` so that a resumed run
does not align it again. The screens that leave scans out (another modality or body part, a label map,
medae's own outputs, another contrast) change more often than the mapping: a cached scan is judged by
today's screens on every run, so a resume trains on exactly what a fresh run would. The entry keeps the
alignment and the correlation with the reference for that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medae.model.registration import Alignment


@dataclass
class Prepared:
    """A scan in model space and what the screens read of it after the alignment."""

    image: np.ndarray  # float16 on the model grid
    mask: np.ndarray  # bool
    alignment: Alignment
    modality: str
    contrast_r: float | None  # correlation with the reference (None: no reference, or undefined)


def file_stamp(path: str) -> list[int] | None:
    """A file's size and modification time, which change when it is replaced; None for a DICOM folder."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns] if os.path.isfile(path) else None


def read_entry(cached: Path, stamp: list[int] | None) -> Prepared | None:
    """The cached preparation of a scan, or None when there is none, its file was replaced, or it is too old.

    An entry written before the screens' inputs were kept is prepared again, since it cannot be judged.
    """
    if not cached.exists():
        return None
    try:
        with np.load(cached, allow_pickle=False) as z:
            if "alignment" not in z.files:
                return None
            # A file replaced under the same name (a scan exported again) is prepared again.
            if "source" in z.files and stamp is not None and z["source"].tolist() != stamp:
                return None
            metric, r = float(z["metric"]), float(z["contrast_r"])
            return Prepared(
                z["image"],
                z["mask"],
                Alignment(z["alignment"], None if np.isnan(metric) else metric, str(z["method"])),
                str(z["modality"]),
                None if np.isnan(r) else r,
            )
    except (OSError, ValueError, KeyError):  # a damaged entry (a disk filled up) is prepared again
        return None


def write_entry(cached: Path, stamp: list[int] | None, prepared: Prepared) -> None:
    """Writes a scan's entry whole (a kill leaves the old entry or none)."""
    from medae.atomic import atomic_path

    cached.parent.mkdir(parents=True, exist_ok=True)
    a = prepared.alignment
    with atomic_path(cached) as tmp:
        source = {} if stamp is None else {"source": np.array(stamp, np.int64)}
        np.savez(
            tmp,
            image=prepared.image,
            mask=prepared.mask,
            alignment=np.asarray(a.ref_to_input, np.float64),
            metric=np.float64(np.nan if a.metric is None else a.metric),
            method=np.array(a.method),
            modality=np.array(prepared.modality),
            contrast_r=np.float64(np.nan if prepared.contrast_r is None else prepared.contrast_r),
            **source,
        )
