"""Finding DICOM files and turning their headers into stacks: discovery, filtering, series grouping.

A path is a single file, a folder (searched recursively) or a DICOMDIR (read as a file set). Every
file's header is read once (``dicom_header.read_header``). Files that are not DICOM are ignored;
files that look like DICOM but cannot be read are reported by name. Objects that are not scans
(structured reports, RT structures and doses, presentation states, segmentations, colour
pictures, images without patient geometry) and localizers are left out.

Frames are grouped by SeriesInstanceUID, then split where one UID mixes orientations, matrix
sizes, pixel spacings, echoes, temporal positions or multi-frame stacks. Acquisitions, trigger
times, b-values and image types split a series only when its frames repeat positions (each part
then forms a complete stack); otherwise they are different parts of one volume (e.g. CT rotations).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medae.errors import InputError
from medae.io import dicom_geometry
from medae.io.dicom_header import MEDIA_STORAGE_DIRECTORY, FileHeader, Frame, NotDicom, Unreadable, read_header
from medae.io.walk import walk_files
from medae.progress import ProgressFn, check_cancel, report

_STORAGE = "1.2.840.10008.5.1.4.1.1."
# SOP classes that are stored with the image storage prefix but are not scans (PS3.4 B.5).
_NOT_SCANS = {
    "481.": "a radiotherapy object (RT dose, structure set, plan or image)",
    "88.": "a structured report or key object selection",
    "11.": "a presentation state",
    "66": "a segmentation, registration or raw-data object",
    "67": "a real world value mapping",
    "68.": "a surface object",
    "9.": "a waveform",
    "104.": "an encapsulated document",
    "4.2": "an MR spectroscopy object",
    "30": "a parametric map (a derived result, such as medae's own heatmap)",
}
# Secondary captures (screenshots, scanned documents) never carry slice geometry: one in an image
# series is not a slice of it, and leaves no gap.
_SECONDARY_CAPTURE = ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.")
#: The modalities medae analyses: an image series of one of them that cannot be read is named, never passed over.
SCAN_MODALITIES = ("CT", "MR", "PT")
_NOT_SCAN_MODALITIES = {"RTDOSE", "RTSTRUCT", "RTPLAN", "RTRECORD", "SR", "PR", "KO", "SEG", "REG", "DOC", "ECG"}
_ALWAYS_SPLIT = ("echo_number", "echo_time", "temporal_position", "stack_id")
_SPLIT_IF_REPEATED = ("acquisition", "trigger_time", "b_value", "gradient", "image_type")
# How a part of a split series is named by the values that set it apart (image types by their own words).
_PART_LABELS = {
    "echo_number": "echo {}",
    "echo_time": "TE {:g} ms",
    "temporal_position": "time point {}",
    "stack_id": "stack {}",
    "acquisition": "acquisition {}",
    "trigger_time": "trigger {:g} ms",
    "b_value": "b={:g}",
    "gradient": "direction ({:g}, {:g}, {:g})",
}
_IMAGE_TYPE_WORDS = {
    "M": "magnitude",
    "P": "phase",
    "R": "real",
    "I": "imaginary",
    # Siemens' flags for the distortion correction and the intensity normalisation applied, or not.
    "ND": "not distortion-corrected",
    "DIS2D": "distortion-corrected (2D)",
    "DIS3D": "distortion-corrected (3D)",
    "NORM": "intensity-normalised",
}


@dataclass
class StackPlan:
    """One series (or part of a split series) ready for the pixel pass.

    Attributes:
        uid: Unique identifier: the SeriesInstanceUID, with ".N" appended when the UID was split.
        series_uid: The SeriesInstanceUID as written in the files.
        frames: The frames in k order.
        geometry: Grid, affine, warnings and problems of the stack.
        warnings: Everything the user should know, geometry warnings and problems included.
        label: For a part of a split series, the values that set it apart ("TE 9 ms", "b=1000").
    """

    uid: str
    series_uid: str
    frames: list[Frame]
    geometry: dicom_geometry.StackGeometry
    warnings: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def header(self) -> FileHeader:
        """The header of the first frame (series-level attributes)."""
        return self.frames[0].header

    @property
    def files(self) -> list[str]:
        """Distinct files in k order."""
        return list(dict.fromkeys(f.header.path for f in self.frames))


@dataclass
class Discovery:
    """Headers found under a path, and what was skipped."""

    headers: list[FileHeader] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    #: The SeriesInstanceUID of unreadable files whose header could be read (a file cut in its pixel data).
    unreadable_series: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    #: Files of an image series left out for lacking patient geometry, by SeriesInstanceUID.
    no_geometry: dict[str, list[str]] = field(default_factory=dict)
    #: Files of an image series left out for holding no pixel data (cut short while copied), by SeriesInstanceUID.
    no_pixels: dict[str, list[str]] = field(default_factory=dict)
    #: Files of CT, MR or PET image series refused (geometry, colour, mosaic...), by SeriesInstanceUID: (file, why).
    refused: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Second copies of images already read (same SOP Instance UID), by SeriesInstanceUID: (copy, first).
    copies: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: Files kept although their SOP Instance UID was already read, for holding other slices, by SeriesInstanceUID.
    reused_uids: dict[str, list[str]] = field(default_factory=dict)
    localizers: dict[str, int] = field(default_factory=dict)


def discover(path: Path, progress: ProgressFn | None = None, cancel: threading.Event | None = None) -> Discovery:
    """Reads the header of every DICOM file under ``path``.

    Raises:
        InputError: a DICOMDIR that cannot be read.
        CancelledError: ``cancel`` was set.
    """
    found = Discovery()
    if path.is_dir():
        files = list(walk_files(path))
        from_dicomdir = False
    else:
        files = [str(path)]
        from_dicomdir = path.name.upper() == "DICOMDIR"
    if from_dicomdir or (path.is_file() and _is_dicomdir(str(path))):
        files, missing = _dicomdir_files(path)
        found.unreadable.extend((m, "listed in the DICOMDIR but missing") for m in missing)
    total = max(1, len(files))
    first_copy: dict[tuple[str, str], tuple[FileHeader, str]] = {}
    for n, f in enumerate(files):
        check_cancel(cancel)
        if n % 16 == 0:
            report(progress, n / total, f"Reading DICOM headers ({n}/{len(files)})")
        try:
            h = read_header(f)
        except NotDicom:
            why = _not_dicom(f)
            if why:  # named or placed as DICOM: a failed copy, not a stranger in the folder
                found.unreadable.append((f, why))
            continue
        except Unreadable as exc:
            found.unreadable.append((f, str(exc)))
            if exc.series_uid:
                found.unreadable_series[f] = exc.series_uid
            continue
        if h.sop_class == MEDIA_STORAGE_DIRECTORY:
            continue  # a DICOMDIR inside a folder: its files are found by the walk itself
        reason = _rejection(h)
        if reason is not None:
            found.rejected.append((f, reason))
            screenshot = h.sop_class == _SECONDARY_CAPTURE[0] or h.sop_class.startswith(_SECONDARY_CAPTURE[1])
            if reason.startswith(_NO_GEOMETRY) and h.series_uid and not screenshot:
                found.no_geometry.setdefault(h.series_uid, []).append(os.path.basename(f))
            elif reason == _NO_PIXELS and h.series_uid and h.rows > 0:
                found.no_pixels.setdefault(h.series_uid, []).append(os.path.basename(f))
            if h.modality in SCAN_MODALITIES and h.series_uid and not screenshot and _image_refused(reason):
                found.refused.setdefault(h.series_uid, []).append((f, reason))
            continue
        instance = h.info.get("sop_instance_uid", "")
        # The same image exported twice (a copied study folder) has the same UID and the same place. A faulty
        # anonymiser or export may give every file one UID: those files hold other slices and are kept.
        # Each file is compared with the first of its UID alone, so that a folder of one reused UID costs no more.
        first = first_copy.setdefault((instance, h.series_uid), (h, f)) if instance else None
        if first is not None and first[0] is not h:
            if _same_place(first[0], h):
                found.copies.setdefault(h.series_uid, []).append((f, first[1]))
                continue
            found.reused_uids.setdefault(h.series_uid, []).append(os.path.basename(f))
        if "LOCALIZER" in h.image_type or all("LOCALIZER" in fr.keys.get("image_type", ()) for fr in h.frames):
            found.localizers[h.series_uid] = found.localizers.get(h.series_uid, 0) + len(h.frames)
            continue
        found.headers.append(h)
    report(progress, 1.0, f"Read {len(files)} headers")
    return found


def _same_place(a: FileHeader, b: FileHeader) -> bool:
    """Whether two files' frames lie in the same places, as a copy of an image does (positions within 0.05 mm).

    The margin lets an export that rewrote the positions with fewer decimals still be a copy; slices of one
    series lie far further apart.
    """
    if len(a.frames) != len(b.frames):
        return False
    for fa, fb in zip(a.frames, b.frames, strict=True):
        if (fa.position is None) != (fb.position is None):
            return False
        if fa.position is not None and not np.allclose(fa.position, fb.position, rtol=0.0, atol=0.05):
            return False
    return True


def group_stacks(found: Discovery) -> list[StackPlan]:
    """Groups frames into series and splits mixed ones. Deterministic order (series number, uid)."""
    by_uid: dict[str, list[Frame]] = defaultdict(list)
    for h in found.headers:
        uid = h.series_uid or f"no-series-uid:{os.path.dirname(h.path)}"
        by_uid[uid].extend(h.frames)
    plans: list[StackPlan] = []
    for uid, frames in by_uid.items():
        parts, dropped = _split(frames)
        notes = []
        if dropped:
            notes.append(
                f"left out {dropped} localizer/scout image(s) lying across the series "
                "(a single slice orthogonal to the others)."
            )
        if found.localizers.get(uid):
            notes.append(f"left out {found.localizers[uid]} localizer image(s) (ImageType LOCALIZER).")
        if found.copies.get(uid):
            copies = found.copies[uid]
            copy, first = copies[0]
            notes.append(
                f"left out {len(copies)} second cop{'y' if len(copies) == 1 else 'ies'} of images already read "
                f"(the same SOP Instance UID), e.g. {copy} (a copy of {first})."
            )
        if found.reused_uids.get(uid):
            reused = found.reused_uids[uid]
            more = f" and {len(reused) - 1} more" if len(reused) > 1 else ""
            notes.append(
                f"{len(reused)} file(s) ({reused[0]}{more}) reuse the SOP Instance UID of another image of the series "
                "at another position (an anonymiser or export gave several images one UID): each was kept as an image "
                "of its own."
            )
        absent = _absent_images(frames, found, uid)
        if absent:
            have, said = absent
            notes.append(
                f"only {have} of the {said} images its headers count (ImagesInAcquisition) were found: the rest of the "
                "series may lie in other folders (a viewer's export splits a series over folders of a few hundred "
                "files); open the folder above them all to load it whole."
            )
        for left_out, why in (
            (found.no_geometry.get(uid), "lack ImagePositionPatient or ImageOrientationPatient"),
            (found.no_pixels.get(uid), "hold no pixel data (cut short, as a file still being copied is)"),
        ):
            if left_out:
                more = f" and {len(left_out) - 1} more" if len(left_out) > 1 else ""
                notes.append(
                    f"left out {len(left_out)} file(s) of this series that {why} ({left_out[0]}{more}): where they "
                    "belong the series has a gap."
                )
        parts.sort(key=_part_sort_key)
        differs = _what_differs(frames) if len(parts) > 1 else ""
        for n, part in enumerate(parts, 1):
            plan_uid = uid if len(parts) == 1 else f"{uid}.{n}"
            plan = _plan(plan_uid, uid, part, notes, differs, _part_label(part, parts) if differs else "")
            plans.append(plan)
    _attach_unreadable(plans, found.unreadable, found.unreadable_series)
    # Parts of a split series in their own numeric order (part 2 before part 10).
    plans.sort(
        key=lambda p: (
            p.header.info.get("study_uid", ""),
            p.header.info.get("series_number") or 0,
            p.series_uid,
            0 if p.uid == p.series_uid else int(p.uid.rsplit(".", 1)[-1]),
        )
    )
    return plans


def _absent_images(frames: list[Frame], found: Discovery, uid: str) -> tuple[int, int] | None:
    """(found, counted) when the headers count more images than were found of the series, else None.

    ImagesInAcquisition counts the images of one acquisition: a series of several acquisitions (CT rotations,
    repetitions) counts each. Images found but left out (localizers, files without geometry or pixels, refused
    or unreadable ones) were there, and count as found. Multi-frame files are not counted (their frames are).
    """
    if any(f.index is not None for f in frames):
        return None
    counted: dict[object, int] = {}
    for f in frames:
        said = f.header.info.get("images_in_acquisition")
        if said:
            key = f.keys.get("acquisition")
            counted[key] = max(counted.get(key, 0), said)
    if not counted or len(counted) != len({f.keys.get("acquisition") for f in frames}):
        return None  # some acquisitions without a count: nothing to compare with
    left_out = (
        found.localizers.get(uid, 0)
        + len(found.no_geometry.get(uid, ()))
        + len(found.no_pixels.get(uid, ()))
        + len(found.refused.get(uid, ()))
        + sum(1 for series in found.unreadable_series.values() if series == uid)
    )
    have, said = len(frames) + left_out, sum(counted.values())
    return (have, said) if have < said else None


def _plan(uid: str, series_uid: str, frames: list[Frame], notes: list[str], differs: str, label: str) -> StackPlan:
    first = frames[0]
    info = first.header.info
    fallback = info.get("spacing_between_slices") or info.get("slice_thickness")
    names = [fr.name for fr in frames]
    if len(set(names)) < len(names):  # one file name in several folders (a copied series): say which is which
        root = os.path.commonpath([os.path.dirname(fr.header.path) for fr in frames])
        names = [
            os.path.relpath(fr.header.path, root) + fr.name[len(os.path.basename(fr.header.path)) :] for fr in frames
        ]
    spacing = first.pixel_spacing
    warnings = list(notes)
    if spacing is None or min(spacing) <= 0:
        spacing = (1.0, 1.0)
        warnings.append("no valid PixelSpacing: 1 mm pixels were assumed.")
    positions = np.array([fr.position for fr in frames])
    geom = dicom_geometry.stack_geometry(positions, first.orientation, spacing, names, fallback)
    ordered = [frames[i] for i in geom.order]
    if differs:
        part = uid.rsplit(".", 1)[-1]
        named = f" ({label})" if label else ""
        warnings.insert(0, f"part {part}{named} of series {series_uid}, which was split (it mixes {differs}).")
    warnings.extend(geom.warnings)
    warnings.extend(f"cannot be loaded as a regular volume: {p}" for p in geom.problems)
    for fr in ordered:
        warnings.extend(w for w in fr.header.warnings if w not in warnings)
    return StackPlan(uid=uid, series_uid=series_uid, frames=ordered, geometry=geom, warnings=warnings, label=label)


#: Direction cosines closer than this (about 0.3 degrees) belong to one stack: some exports write each
#: slice's orientation with its own rounding noise, while stacks a scanner tilts apart differ by degrees.
_SAME_ORIENTATION = 5e-3


def _split(frames: list[Frame]) -> tuple[list[list[Frame]], int]:
    """Splits one UID's frames into stacks; returns the stacks and the number of scouts dropped."""
    clusters: list[tuple[tuple, np.ndarray, list[Frame]]] = []
    for fr in frames:
        h = fr.header
        fixed = (
            h.rows,
            h.cols,
            h.bits_allocated,  # (signed and unsigned files of one series are read each as stored: dicom_values)
            h.samples,
            *_owner(h),
            tuple(np.round(fr.pixel_spacing, 3)) if fr.pixel_spacing else None,
            *(_rounded(fr.keys.get(k)) for k in _ALWAYS_SPLIT),
        )
        for key, ori, members in clusters:
            if key == fixed and np.max(np.abs(ori - fr.orientation)) < _SAME_ORIENTATION:
                members.append(fr)
                break
        else:
            clusters.append((fixed, np.asarray(fr.orientation), [fr]))
    dropped = 0
    if len(clusters) > 1:
        biggest = max(clusters, key=lambda c: len(c[2]))
        n_big = dicom_geometry.normal_of(biggest[1])[2]
        kept = []
        for c in clusters:
            n_c = dicom_geometry.normal_of(c[1])[2]
            if c is not biggest and len(c[2]) == 1 and len(biggest[2]) >= 3 and abs(float(n_c @ n_big)) < 0.7:
                dropped += 1
                continue
            kept.append(c)
        clusters = kept
    parts: list[list[Frame]] = []
    for _key, _ori, members in clusters:
        parts.extend(_split_repeated(members))
    return parts, dropped


def _owner(h) -> tuple[str, str, str]:
    """Whose and where: a series UID that an anonymiser or a faulty export reused must not merge two scans."""
    return (str(h.info.get("patient_id") or ""), str(h.info.get("study_uid") or ""), h.frame_of_reference)


def _split_repeated(frames: list[Frame]) -> list[list[Frame]]:
    """Splits a stack whose positions repeat by the first key(s) that make every part unique."""
    if not _has_repeats(frames):
        return [frames]
    used: list[str] = []
    for key in _SPLIT_IF_REPEATED:
        values = {_rounded(f.keys.get(key)) for f in frames}
        if len(values) < 2:
            continue
        used.append(key)
        groups: dict[tuple, list[Frame]] = defaultdict(list)
        for f in frames:
            groups[tuple(_rounded(f.keys.get(k)) for k in used)].append(f)
        if not any(_has_repeats(g) for g in groups.values()):
            return list(groups.values())
    return [frames]


def _has_repeats(frames: list[Frame]) -> bool:
    if len(frames) < 2:
        return False
    normal = dicom_geometry.normal_of(frames[0].orientation)[2]
    return dicom_geometry.repeats(np.array([f.position for f in frames]) @ normal)


def _what_differs(frames: list[Frame]) -> str:
    """Names the attributes whose values differ between the frames of one UID."""
    labels = {
        "echo_number": "echo numbers",
        "echo_time": "echo times",
        "temporal_position": "temporal positions",
        "stack_id": "multi-frame stacks",
        "acquisition": "acquisitions",
        "trigger_time": "trigger times",
        "b_value": "b-values",
        "gradient": "diffusion directions",
        "image_type": "image types",
    }
    found = []
    if len({tuple(np.round(f.orientation, 3)) for f in frames}) > 1:
        found.append("orientations")
    if len({(f.header.rows, f.header.cols) for f in frames}) > 1:
        found.append("matrix sizes")
    if len({tuple(np.round(f.pixel_spacing or (0, 0), 3)) for f in frames}) > 1:
        found.append("pixel spacings")
    if len({_owner(f.header) for f in frames}) > 1:
        found.append("patients, studies or frames of reference: its UID was given to more than one series")
    if len({(f.header.bits_allocated, f.header.samples) for f in frames}) > 1:
        found.append("pixel storage (bits allocated or samples per pixel)")
    found.extend(label for key, label in labels.items() if len({_rounded(f.keys.get(key)) for f in frames}) > 1)
    return ", ".join(found) or "repeated positions"


def _part_sort_key(frames: list[Frame]) -> tuple:
    # Numbers in numeric order (time point 2 before 10, TE 9 ms before 80 ms), then words, then nothing.
    def typed(value: object) -> tuple:
        if value is None:
            return (2, 0.0, "")
        if isinstance(value, int | float):
            return (0, float(value), "")
        return (1, 0.0, str(value))

    f = frames[0]
    keys = tuple(typed(_rounded(f.keys.get(k))) for k in (*_ALWAYS_SPLIT, *_SPLIT_IF_REPEATED))
    return (keys, f.header.path, f.index or 0)


def _part_label(part: list[Frame], parts: list[list[Frame]]) -> str:
    """The values that set ``part`` apart from the other parts of its series, in words."""
    words = []
    planes = {_plane(p[0].orientation) for p in parts}
    if len(planes) > 1:  # a 3-plane localizer: its parts differ by their plane alone
        words.append(f"{_plane(part[0].orientation)} part")
    for key in (*_ALWAYS_SPLIT, *_SPLIT_IF_REPEATED):
        values = {_rounded(p[0].keys.get(key)) for p in parts}
        value = _rounded(part[0].keys.get(key))
        if len(values) < 2 or value is None:
            continue
        if key == "image_type":
            shared = set.intersection(*(set(v or ()) for v in values))
            own = [_IMAGE_TYPE_WORDS.get(w, w.lower()) for w in value if w not in shared]
            if own:
                words.append(" ".join(own))
        elif key == "gradient":
            words.append(_PART_LABELS[key].format(*value))
        else:
            words.append(_PART_LABELS[key].format(value))
    return ", ".join(words)


def _plane(orientation: np.ndarray) -> str:
    """The anatomical plane of slices ("axial", "oblique coronal"), by the axis their normal is nearest to."""
    normal = np.abs(dicom_geometry.normal_of(orientation)[2])
    plane = ("sagittal", "coronal", "axial")[int(np.argmax(normal))]  # LPS: x runs left, y back, z up
    # More than about 20 degrees off the axis: named oblique, so two tilted stacks of one plane stay apart.
    return plane if normal.max() > 0.94 else f"oblique {plane}"


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    return value


_NO_GEOMETRY = "no patient geometry (ImagePositionPatient/ImageOrientationPatient)"
_NO_PIXELS = "no pixel data"


_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic", ".ima")


def _not_dicom(path: str) -> str | None:
    """Why a file that is not DICOM should have been: empty or cut short, or named .dcm; None for others."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None
    named = path.lower().endswith(_DICOM_SUFFIXES)
    if size == 0 and (named or "." not in os.path.basename(path)):
        return "empty (0 bytes): a copy that failed"
    if not named:
        return None
    if size < 132:
        return f"cut short ({size} bytes, less than a DICOM file's preamble)"
    return "named as DICOM, but its content is another kind of file"


def _image_refused(reason: str) -> bool:
    """Whether a rejection is of a scan that could not be used, not of an object that is no scan at all.

    A colour image of an MR or CT series is a derived map (a DTI colour FA map, a fused view), not a scan.
    """
    return not (
        reason.endswith("not an image series")
        or reason.startswith("not an image storage object")
        or reason.startswith("a colour image")
    )


def _rejection(h: FileHeader) -> str | None:
    sop = h.sop_class
    if sop.startswith(_STORAGE):
        rest = sop[len(_STORAGE) :]
        for prefix, what in _NOT_SCANS.items():
            if rest.startswith(prefix):
                return f"{what} (SOP class {sop}), not an image series"
    elif sop:
        return f"not an image storage object (SOP class {sop})"
    if h.modality in _NOT_SCAN_MODALITIES:
        return f"a {h.modality} object, not an image series"
    if h.pixel_tag == 0:
        return _NO_PIXELS
    if h.rows <= 0 or h.cols <= 0 or h.bits_allocated not in (1, 8, 16, 32, 64):
        return "invalid image size or bit depth (Rows, Columns, BitsAllocated)"
    if h.samples != 1:
        return f"a colour image ({h.photometric}, {h.samples} samples per pixel), not a greyscale scan"
    if "MOSAIC" in h.image_type:
        # Siemens stores each volume of an EPI/DWI run as one tiled image; its tiles are slices whose
        # positions only the private CSA header describes.
        return (
            "a Siemens mosaic (each file tiles one volume's slices into one image); convert the series with "
            "dcm2niix and open the NIfTI"
        )
    placed = sum(f.position is not None and f.orientation is not None for f in h.frames)
    if h.enhanced and 0 < placed < len(h.frames):
        items = h.info.get("per_frame_items", 0)
        if items != len(h.frames):
            why = f"NumberOfFrames says {len(h.frames)}, its per-frame functional groups describe {items}"
        else:
            unplaced = [f.index + 1 for f in h.frames if f.position is None or f.orientation is None]
            more = f" and {len(unplaced) - 3} more" if len(unplaced) > 3 else ""
            which = ", ".join(str(n) for n in unplaced[:3]) + more
            why = (
                f"frame{'s' if len(unplaced) > 1 else ''} {which} lack{'' if len(unplaced) > 1 else 's'} a position "
                "or orientation (PlanePositionSequence, PlaneOrientationSequence) in the functional groups"
            )
        return (
            f"a multi-frame file whose per-frame geometry places only {placed} of its {len(h.frames)} frames "
            f"({why}): the file is inconsistent; export the series again"
        )
    if not h.frames or placed < len(h.frames):
        return f"{_NO_GEOMETRY}: not a cross-sectional scan"
    try:
        for f in h.frames:
            dicom_geometry.normal_of(f.orientation)
    except ValueError as exc:
        return f"invalid geometry: {exc}"
    return None


def _is_dicomdir(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    return head[128:132] == b"DICM" and MEDIA_STORAGE_DIRECTORY.encode() in head


def _dicomdir_files(path: Path) -> tuple[list[str], list[str]]:
    """The files a DICOMDIR references (existing ones, and the missing ones).

    The records are read directly rather than through pydicom's FileSet, which drops a record whose file
    it cannot find with a console warning. Names are matched regardless of case: a CD or USB stick
    mounted or copied on Linux often shows the 8.3 names a DICOMDIR lists in lower case.
    """
    import warnings

    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(str(path))
        records = list(ds.get("DirectoryRecordSequence", []))
    except Exception as exc:  # pydicom raises many types for damaged directories
        raise InputError(
            f"{path}: a DICOMDIR that cannot be read ({exc}). Open the folder that holds the files instead."
        ) from exc
    if not any(record.get("ReferencedFileID") for record in records):
        # pydicom reads a directory cut short without complaint, as one without records.
        raise InputError(
            f"{path}: a DICOMDIR that lists no files (cut short or damaged, or the media is empty). Open the "
            "folder that holds the files instead."
        )
    listings: dict[str, dict[str, str]] = {}
    present, missing = [], []
    for record in records:
        fid = record.get("ReferencedFileID")
        if not fid:
            continue
        parts = [str(fid)] if isinstance(fid, str) else [str(v) for v in fid]
        found = _case_insensitive(path.parent, parts, listings)
        if found is None:
            missing.append(os.path.join(path.parent, *parts))
        else:
            present.append(found)
    return list(dict.fromkeys(present)), missing


def _case_insensitive(root: Path, parts: list[str], listings: dict[str, dict[str, str]]) -> str | None:
    """``root/parts...`` as it exists on disk, each part matched exactly or else regardless of case."""
    current = str(root)
    for part in parts:
        exact = os.path.join(current, part)
        if os.path.exists(exact):
            current = exact
            continue
        if current not in listings:
            try:
                listings[current] = {name.lower(): name for name in os.listdir(current)}
            except OSError:
                listings[current] = {}
        name = listings[current].get(part.lower())
        if name is None:
            return None
        current = os.path.join(current, name)
    return current if os.path.isfile(current) else None


def _parent(path: str) -> str:
    return os.path.dirname(os.path.dirname(path))


def _attach_unreadable(
    plans: list[StackPlan], unreadable: list[tuple[str, str]], series_of: dict[str, str] | None = None
) -> None:
    """Adds warnings about unreadable files to the series in the same folder, or in a neighbouring one.

    Files beside the series are named. Files in a sibling folder (a viewer's export caps each folder at a
    few hundred files: DICOM/00001, DICOM/00002) are counted without their names: the folder beside a
    patient's may be another patient's, whose file names must not appear in this series' outputs (a
    batch gives such files rows of their own). A file in a sibling folder whose header names another series
    is none of this series' concern.
    """
    series_of = series_of or {}
    if not unreadable or not plans:
        return
    for plan in plans:
        dirs = {os.path.dirname(p) for p in plan.files}
        parents = {os.path.dirname(d) for d in dirs} - dirs
        mine = [(p, why) for p, why in unreadable if os.path.dirname(p) in dirs]
        near = [
            p
            for p, _why in unreadable
            if os.path.dirname(p) not in dirs
            and _parent(p) in parents
            and series_of.get(p, plan.series_uid) == plan.series_uid
        ]
        if mine:
            listed = "; ".join(f"{os.path.basename(p)} ({why})" for p, why in mine[:5])
            more = f"; and {len(mine) - 5} more" if len(mine) > 5 else ""
            plan.warnings.append(f"skipped {len(mine)} unreadable file(s) nearby: {listed}{more}.")
        if near:
            plan.warnings.append(
                f"{len(near)} DICOM file(s) in a neighbouring folder could not be read; if this series continues "
                "there, it lacks them: open that folder alone to see which and why."
            )
