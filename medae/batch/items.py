"""What a batch run works through: every series under a folder, each with a stable output name.

A study folder is searched the same way ``medae info`` searches it (DICOM series and single-file
volumes, recursively); files that cannot be read become items that carry their error, so that the
table names them instead of leaving them out.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medae.analysis.outputs import OUTPUT_NAMES, medae_files
from medae.errors import CancelledError, InputError
from medae.io.loader import SeriesInfo, companion_files, is_volume_file, list_volume_files
from medae.progress import ProgressFn

_VOLUME_SUFFIXES = (".nii.gz", ".nii", ".mgz", ".mgh", ".nrrd", ".nhdr", ".mha", ".mhd", ".hdr", ".img")


@dataclass
class BatchItem:
    """One series to analyse.

    Attributes:
        name: Its output sub-folder: readable (the path under the input folder, series number and
            description) and unique within the run.
        where: The file or folder it comes from, relative to the input folder.
        info: What the scan found (None when ``error`` is set).
        identity: What a finished result must match to count as done when the run is resumed: the
            series, and the size and modification time of its files.
        error: Why it cannot be analysed, found before any analysis (an unreadable file).
    """

    name: str
    where: str
    info: SeriesInfo | None
    identity: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def description(self) -> str:
        """Series description or file name."""
        return self.info.description if self.info is not None else Path(self.where).name

    @property
    def modality(self) -> str:
        """Modality code ("" when unknown)."""
        return self.info.modality if self.info is not None else ""


def find_items(
    folder: str | os.PathLike,
    exclude: str | os.PathLike | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[BatchItem]:
    """Every series under ``folder``, in a stable order (by path, then series number).

    Args:
        folder: The folder of studies (or a DICOMDIR: the folder that holds it).
        exclude: A folder whose files are never items: the run's own output folder when it lies inside
            ``folder``, whose heatmaps (and DICOM objects) would otherwise be analysed as scans next time.
        progress: Progress callback (fraction, message).
        cancel: Set to stop with ``CancelledError``.

    Raises:
        InputError: ``folder`` is not a folder, or ``exclude`` is that folder or holds it.
    """
    from medae.io import dicom

    root = Path(folder).expanduser()
    if root.is_file() and root.name.upper() == "DICOMDIR":
        # A CD or USB stick's index: its files lie in the folder that holds it, which is searched in depth.
        root = root.parent
    if not root.is_dir():
        raise InputError(
            f"{root}: not a folder. `medae batch` takes a folder of studies; for one scan use `medae analyze`."
        )
    skip = Path(exclude).expanduser().resolve() if exclude is not None else None
    if skip is not None and root.resolve().is_relative_to(skip):
        raise InputError(
            f"{skip}: the output folder is the studies folder {root}, or holds it, so every scan there would be "
            "taken for output. Choose an output folder outside the studies folder, or a new folder inside it."
        )

    def kept(path: str | os.PathLike) -> bool:
        path = Path(path)
        # realpath, unlike resolve, does not fail on a link that loops; the output folder may lie inside a
        # study's folder, whose own scans are still studies: only medae's file names there are its results.
        if skip is not None and Path(os.path.realpath(path)).is_relative_to(skip):
            return path.name not in OUTPUT_NAMES
        # Results of earlier runs written among the studies: the files medae's report beside them lists (a
        # scan of the user's called reconstruction.nii.gz is still a scan).
        if path.name not in OUTPUT_NAMES:
            return True
        if path.parent not in listed_by:
            listed_by[path.parent] = medae_files(path.parent) or set()
        return path.name not in listed_by[path.parent]

    listed_by: dict[Path, set[str]] = {}

    files, broken = list_volume_files(root)
    files += compressed_studies(root, broken)
    items = [_file_item(root, info) for info in files if kept(info.source)]
    items += [BatchItem(_name(_rel(root, p)), _rel(root, p), None, error=why) for p, why in broken if kept(p)]
    damaged: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    try:
        series = dicom.scan_dicom(root, progress=progress, cancel=cancel, unreadable=damaged, refused=refused)
    except CancelledError:
        raise
    except InputError as exc:  # every DICOM file there unreadable: one row says so, the volumes still run
        series = []
        items.append(BatchItem("dicom", ".", None, error=str(exc)))
        damaged, refused = [], []
    # An image series none of whose files could be used is a row with its reason, never passed over.
    for first, why in refused:
        if kept(first):
            where = _rel(root, Path(first).parent)
            items.append(BatchItem(_name(where if where != "." else Path(first).name), where, None, error=why))
    # A DICOM file that could not be read is a row of its own (it may be the only file of its patient),
    # unless it lies beside a series, whose warnings name it. (A damaged file with a volume's or a study's
    # name has its row from those listings already.)
    listed = {os.path.realpath(p) for p, _why in broken} | {os.path.realpath(i.source) for i in files}
    beside = {os.path.dirname(str(f)) for info in series for f in _files(info)}
    alone = [
        (p, why)
        for p, why in damaged
        if kept(p) and os.path.realpath(p) not in listed and not is_volume_file(p) and os.path.dirname(p) not in beside
    ]
    items += _unreadable_items(root, alone)
    items += [_dicom_item(root, info) for info in series if all(kept(f) for f in _files(info))]
    items.sort(key=_order)
    _make_unique(items)
    return items


def _unreadable_items(root: Path, damaged: list[tuple[str, str]]) -> list[BatchItem]:
    """A row per DICOM file that could not be read, or one per folder where several failed for one reason.

    A series locked or cut short whole would otherwise fill the table with a row per slice.
    """
    alike: dict[tuple[str, str], list[str]] = {}
    for p, why in damaged:  # files failing alike: unrelated files beside them keep rows of their own
        alike.setdefault((os.path.dirname(p), why), []).append(p)
    items = []
    for (folder, why), paths in alike.items():
        if len(paths) == 1:
            where = _rel(root, Path(paths[0]))
            items.append(BatchItem(_name(where), where, None, error=f"{paths[0]}: cannot be read ({why})."))
            continue
        names = sorted(os.path.basename(p) for p in paths)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        where = _rel(root, Path(folder))
        said = (
            f"{os.path.join(folder, names[0])}: {len(paths)} files in this folder cannot be read ({shown}: {why}). "
            "Check their access rights, or copy them again from their source."
        )
        items.append(BatchItem(_name(where if where != "." else "unreadable"), where, None, error=said))
    return items


def compressed_studies(root: Path, broken: list[tuple[Path, str]]) -> list[SeriesInfo]:
    """The ``.mae`` files under ``root`` (by their signature), each one series, from its header alone.

    Files that cannot be analysed (a damaged header, a latent preview) are added to ``broken``.
    """
    from medae.codec import is_compressed_study
    from medae.codec.study import LATENT_REFUSAL
    from medae.io.walk import walk_files

    found = []
    for name in walk_files(root):
        path = Path(name)
        if not path.name.lower().endswith(".mae") or not is_compressed_study(path):
            continue
        try:
            info = study_info(path)
        except InputError as exc:
            broken.append((path, str(exc)))
            continue
        if info.extra.get("mode") == "latent":
            broken.append((path, f"{path}: {LATENT_REFUSAL}"))
            continue
        found.append(info)
    return found


def study_info(path: Path) -> SeriesInfo:
    """The series entry of one compressed study, from its header alone (its voxels unread).

    Raises:
        InputError: The header is damaged.
    """
    from medae import geometry
    from medae.codec import container
    from medae.codec.study import check_header

    header = container.read_header(path)
    check_header(header, str(path))
    affine = np.asarray(header["affine"], dtype=np.float64)
    info = SeriesInfo.for_file(path, "mae", tuple(header["shape"]), affine, 1)
    info.modality = str(header.get("modality") or "")
    info.description = str((header.get("meta") or {}).get("series_description") or path.name)
    info.orientation = geometry.orientation_code(affine)
    info.extra["mode"] = header["mode"]
    return info


def _order(item: BatchItem) -> tuple:
    number = item.info.extra.get("series_number") if item.info is not None else None
    try:
        rank = int(number)
    except (TypeError, ValueError):
        rank = -1
    return item.where, rank, item.name


def _file_item(root: Path, info: SeriesInfo) -> BatchItem:
    path = Path(info.source)
    stat = path.stat()
    where = _rel(root, path)
    identity = {"series": where, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    companions = companion_files(path)
    if companions:  # a header whose voxels or orientation live in other files: they are the scan too
        digest = hashlib.sha256()
        for f in companions:
            st = f.stat()
            digest.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        identity["companions_sha256"] = digest.hexdigest()
    n = int(info.extra.get("n_volumes", 1))
    if n > 1:
        why = (
            f"{path}: a 4D file with {n} volumes (a time series or several contrasts); a batch analyses 3D scans. "
            f"Analyse one volume with `medae analyze {path} --volume N`."
        )
        return BatchItem(_name(where), where, None, identity, error=why)
    return BatchItem(_name(where), where, info, identity)


def content_digest(item: BatchItem) -> str | None:
    """sha256 over the bytes of every file the item's scan is read from (None when there are none)."""
    info = item.info
    if info is None:
        return None
    files = sorted(_files(info)) if info.kind == "dicom" else [Path(info.source), *companion_files(Path(info.source))]
    digest = hashlib.sha256()
    try:
        for f in files:
            digest.update(f"{f.name}\0".encode("utf-8", "surrogateescape"))
            with open(f, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(chunk)
    except OSError:
        return None  # gone or unreadable: nothing to match, so the series is analysed (and says why)
    return digest.hexdigest()


def _files(info: SeriesInfo) -> list[Path]:
    plan = getattr(info, "plan", None)
    return [Path(f) for f in plan.files] if plan is not None else []


def _dicom_item(root: Path, info: SeriesInfo) -> BatchItem:
    files = _files(info)
    folder = Path(os.path.commonpath([str(f.parent) for f in files])) if files else root
    where = _rel(root, folder)
    number = info.extra.get("series_number")
    label = " ".join(str(x) for x in (number, info.description) if x not in (None, ""))
    digest = hashlib.sha256()
    for f in sorted(files):
        st = f.stat()
        digest.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    # The series by a one-way digest of its UID: report.json carries the identity, and a UID is patient data.
    series = hashlib.sha256(info.uid.encode("utf-8")).hexdigest()[:32]
    identity = {"series": series, "files": len(files), "files_sha256": digest.hexdigest()}
    base = where if where != "." else ""
    return BatchItem(_name(f"{base}/{label}" if base else label or "series"), where, info, identity)


def _rel(root: Path, path: Path) -> str:
    # As walked (through linked folders), not resolved: a linked study keeps its place under the root.
    real = Path(os.path.realpath(path))  # realpath, unlike resolve, does not fail on a link that loops
    for base, target in ((root.absolute(), Path(path).absolute()), (Path(os.path.realpath(root)), real)):
        try:
            return target.relative_to(base).as_posix() or "."
        except ValueError:
            continue
    return str(path)


def _name(where: str) -> str:
    lower = where.lower()
    for suffix in _VOLUME_SUFFIXES:
        if lower.endswith(suffix):
            where = where[: -len(suffix)]
            break
    # Letters of any script stay (Möller and Müller must not both become M_ller).
    parts = [re.sub(r"[^\w.-]+", "_", p).strip("._") for p in where.split("/")]
    parts = [p for p in parts if p] or ["scan"]

    def fits(name: str) -> bool:
        # At most 100 characters and 200 bytes: a name of 100 CJK characters is 300 bytes in UTF-8, over the
        # 255 bytes a file system allows in one name.
        return len(name) <= 100 and len(name.encode("utf-8", "surrogateescape")) <= 200

    # A path dozens of folders deep, too long even with every part cut short: folders after the first (most
    # often the patient's) are left out, so that the name keeps its start and its series; the table has the
    # whole path.
    while len(parts) > 2 and not fits("__".join(p[:8] for p in parts)):
        del parts[1]
    # Too long: the longest part is cut first, each keeping its start, so that one patient's or study's
    # series still begin alike and sort together (cut from the left, they began mid-name, each differently).
    while not fits("__".join(parts)) and max(len(p) for p in parts) > 8:
        longest = max(range(len(parts)), key=lambda i: len(parts[i].encode("utf-8", "surrogateescape")))
        parts[longest] = parts[longest][: max(8, len(parts[longest]) * 3 // 4)]
    name = "__".join(parts)
    while not fits(name):
        name = name[1:]
    return name.strip("._") or "scan"


def _make_unique(items: list[BatchItem]) -> None:
    for it, name in zip(items, unique_names([it.name for it in items]), strict=True):
        it.name = name


#: Names of the run's own files in the output folder, which no series' folder may take.
RESERVED_NAMES = ("results.csv", "report.html", "batch.log", ".medae-batch.lock")


def unique_names(names: list[str]) -> list[str]:
    """The names with a counter added where two would share a folder (on case-insensitive file systems too)."""
    taken: set[str] = {name.lower() for name in RESERVED_NAMES}
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in taken:
            n += 1
            candidate = f"{name}_{n}"
        taken.add(candidate.lower())
        out.append(candidate)
    return out
