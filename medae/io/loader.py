"""One entry point for every input: a volume file (NIfTI, MGH, NRRD, MetaImage), DICOM file or folder, DICOMDIR."""

from __future__ import annotations

import errno
import json
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from medae.errors import InputError, SeriesSelectionError
from medae.progress import ProgressFn, check_cancel
from medae.volume import Volume


@dataclass
class SeriesInfo:
    """What a scan of the input found, before any pixel data is read.

    Attributes:
        uid: Identifier to pass back to ``load(series=...)``: the (possibly split) SeriesInstanceUID
            for DICOM, the file path for single-file formats.
        kind: "dicom", "nifti" (the files nibabel reads) or "itk" (NRRD, MetaImage).
        modality: DICOM modality code.
        description: Series description or file name.
        shape: Voxel grid (I, J, K) the series would load to.
        spacing: Voxel size in mm along (I, J), and the distance between slice planes (``listed_spacing``).
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

    @classmethod
    def for_file(cls, path: Path, kind: str, shape: tuple[int, ...], affine, n_volumes: int) -> SeriesInfo:
        """The entry of a single-file volume (``kind`` "nifti" or "itk"), from its header's grid."""
        from medae import geometry

        warnings = [f"4D: {n_volumes} volumes; choose one (--volume N on the command line)."] if n_volumes > 1 else []
        return cls(
            uid=str(path),
            kind=kind,
            modality="",
            description=path.name,
            shape=tuple(int(s) for s in shape[:3]),  # type: ignore[arg-type]
            spacing=geometry.listed_spacing(affine),
            orientation=geometry.orientation_code(affine),
            n_files=1,
            warnings=warnings,
            source=str(path),
            extra={"n_volumes": n_volumes},
        )

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
    p = existing_path(path)
    if p.is_file() and is_volume_file(p):
        return [_file_info(p)]
    from medae.io import dicom

    found = dicom.scan_dicom(p, progress=progress, cancel=cancel)
    if p.is_dir():
        files, broken = list_volume_files(p)
        found = [*files, *found]
        if broken and not found:
            if len(broken) == 1 and broken[0][0] == p:  # the folder itself cannot be opened: that is the whole story
                raise InputError(broken[0][1])
            more = f" ({len(broken) - 1} more file(s) like it)" if len(broken) > 1 else ""
            raise InputError(f"{p}: no readable scan. {broken[0][1]}{more}")
        _note_skipped(found, broken)
    if not found:
        raise InputError(
            f"{p}: no scan found. medae reads NIfTI (.nii, .nii.gz), FreeSurfer MGH (.mgz, .mgh), NRRD (.nrrd, "
            ".nhdr), MetaImage (.mha, .mhd) and DICOM image series; choose a file or folder that contains one."
        )
    return found


#: File names of archives (a study exported zipped).
_ARCHIVES = (".zip", ".7z", ".rar", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")


def list_volume_files(folder: str | os.PathLike) -> tuple[list[SeriesInfo], list[tuple[Path, str]]]:
    """The single-file volumes in a folder tree, and those that cannot be read (path, why).

    Folders that cannot be listed are among the unreadable, so that nothing under them passes unnoticed.
    """
    from medae.io.walk import walk_files

    infos, broken = [], []
    unlisted: list[tuple[str, str]] = []
    results: dict[Path, set[str]] = {}
    for name in walk_files(folder, unreadable=unlisted):
        f = Path(name)
        if f.name.lower().endswith(_ARCHIVES):  # studies are often handed over zipped: said, not passed over
            broken.append((f, f"{f}: an archive; medae does not look inside archives. Unpack it and run again."))
            continue
        if not is_volume_file(f) or f.name in _results_beside(f.parent, results):
            continue
        try:
            if not f.is_file():
                if f.is_symlink():  # named like a scan, so it was meant to be one: say why it is not
                    broken.append((f, f"{f}: a link to a file that does not exist (or to itself); fix or remove it."))
                continue
            if f.suffix.lower() == ".img" and f.with_suffix(".hdr").is_file():
                continue  # one Analyze image is a .hdr/.img pair: list it once, by its header
            infos.append(_file_info(f))
        except InputError as exc:
            broken.append((f, str(exc)))
        except OSError as exc:  # no permission to look at it (a private folder behind a link): this file only
            broken.append((f, f"{f}: cannot be read ({exc.strerror or exc}); check its permissions."))
    for path, why in unlisted:
        broken.append((Path(path), f"{path}: the folder cannot be read ({why}); nothing in it was analysed."))
    return infos, broken


def _results_beside(folder: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The files an analysis wrote into ``folder`` (its heatmap is no scan to list), from its report.json."""
    if folder not in cache:
        try:
            files = json.loads((folder / "report.json").read_text(encoding="utf-8")).get("files", {})
            cache[folder] = {str(v) for v in files.values()} if isinstance(files, dict) else set()
        except (OSError, ValueError, AttributeError):
            cache[folder] = set()
    return cache[folder]


def _note_skipped(found: list[SeriesInfo], broken: list[tuple[Path, str]]) -> None:
    """One broken file must not hide a folder's other scans: they are listed, with a note naming it."""
    for info in found:
        here = [f for f, _ in broken if f.parent == Path(info.source).parent] or [f for f, _ in broken]
        if here:
            names = ", ".join(f.name for f in here[:5]) + (f" and {len(here) - 5} more" if len(here) > 5 else "")
            info.warnings.append(f"skipped {len(here)} unreadable file(s) nearby: {names} (open one alone to see why).")


def is_volume_file(path: str | os.PathLike) -> bool:
    """True when the file name says a single-file volume format (NIfTI, Analyze, MGH, NRRD, MetaImage)."""
    from medae.io import itk_image, nifti

    return nifti.is_nifti(path) or itk_image.is_itk_image(path)


def _file_info(path: Path) -> SeriesInfo:
    from medae.io import itk_image, nifti

    return itk_image.itk_image_info(path) if itk_image.is_itk_image(path) else nifti.nifti_info(path)


def _cancellable(read, path, index: int | None, cancel: threading.Event | None) -> Volume:
    """A single file read in one library call: a cancel set meanwhile is honoured once it returns."""
    check_cancel(cancel)
    volume = read(path, index)
    check_cancel(cancel)
    return volume


def _load_file(path: str | os.PathLike, index: int | None) -> Volume:
    from medae.io import itk_image, nifti

    if itk_image.is_itk_image(path):
        return itk_image.load_itk_image(path, index=index)
    return nifti.load_nifti(path, index=index)


def load(
    path: str | os.PathLike,
    series: str | None = None,
    volume_index: int | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Volume:
    """Loads one scan.

    Args:
        path: NIfTI, MGH, NRRD or MetaImage file, DICOM file, DICOM folder or DICOMDIR.
        series: ``SeriesInfo.uid`` of the series to load when the input holds several.
        volume_index: For 4D single-file volumes, which volume.
        progress: Progress callback (fraction, message).
        cancel: Set to stop early with ``CancelledError``.

    Raises:
        SeriesSelectionError: several series and ``series`` not given (the message lists them); ``series``
            naming no series of ``path`` (a file elsewhere, another series than a single file's own).
        InputError: anything else wrong with the input.
    """
    p = existing_path(path)
    if p.is_file() and is_volume_file(p):
        if series is not None and not _names_file(series, p):
            raise SeriesSelectionError(
                f"{p}: a file that holds one series, which --series {series!r} does not name. Leave --series out."
            )
        return _cancellable(_load_file, p, volume_index, cancel)
    if series is not None and is_volume_file(series) and Path(series).is_file():
        # A volume file of the folder is its own series (``SeriesInfo.uid`` is its path); one elsewhere is not.
        # As walked (a linked folder's files keep their path through the link), or as resolved.
        inside = p.is_dir() and any(Path(f(series)).is_relative_to(f(p)) for f in (os.path.abspath, os.path.realpath))
        if not inside:
            raise SeriesSelectionError(
                f"{series}: not a series of {p}. Give the file itself as the input, or run `medae info {p}` to list "
                "the series it holds."
            )
        return _cancellable(_load_file, series, volume_index, cancel)
    from medae.io import dicom

    infos = [s for s in scan(p, progress=None, cancel=cancel)]
    left_out = ""
    if series is None:
        # One image is no 3D scan (a screen save, a stray reference slice): beside a single stack it is no choice.
        stacks = [s for s in infos if min(s.shape) > 1] if len(infos) > 1 else infos
        if len(stacks) != 1:
            listing = "; ".join(f"#{n} {_listed(s)}" for n, s in enumerate(infos, 1))
            raise SeriesSelectionError(
                f"{p}: holds {len(infos)} series. Choose one with --series and its # or UID (as `medae info` lists "
                f"them): {listing}"
            )
        info = stacks[0]
        if len(infos) > 1:
            others = [s for s in infos if s is not info]
            # Named by description, not by path or UID: the warnings go into report.json, which keeps no PHI.
            left_out = (
                f"The input also holds {len(others)} single-image series or part(s), left out as no 3D scan: "
                + "; ".join(f"{s.modality} {s.description}".strip() for s in others)
                + ". `medae info` lists them; --series UID opens one."
            )
    else:
        # The whole UID wins; a shortened one must name a single series (1.2.3.4.100 must never pick 1.2.3.4.1001).
        matches = [s for s in infos if s.uid == series] or [s for s in infos if s.uid.startswith(series)]
        if not matches:
            raise SeriesSelectionError(f"{p}: no series {series!r}. Run `medae info {p}` to list the series it holds.")
        if len(matches) > 1:
            listing = "; ".join(_listed(s) for s in matches)
            raise SeriesSelectionError(
                f"{p}: {series!r} begins {len(matches)} series' UIDs. Choose one with --series and its whole UID: "
                f"{listing}"
            )
        info = matches[0]
    if info.kind != "dicom":
        volume = _load_file(info.source, volume_index)
    else:
        volume = dicom.load_series(info, progress=progress, cancel=cancel)
    if left_out:
        volume.warnings.append(left_out)
    return volume


def _listed(info: SeriesInfo) -> str:
    """A series as a message lists it: its UID, then modality (files have none), description and files."""
    what = f"{info.modality} {info.description}".strip()
    return f"{info.uid} ({what}, {info.n_files} file{'' if info.n_files == 1 else 's'})"


def existing_path(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` expanded; raises ``InputError`` saying why when it cannot be reached."""
    p = Path(path).expanduser()
    try:
        p.stat()
    except PermissionError:  # a folder on the way that may not be opened: exists() raises it, not False
        raise InputError(
            f"{p}: no permission to reach it (a folder on its path may not be opened). Check the access rights of "
            "the folders it lies in."
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):  # missing, or a broken link
            raise InputError(f"{p}: no such file or folder. Check the path.{_slashes_hint(p)}") from None
        raise InputError(f"{p}: cannot be reached ({exc.strerror or exc}). Check the path.") from None
    except ValueError:  # a name no file can have (a NUL character)
        raise InputError(f"{p}: no such file or folder. Check the path.") from None
    return p


def _slashes_hint(p: Path) -> str:
    r"""What to type instead of a path copied from Windows (``scans\t1.nii.gz``), when that names a file here."""
    if os.sep == "\\" or "\\" not in str(p):
        return ""
    alt = Path(str(p).replace("\\", "/"))
    return f" Folders are separated by / here: {alt}" if os.path.exists(alt) else ""


def companion_files(path: Path) -> list[Path]:
    """Files beside a header that hold part of the scan: the same name with another ending.

    Analyze .img and SPM .mat beside an .hdr, the .raw or .zraw of a MetaImage .mhd, the data file of a
    detached NRRD .nhdr (when it shares the name, as writers make it).
    """
    name = path.name.lower()
    if not name.endswith((".hdr", ".mhd", ".nhdr")):
        return []
    stem = path.name[: path.name.rfind(".")]
    try:
        # The name first: a folder of thousands of headers must not cost a stat of every file for each one.
        return sorted(p for p in path.parent.iterdir() if p.name.startswith(stem + ".") and p != path and p.is_file())
    except OSError:
        return []


def _names_file(series: str, path: Path) -> bool:
    """Whether ``--series`` names the one file given (by its path, as ``SeriesInfo.uid`` does, or its name)."""
    if series == path.name:
        return True
    candidate = Path(series)
    return candidate.exists() and os.path.samefile(candidate, path)


def is_source_of(target: str | os.PathLike, volume: Volume) -> bool:
    """Whether ``target`` is one of the files ``volume`` was read from (so writing it would destroy the scan).

    The file or folder given, a header's data files beside it (.raw of a .mhd, .img of an .hdr, ...) and
    every DICOM file of the series; links count as the file they point to.
    """
    target = Path(target)
    if not target.exists() or not volume.source:
        return False
    source = Path(volume.source)
    paths = [source, *companion_files(source), *(Path(p) for p in volume.meta.get("source_files") or [])]
    return any(p.exists() and os.path.samefile(p, target) for p in paths)
