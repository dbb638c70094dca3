"""DICOM series -> ``Volume``: the two calls the loader makes, ``scan_dicom`` and ``load_series``.

The work is split by concern:
``dicom_header`` (the one header pass), ``dicom_multiframe`` (enhanced multi-frame functional
groups), ``dicom_scan`` (discovery, filtering, series grouping and splitting), ``dicom_geometry``
(slice order, spacing checks, gantry tilt, affine), ``dicom_pixels`` (the pixel pass and codecs)
and ``dicom_values`` (modality LUT, padding, MONOCHROME1).

Array layout: the pixel pass fills a (slice, row, column) buffer, one contiguous slice per file, and
the volume's array is its transpose, (column, row, slice) = (i, j, k): a Fortran-ordered view, no
copy.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from medae import geometry
from medae.errors import GeometryError, InputError, SeriesSelectionError, UnsupportedInputError
from medae.io.dicom_scan import StackPlan, discover, group_stacks
from medae.io.loader import SeriesInfo
from medae.progress import ProgressFn, check_cancel, report, sub_progress
from medae.volume import Volume

__all__ = ["DicomSeriesInfo", "load_series", "scan_dicom"]

_PHI_FIELDS = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_age",
    "patient_sex",
    "accession_number",
    "institution_name",
    "study_date",
    "referring_physician",
)


class DicomSeriesInfo(SeriesInfo):
    """A ``SeriesInfo`` that also carries the header records of its frames.

    ``load_series`` then needs no second header pass. The records are a plain attribute, not a
    dataclass field, so ``to_json``/``asdict`` never see them.
    """

    plan: StackPlan | None = None


def scan_dicom(
    path: str | os.PathLike,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    unreadable: list[tuple[str, str]] | None = None,
    refused: list[tuple[str, str]] | None = None,
) -> list[SeriesInfo]:
    """Lists the DICOM image series under ``path`` from their headers only.

    Args:
        path: A DICOM file, a folder (searched recursively) or a DICOMDIR.
        progress: Progress callback (fraction, message).
        cancel: Set to stop with ``CancelledError`` (checked between files).
        unreadable: When given, receives (path, why) of each DICOM file that could not be read, so that a
            caller that reports every input (a batch) can name them.
        refused: When given, receives (first file, why) of each CT, MR or PET image series none of whose
            files could be used (invalid geometry, a mosaic...), which is not among the series returned.

    Returns:
        One ``SeriesInfo`` per (split) series; [] when there is no DICOM image there.

    Raises:
        UnsupportedInputError: ``path`` is one DICOM file that is not an image series (an SR, RT
            object, a localizer, a colour picture...).
        InputError: ``path`` is unreadable DICOM, or a folder whose DICOM files are all unreadable.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p}: no such file or folder. Check the path.")
    found = discover(p, progress=sub_progress(progress, 0.0, 0.95), cancel=cancel)
    if unreadable is not None:
        unreadable.extend(found.unreadable)
    plans = group_stacks(found)
    report(progress, 1.0, f"Found {len(plans)} DICOM series")
    if refused is not None:
        refused.extend(_refused_series(found, {plan.series_uid for plan in plans}))
    if not plans:
        _explain_nothing(p, found)
        return []
    return [_series_info(plan, p) for plan in plans]


def _numbered_without_gap(frames: list) -> bool:
    """True when every frame has an instance number and they run from first to last without a gap."""
    numbers = [f.keys.get("instance") for f in frames]
    if len(frames) < 2 or any(n is None for n in numbers) or any(f.index is not None for f in frames):
        return False
    return len(set(numbers)) == len(numbers) and max(numbers) - min(numbers) + 1 == len(numbers)


def _grid_advice(problems: list[str]) -> str:
    """What to do about the problems that keep a series from being a regular grid, one remedy per cause."""
    steps = []
    if any("missing slice" in p for p in problems):
        steps.append("restore the missing files")
    if any("duplicate slice" in p for p in problems):
        steps.append(
            "if the series holds several volumes at the same positions (repetitions, diffusion directions or "
            "echoes its headers do not tell apart), export each volume as a series of its own or convert the "
            "series to NIfTI (e.g. with dcm2niix) and open one volume; if the files are copies, remove them"
        )
    if any("irregular slice spacing" in p for p in problems):
        steps.append(
            "for unevenly spaced slices, resample the series to even spacing (3D Slicer or SimpleITK) and "
            "save it as NIfTI"
        )
    if not steps:
        return "Export the series again."
    text = "; ".join(steps)
    return f"{text[0].upper()}{text[1:]} (or export the series again)."


def load_series(
    info: SeriesInfo,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Volume:
    """Reads the pixel data of one series found by ``scan_dicom``.

    Raises:
        GeometryError: the slices do not form a regular grid (missing or duplicate slices,
            irregular spacing); the message names the files on either side.
        MissingCodecError: compressed pixel data with no installed decoder.
        InputError: files that vanished or cannot be decoded.
        CancelledError: ``cancel`` was set.
    """
    from medae.io import dicom_pixels, dicom_values

    plan = getattr(info, "plan", None)
    if plan is None:
        plan = _rescan(info, cancel)
    h = plan.header
    label = f"series {plan.uid} ({info.description})"
    if plan.geometry.problems:
        # Files of the series left out for lacking geometry explain a gap better than "missing files".
        left_out = [w for w in plan.warnings if w.startswith("left out") and "lack ImagePosition" in w]
        unreadable = [w for w in plan.warnings if "unreadable file(s)" in w]
        advice = _grid_advice(plan.geometry.problems)
        if left_out:
            advice = f"medae {left_out[0]} Repair those files' headers, or export the series again."
        elif unreadable and any("missing slice" in p for p in plan.geometry.problems):
            # A damaged file of the series, not a lost one, is what leaves the gap.
            advice = f"medae {unreadable[0]} Copy those files again from their source, or export the series again."
        elif (
            any("missing slice" in p for p in plan.geometry.problems) and len(plan.files) == 1 and len(plan.frames) > 1
        ):
            # The frames of one multi-frame file: no file can be missing, the file holds the gap.
            advice = (
                f"No file is missing: the gap lies inside the one multi-frame file {os.path.basename(plan.files[0])}, "
                "which was acquired or exported with it. Resample the series to even spacing (3D Slicer or "
                "SimpleITK) and save it as NIfTI, or export the series again."
            )
        elif any("missing slice" in p for p in plan.geometry.problems) and _numbered_without_gap(plan.frames):
            # Every instance number is there: the gap was acquired (slabs apart), not lost with files.
            advice = (
                "No file is missing (the instance numbers run without a gap): the series was acquired with a gap "
                "between its slices or slabs. Resample it to even spacing (3D Slicer or SimpleITK) and save it "
                "as NIfTI."
            )
        elif any("missing slice" in p for p in plan.geometry.problems) and any(
            "which was split" in w and ("matrix sizes" in w or "pixel spacings" in w) for w in plan.warnings
        ):
            # The "missing" slice is likely in the folder, split off into another part for its other size.
            advice = (
                "The series mixes image sizes, and its other part holds the images of the other size: the "
                "slices missing here are probably those (files resized or replaced). Export the series again."
            )
        # The series' own folder, not the folder that was opened above it: that is where the files are.
        where = os.path.commonpath([os.path.dirname(f) for f in plan.files]) if plan.files else info.source
        raise GeometryError(
            f"{where}: {label} is not a regular 3D grid, so it was not stacked: "
            + "; ".join(plan.geometry.problems)
            + f". {advice}"
        )
    check_cancel(cancel)
    raw = dicom_pixels.read_frames(plan.frames, progress=sub_progress(progress, 0.0, 0.9), cancel=cancel)
    modality = h.modality or "OT"
    values = dicom_values.to_values(raw, plan.frames, modality)
    del raw  # the values may share its memory; drop the name so only one reference remains
    report(progress, 1.0, "Loaded")
    array = values.array.transpose(2, 1, 0)
    meta = _meta(plan, values)
    phi = {k: h.info.get(k, "") for k in _PHI_FIELDS if h.info.get(k)}
    return Volume(
        array=array,
        affine=plan.geometry.affine.copy(),
        modality=modality,
        meta=meta,
        phi=phi,
        source=_series_location(plan.files) or info.source,
        warnings=[*plan.warnings, *values.warnings],
    )


def _series_location(files: list[str]) -> str:
    """Where a series lies: its one file, or the folder that holds all its files (not the archive searched)."""
    if not files:
        return ""
    if len(set(files)) == 1:
        return os.path.abspath(files[0])
    try:
        return os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
    except ValueError:  # files on different drives (Windows)
        return ""


def _series_info(plan: StackPlan, source: Path) -> DicomSeriesInfo:
    h = plan.header
    info = h.info
    affine = plan.geometry.affine
    middle = plan.frames[len(plan.frames) // 2]
    description = info.get("series_description") or f"{h.modality or 'DICOM'} series {info.get('series_number', '')}"
    if plan.label:  # a part of a split series: what sets it apart, wherever the description is shown
        description = f"{description} ({plan.label})"
    extra: dict[str, Any] = {
        "series_uid": plan.series_uid,
        "series_number": info.get("series_number"),
        "study_uid": info.get("study_uid", ""),
        "study_description": info.get("study_description", ""),
        "study_date": info.get("study_date", ""),
        "series_date": info.get("series_date", ""),
        "series_time": info.get("series_time", ""),
        "patient_name": info.get("patient_name", ""),
        "patient_id": info.get("patient_id", ""),
        "body_part": info.get("body_part", ""),
        "manufacturer": info.get("manufacturer", ""),
        "frame_of_reference_uid": h.frame_of_reference,
        "sop_class_uid": h.sop_class,
        "transfer_syntax_uid": h.transfer_syntax,
        "image_type": list(h.image_type),
        "multiframe": h.n_frames > 1,
        "thumbnail_file": middle.header.path,
        "thumbnail_frame": None if middle.index is None else middle.index + 1,
        "slice_step_mm": round(float(plan.geometry.step), 6),
        "tilt_deg": round(float(plan.geometry.tilt_deg), 4),
        "loadable": not plan.geometry.problems,
    }
    si = DicomSeriesInfo(
        uid=plan.uid,
        kind="dicom",
        modality=h.modality or "OT",
        description=description.strip(),
        shape=(h.cols, h.rows, len(plan.frames)),
        spacing=geometry.listed_spacing(affine),
        orientation=geometry.orientation_code(affine),
        n_files=len(plan.files),
        warnings=list(plan.warnings),
        source=str(source),
        extra=extra,
    )
    si.plan = plan
    return si


def _meta(plan: StackPlan, values: Any) -> dict[str, Any]:
    h = plan.header
    info = h.info
    first = plan.frames[0]
    meta: dict[str, Any] = {
        "format": "dicom",
        "series_uid": plan.series_uid,
        "series_key": plan.uid,
        "study_uid": info.get("study_uid", ""),
        "frame_of_reference_uid": h.frame_of_reference,
        "series_description": info.get("series_description", ""),
        "series_number": info.get("series_number"),
        "body_part": info.get("body_part", ""),
        "contrast_agent": info.get("contrast_agent", ""),
        "contrast_route": info.get("contrast_route", ""),
        "contrast_ingredient": info.get("contrast_ingredient", ""),
        "manufacturer": info.get("manufacturer", ""),
        "manufacturer_model": info.get("manufacturer_model", ""),
        "sop_class_uid": h.sop_class,
        "transfer_syntax_uid": h.transfer_syntax,
        "photometric_interpretation": h.photometric,
        "rescale_type": info.get("rescale_type", ""),
        "slice_thickness": info.get("slice_thickness"),
        "slice_step_mm": float(plan.geometry.step),
        "gantry_tilt_deg": float(plan.geometry.tilt_deg),
        "image_type": list(h.image_type),
    }
    # A diffusion series (or a part of one) says its b-value: what the model must know it is not a T1.
    b_values = {f.keys.get("b_value") for f in plan.frames} - {None}
    if b_values:
        meta["b_value"] = float(max(b_values))
    if first.window is not None:
        center, width = first.window
        if values.inverted_about is not None:
            center = values.inverted_about - center
        meta["window_center"] = float(center)
        meta["window_width"] = float(width)
    meta.update(values.meta)
    if plan.label:  # a part of a split series: what sets it apart (TE, time point, b-value)
        meta["part_label"] = plan.label
    if any(f.index is not None for f in plan.frames):
        meta["source_files"] = plan.files
        meta["frame_numbers"] = [(f.index or 0) + 1 for f in plan.frames]
    else:
        meta["source_files"] = [f.header.path for f in plan.frames]
    return meta


def _rescan(info: SeriesInfo, cancel: threading.Event | None) -> StackPlan:
    """The plan of a series described by a plain ``SeriesInfo`` (e.g. rebuilt from JSON)."""
    source = Path(info.source)
    if not source.exists():
        raise InputError(f"{source}: no such file or folder any more. Scan the input again.")
    plans = group_stacks(discover(source, cancel=cancel))
    for plan in plans:
        if plan.uid == info.uid:
            return plan
    raise SeriesSelectionError(
        f"{source}: series {info.uid} is no longer there. Run `medae info {source}` to list the series it holds."
    )


def _refused_series(found: Any, listed: set[str]) -> list[tuple[str, str]]:
    """(first file, why) of each image series whose every file was refused, with how many files it holds."""
    out = []
    for uid, files in found.refused.items():
        if uid in listed:
            continue
        first, why = files[0]
        others = f" and the {len(files) - 1} other file(s) of its series" if len(files) > 1 else ""
        advice = "" if re.search(r"\b(convert|export)\b", why) else ". Export the series again"
        out.append((first, f"{first}{others}: {why}{advice}."))
    return out


def _explain_nothing(p: Path, found: Any) -> None:
    """Raises a specific error when DICOM files were there but none forms an image series."""
    if p.is_dir():
        from medae.io.loader import is_volume_file

        if any(is_volume_file(f) for f in p.rglob("*")):
            return  # the loader lists the volume files; nothing to explain
    refused = _refused_series(found, set())
    if refused:
        more = f" ({len(refused) - 1} more image series refused too)" if len(refused) > 1 else ""
        raise InputError(f"{refused[0][1]}{more}")
    if found.unreadable:
        by_why: dict[str, list[str]] = {}
        for f, why in found.unreadable:
            by_why.setdefault(why, []).append(os.path.basename(f))
        # Files that fail alike (a whole series with one defect) are named together, by the first few.
        names = "; ".join(
            ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "") + f" ({why})"
            for why, files in list(by_why.items())[:5]
        )
        more = f"; and {len(by_why) - 5} more kinds of damage" if len(by_why) > 5 else ""
        if not found.rejected and not found.localizers:
            # A header that contradicts its complete pixel data is not cured by copying the file again.
            faulty = all("export the series again" in why for why in by_why)
            advice = "" if faulty else " The files may be truncated or damaged; copy them again."
            raise InputError(f"{p}: DICOM file(s) that cannot be read: {names}{more}.{advice}")
    if found.rejected:
        f, why = found.rejected[0]
        others = len(found.rejected) - 1
        more = f" (and {others} other DICOM object(s) that are not scans either)" if p.is_dir() and others else ""
        if found.localizers:  # counted too: a folder of a localizer and reports holds no scan at all
            n = sum(found.localizers.values())
            more += f"; {n} localizer (scout) image{'s' if n != 1 else ''} beside {'them' if others else 'it'}"
        raise UnsupportedInputError(
            f"{f}: {why}{more}. medae analyses CT, MR and PET image series; choose a folder or file that holds one."
        )
    if found.localizers:
        raise UnsupportedInputError(
            f"{p}: only localizer (scout) images, not a 3D scan. Choose the series the localizer was taken for."
        )
