"""One entry point for every input: a NIfTI file, a DICOM file, a DICOM folder or a DICOMDIR."""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medae.errors import InputError, SeriesSelectionError
from medae.progress import ProgressFn
from medae.volume import Volume


@dataclass
class SeriesInfo:
    """What a scan of the input found, before any pixel data is read.

    Attributes:
        uid: Identifier to pass back to ``load(series=...)``: the (possibly split) SeriesInstanceUID
            for DICOM, the file path for NIfTI.
        kind: "dicom" or "nifti".
        modality: DICOM modality code.
        description: Series description or file name.
        shape: Voxel grid (I, J, K) the series would load to.
        spacing: Voxel size in mm along (I, J, K).
        orientation: RAS+ code of the array axes, e.g. "LPS".
        n_files: Files that make up the series.
        warnings: Problems the user should know about (missing slices, tilt, ...).
        source: The path to load from.
        extra: Format-specific details (study UID, series number, patient fields for the picker).
    """

    uid: str
    kind: str
    modality: str
    description: str
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    orientation: str
    n_files: int
    warnings: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["spacing"] = [round(float(s), 6) for s in self.spacing]
        return d


def scan(
    path: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[SeriesInfo]:
    """Lists every series in a file or folder without reading pixel data.

    Raises:
        InputError: the path does not exist or holds nothing medae can read.
    """
    from medae.io import nifti

    p = _existing(path)
    if p.is_file() and nifti.is_nifti(p):
        return [nifti.nifti_info(p)]
    from medae.io import dicom

    found = dicom.scan_dicom(p, progress=progress, cancel=cancel)
    if p.is_dir():
        found = [*(nifti.nifti_info(f) for f in sorted(p.rglob("*")) if f.is_file() and nifti.is_nifti(f)), *found]
    if not found:
        raise InputError(
            f"{p}: no scan found. medae reads NIfTI files (.nii, .nii.gz), FreeSurfer MGH (.mgz, .mgh) and DICOM "
            "image series; choose a file or folder that contains one."
        )
    return found


def load(
    path: str | os.PathLike,
    series: str | None = None,
    volume_index: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Volume:
    """Loads one scan.

    Args:
        path: NIfTI file, DICOM file, DICOM folder or DICOMDIR.
        series: ``SeriesInfo.uid`` of the series to load when the input holds several.
        volume_index: For 4D NIfTI, which volume.
        progress: Progress callback (fraction, message).
        cancel: Set to stop early with ``CancelledError``.

    Raises:
        SeriesSelectionError: several series and ``series`` not given (the message lists them).
        InputError: anything else wrong with the input.
    """
    from medae.io import nifti

    p = _existing(path)
    if p.is_file() and nifti.is_nifti(p):
        return nifti.load_nifti(p, index=volume_index)
    if series is not None and nifti.is_nifti(series) and Path(series).is_file():
        return nifti.load_nifti(series, index=volume_index)
    from medae.io import dicom

    infos = [s for s in scan(p, progress=None, cancel=cancel)]
    if series is None:
        if len(infos) > 1:
            listing = "; ".join(f"{s.uid} ({s.modality} {s.description}, {s.n_files} files)" for s in infos)
            raise SeriesSelectionError(f"{p}: holds {len(infos)} series. Choose one with --series UID: {listing}")
        info = infos[0]
    else:
        matches = [s for s in infos if s.uid == series or s.uid.startswith(series)]
        if not matches:
            raise SeriesSelectionError(f"{p}: no series {series!r}. Run `medae info {p}` to list the series it holds.")
        info = matches[0]
    if info.kind == "nifti":
        return nifti.load_nifti(info.source, index=volume_index)
    return dicom.load_series(info, progress=progress, cancel=cancel)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or folder. Check the path.")
    return p
