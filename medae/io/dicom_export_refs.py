"""The source images that exported DICOM objects refer to, and the frame geometry they share.

A derived object (Parametric Map, Segmentation) needs the headers of its source images: highdicom
copies patient and study identification from them, references them, and places frames at their
positions. Three cases:

- single-frame DICOM source: ``volume.meta["source_files"]`` lists one file per slice in k order;
  each frame k sits at its file's own Image Position (Patient).
- enhanced multi-frame DICOM source: one file and ``volume.meta["frame_numbers"]`` (1-based, k order);
  frames sit at the positions of those source frames.
- no DICOM source (NIfTI input): minimal headers are synthesised from the volume's grid, in a new
  study whose UIDs are hashes of the volume's voxels and geometry, so that every object exported for
  the same input lands in the same study and frame of reference.

Headers are read without pixel data and files are opened read-only.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from medae import geometry
from medae.errors import OutputError
from medae.io.deid import EMPTIED, Deidentification, keyed_uid, mark_deidentified, reference_header
from medae.io.dicom_source import open_dicom
from medae.volume import Volume

_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
_CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class SourceRefs:
    """What highdicom needs to build an object on the source's grid.

    Attributes:
        headers: Source image headers as highdicom should see them (de-identified unless keep_phi).
        plane_positions: Explicit frame positions (k order) where the frames are not one per header.
        synthesized: True when the headers were made up from a non-DICOM volume.
        laterality: The source series' Laterality, for the General Series module.
        frame_numbers: For a multi-frame source, the source frame (1-based) of each slice (k order).
    """

    headers: list[Dataset]
    plane_positions: list | None
    synthesized: bool
    laterality: str | None = None
    frame_numbers: list[int] | None = None


def resolve_sources(source: Volume, policy: Deidentification, target: Path) -> SourceRefs:
    """Reads (or synthesises) the source headers of ``source``.

    Raises:
        OutputError: the source files are missing, unreadable or do not lie on the volume's grid.
    """
    files = source.meta.get("source_files")
    if not files:
        return SourceRefs(headers=synthesize_headers(source, policy), plane_positions=None, synthesized=True)
    originals = [_read_header(Path(f), target) for f in files]
    multiframe = source.meta.get("frame_numbers") is not None or int(originals[0].get("NumberOfFrames", 1) or 1) > 1
    if multiframe:
        if len(originals) != 1 or "PerFrameFunctionalGroupsSequence" not in originals[0]:
            raise OutputError(
                f"{target}: the source is {len(originals)} multi-frame file(s) without per-frame positions in one "
                "file; DICOM results can refer to one enhanced multi-frame file or to single-frame images. "
                "Export NIfTI instead."
            )
        positions, numbers = _multiframe_positions(originals[0], source, target)
    else:
        _check_single_frames(originals, source, target)
        positions, numbers = None, None
    headers = originals if policy.keep_phi else [reference_header(ds, policy) for ds in originals]
    laterality = originals[0].get("Laterality") or None
    headers = _one_orientation(_complete(headers))
    return SourceRefs(headers, positions, synthesized=False, laterality=laterality, frame_numbers=numbers)


def study_header(source: Volume | None, policy: Deidentification, target: Path) -> SourceRefs:
    """One header naming the patient and study that an object without geometry (a screenshot) joins.

    Only the first source file is read and nothing is checked against the grid, since a screenshot
    does not lie on it. Without a source, a new pseudonymous study with random UIDs is started.

    Raises:
        OutputError: the first source file cannot be read.
    """
    if source is None:
        # A one-voxel random stand-in gives a fresh identity through the same path as NIfTI sources.
        source = Volume(np.random.default_rng().integers(0, 2**62, size=(1, 1, 1)), np.eye(4))
    files = source.meta.get("source_files")
    if not files:
        return SourceRefs(headers=synthesize_headers(source, policy)[:1], plane_positions=None, synthesized=True)
    original = _read_header(Path(files[0]), target)
    header = original if policy.keep_phi else reference_header(original, policy)
    laterality = original.get("Laterality") or None
    return SourceRefs(_complete([header]), plane_positions=None, synthesized=False, laterality=laterality)


#: Type 2 attributes of the patient and study modules that derived objects copy from their source: an
#: anonymised export often leaves them out, and highdicom reads each one (the de-identified headers get
#: the same list emptied, plus a pseudonymous name and ID).
_TYPE2 = ("PatientName", "PatientID", *(k for k in EMPTIED if k != "PositionReferenceIndicator"))


def _complete(headers: list[Dataset]) -> list[Dataset]:
    """Copies of ``headers`` with the attributes a derived object needs and the source may lack.

    Missing Type 2 attributes become empty, as the standard allows. A series without a Frame of
    Reference UID (required of the derived object) gets one derived from its Series Instance UID (or,
    lacking that, from its first image's SOP Instance UID), the same for every header, so the results
    still share one frame with each other. Headers that lack nothing are returned as they are.
    """
    if (
        not _over_long(headers[0])
        and not _malformed(headers[0])
        and not any(k not in ds for ds in headers for k in (*_TYPE2, "FrameOfReferenceUID"))
    ):
        return headers
    first = headers[0]
    seed = str(first.get("SeriesInstanceUID", "") or first.get("SOPInstanceUID", "") or id(headers))
    frame = keyed_uid(b"medae frame of reference", seed)
    out = []
    for ds in headers:
        ds = copy.deepcopy(ds)  # the headers read for this export, never the ones a caller keeps
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        if "FrameOfReferenceUID" not in ds:
            ds.FrameOfReferenceUID = frame
        _fit_lengths(ds)
        _mend_values(ds)
        out.append(ds)
    return out


#: The longest value of text VRs (PS3.5 6.2) the derived objects copy: longer ones make invalid objects.
_MAX_LENGTH = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240}


#: The longest component group of a person's name (PS3.5 6.2: 64 characters each, groups split by "=").
_PN_GROUP = 64


def _over_long(ds: Dataset) -> bool:
    return any(
        (elem.VR in _MAX_LENGTH and any(len(str(v)) > _MAX_LENGTH[elem.VR] for v in _values(elem.value)))
        or (elem.VR == "PN" and any(len(g) > _PN_GROUP for v in _values(elem.value) for g in str(v).split("=")))
        for elem in ds
        if elem.VR != "SQ" and elem.value is not None
    )


_SEX = {"M": "M", "F": "F", "O": "O", "MALE": "M", "FEMALE": "F", "OTHER": "O"}


def _malformed(ds: Dataset) -> bool:
    """Whether a copied patient or study value breaks its VR's form (a sex spelt out, a date with dashes)."""
    return bool(_mended(ds))


def _mend_values(ds: Dataset) -> None:
    """Puts top-level dates, times and the patient's sex in their VR's form, or empties them.

    Kept patient data (``--keep-phi``) is copied from the source, which may break the standard; the derived
    objects' builders refuse such values, and an empty Type 2 value is what the standard allows instead.
    """
    for elem, fixed in _mended(ds):
        elem.value = fixed


def _mended(ds: Dataset) -> list:
    """(element, value in its VR's form) for each top-level date, time or sex that is not in that form."""
    from pydicom.multival import MultiValue

    out = []
    for elem in ds:
        if elem.VR not in ("DA", "TM") and elem.keyword != "PatientSex":
            continue
        if isinstance(elem.value, MultiValue | list | tuple):
            continue  # several values (calibration dates): the derived objects copy none of them
        text = "" if elem.value is None else str(elem.value).strip()
        if not text:
            continue
        if elem.keyword == "PatientSex":
            fixed = _SEX.get(text.upper(), "")
        elif elem.VR == "DA":
            found = re.fullmatch(r"(\d{4})[-./]?(\d{2})[-./]?(\d{2})", text)
            fixed = "".join(found.groups()) if found else ""
        else:
            found = re.fullmatch(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?)?", text)
            fixed = "".join(g for g in found.groups() if g) if found else ""
        if fixed != text:
            out.append((elem, fixed))
    return out


def _values(value) -> list:
    from pydicom.multival import MultiValue

    return list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]


def _fit_lengths(ds: Dataset) -> None:
    """Cuts top-level text values to their VR's length (a source may break it; what we write must not)."""
    for elem in ds:
        limit = _MAX_LENGTH.get(elem.VR, _PN_GROUP if elem.VR == "PN" else None)
        if limit is None or elem.value is None:
            continue
        if elem.VR == "PN":  # the limit holds for each component group (alphabetic, ideographic, phonetic)
            names = [str(v) for v in _values(elem.value)]
            if any(len(g) > _PN_GROUP for v in names for g in v.split("=")):
                cut = ["=".join(g[:_PN_GROUP] for g in v.split("=")) for v in names]
                elem.value = cut if len(cut) > 1 else cut[0]
            continue
        values = _values(elem.value)
        if any(len(str(v)) > limit for v in values):
            cut = [str(v)[:limit] for v in values]
            elem.value = cut if len(cut) > 1 else cut[0]


def _one_orientation(headers: list[Dataset]) -> list[Dataset]:
    """The headers with one orientation for all their images, as the object builders ask.

    The loader takes slices whose orientations differ by rounding (a few millionths) as one series, and
    an enhanced file may repeat one orientation in every frame's group; the builders compare the values
    exactly and look for it in the shared groups only. Copies are changed, never the caller's headers.
    """
    out = []
    if len(headers) > 1 and any(
        ds.get("ImageOrientationPatient") != headers[0].get("ImageOrientationPatient") for ds in headers
    ):
        first = headers[0].get("ImageOrientationPatient")
        for ds in headers:
            ds = copy.deepcopy(ds)
            if first is not None and "ImageOrientationPatient" in ds:
                ds.ImageOrientationPatient = first
            out.append(ds)
        headers = out
    return [_shared_plane_orientation(ds) for ds in headers]


def _shared_plane_orientation(ds: Dataset) -> Dataset:
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        return ds
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else None
    if shared is not None and "PlaneOrientationSequence" in shared:
        return ds
    found = [
        g.PlaneOrientationSequence[0].ImageOrientationPatient for g in per_frame if "PlaneOrientationSequence" in g
    ]
    if len(found) != len(per_frame):
        return ds
    values = np.array([[float(v) for v in iop] for iop in found])
    if np.abs(values - values[0]).max() > 1e-3:  # truly different orientations: a stack the builders refuse
        return ds
    ds = copy.deepcopy(ds)
    if shared is None:
        ds.SharedFunctionalGroupsSequence = [Dataset()]
    item = Dataset()
    item.ImageOrientationPatient = found[0]
    ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence = [item]
    for group in ds.PerFrameFunctionalGroupsSequence:
        del group.PlaneOrientationSequence
    return ds


def check_same_grid(result: Volume, source: Volume, what: str, target: Path) -> None:
    """Raises ``OutputError`` unless ``result`` lies on ``source``'s voxel grid."""
    if result.shape != source.shape or not np.allclose(result.affine, source.affine, atol=1e-4, rtol=1e-6):
        raise OutputError(
            f"{target}: the {what} ({result.describe()}) is not on the source scan's grid ({source.describe()}). "
            "DICOM results must lie on the source images; resample the result onto the source volume first."
        )


def frames_of(array: np.ndarray) -> np.ndarray:
    """Voxel array (i, j, k) = (column, row, slice) -> DICOM frames (slice, row, column)."""
    return np.ascontiguousarray(np.transpose(array, (2, 1, 0)))


def _read_header(path: Path, target: Path) -> Dataset:
    import pydicom

    try:
        fh, _size, _gzipped = open_dicom(path)
        with fh:
            return pydicom.dcmread(fh, stop_before_pixels=True)
    except (OSError, ValueError, pydicom.errors.InvalidDicomError) as exc:
        raise OutputError(
            f"{target}: the source image {path} cannot be read ({exc}). DICOM results refer to the source series; "
            "keep the series where it was loaded from, or export NIfTI instead."
        ) from exc


def _tolerance(source: Volume) -> float:
    # DS strings carry about 6 significant digits from many scanners; a tenth of a voxel is a real mismatch.
    return max(1e-3, 0.1 * min(source.spacing))


def _check_single_frames(headers: list[Dataset], source: Volume, target: Path) -> None:
    ni, nj, nk = source.shape
    if len(headers) != nk:
        raise OutputError(
            f"{target}: the volume has {nk} slices but lists {len(headers)} source files; "
            "reload the series so that it matches its files."
        )
    lps = geometry.LPS_TO_RAS @ source.affine
    tol = _tolerance(source)
    for k, ds in enumerate(headers):
        name = getattr(ds, "filename", None) or f"source image {k + 1}"
        try:
            ipp = np.array([float(v) for v in ds.ImagePositionPatient])
            iop = np.array([float(v) for v in ds.ImageOrientationPatient])
            rows, cols = int(ds.Rows), int(ds.Columns)
        except (AttributeError, TypeError, ValueError) as exc:
            raise OutputError(
                f"{target}: {name} has no usable image position/orientation ({exc}); "
                "DICOM results need a cross-sectional source series."
            ) from exc
        if (cols, rows) != (ni, nj):
            raise OutputError(
                f"{target}: {name} is {cols}x{rows} pixels but the volume's slices are {ni}x{nj}; "
                "reload the series so that it matches its files."
            )
        expected = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
        directions = np.concatenate([lps[:3, 0], lps[:3, 1]]) / np.repeat(np.linalg.norm(lps[:3, :2], axis=0), 3)
        if np.linalg.norm(ipp - expected) > tol or np.abs(iop - directions).max() > 1e-3:
            raise OutputError(
                f"{target}: {name} does not lie on the volume's grid at slice {k} (the volume was resampled or "
                "reordered after loading). Export results on the grid the series was loaded on."
            )


def _multiframe_positions(ds: Dataset, source: Volume, target: Path) -> tuple[list, list[int]]:
    """The plane position of each slice (k order) and the source frame it came from."""
    import highdicom as hd

    nk = source.shape[2]
    n_frames = int(ds.get("NumberOfFrames", 1))
    numbers = [int(f) for f in source.meta.get("frame_numbers") or range(1, n_frames + 1)]
    if len(numbers) != nk or not all(1 <= f <= n_frames for f in numbers):
        raise OutputError(
            f"{target}: the volume has {nk} slices but its frame numbers {numbers[:5]}... do not match the "
            f"{n_frames} frames of {getattr(ds, 'filename', 'the source')}; reload the series."
        )
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    per_frame = ds.PerFrameFunctionalGroupsSequence
    lps = geometry.LPS_TO_RAS @ source.affine
    positions = []
    for k, f in enumerate(numbers):
        group = per_frame[f - 1]
        seq = group.get("PlanePositionSequence") or shared.get("PlanePositionSequence")
        if not seq:
            raise OutputError(f"{target}: frame {f} of the source has no plane position; cannot place results.")
        ipp = [float(v) for v in seq[0].ImagePositionPatient]
        expected = (lps @ np.array([0.0, 0.0, k, 1.0]))[:3]
        if np.linalg.norm(np.array(ipp) - expected) > _tolerance(source):
            raise OutputError(
                f"{target}: source frame {f} does not lie on the volume's grid at slice {k}; "
                "export results on the grid the series was loaded on."
            )
        positions.append(hd.PlanePositionSequence("PATIENT", ipp))
    return positions, numbers


def synthesize_headers(volume: Volume, policy: Deidentification) -> list[Dataset]:
    """Minimal single-frame image headers, one per slice, describing a non-DICOM volume's grid.

    UIDs are keyed hashes of the voxel data and geometry, so repeated exports of the same input agree.
    With ``keep_phi``, patient fields found in ``volume.phi`` ("patient_name", "patient_id",
    "patient_birth_date", "patient_sex") are used; otherwise the patient is a pseudonym.

    Raises:
        OutputError: the grid's rows and columns are not perpendicular (DICOM cannot describe it).
    """
    from pydicom.valuerep import format_number_as_ds

    lps = geometry.LPS_TO_RAS @ volume.affine
    col_step, row_step, slice_step = (float(n) for n in np.linalg.norm(lps[:3, :3], axis=0))
    row_dir, col_dir = lps[:3, 0] / col_step, lps[:3, 1] / row_step
    if abs(float(row_dir @ col_dir)) > 1e-4:
        raise OutputError(
            f"{volume.source or 'the volume'}: its voxel grid is sheared (rows and columns are not perpendicular), "
            "which DICOM cannot describe; resample it to an orthogonal grid first."
        )
    digest = _content_digest(volume)
    key = policy.pseudonym_key
    study, series, frame_of_ref = (keyed_uid(key, digest, part) for part in ("study", "series", "frame"))
    name, pid = policy.pseudonym("", fallback=(digest,))
    phi = volume.phi if policy.keep_phi else {}
    ni, nj, nk = volume.shape
    headers = []
    for k in range(nk):
        ds = Dataset()
        ds.SOPClassUID = _CT_IMAGE if volume.modality == "CT" else _MR_IMAGE
        ds.SOPInstanceUID = keyed_uid(key, digest, "image", str(k))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame_of_ref
        ds.PatientName = str(phi.get("patient_name", name))
        ds.PatientID = str(phi.get("patient_id", pid))
        ds.PatientBirthDate = str(phi.get("patient_birth_date", ""))
        ds.PatientSex = str(phi.get("patient_sex", ""))
        for keyword in ("AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName"):
            setattr(ds, keyword, "")
        ds.PositionReferenceIndicator = ""
        ds.Modality = volume.modality if volume.modality in ("CT", "MR") else "MR"
        ds.Rows, ds.Columns = nj, ni
        ds.ImageOrientationPatient = [format_number_as_ds(float(v)) for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [format_number_as_ds(float(v)) for v in lps[:3, 3] + k * lps[:3, 2]]
        ds.PixelSpacing = [format_number_as_ds(row_step), format_number_as_ds(col_step)]
        ds.SliceThickness = format_number_as_ds(slice_step)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        if not policy.keep_phi:
            mark_deidentified(ds, policy)
        headers.append(ds)
    return headers


def _content_digest(volume: Volume) -> str:
    h = hashlib.sha256()
    h.update(str(volume.shape).encode())
    h.update(np.ascontiguousarray(volume.affine, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(volume.array).tobytes())
    return h.hexdigest()
