"""DICOM results that radiology systems (PACS, 3D Slicer, OHIF) accept.

- ``write_parametric_map``: the anomaly heatmap as a Parametric Map (float32 frames, real-world
  value mapping giving the units), one frame per source slice.
- ``write_segmentation``: the ranked findings as a binary Segmentation, one segment per finding.
- ``write_secondary_capture``: a rendered screenshot as a Secondary Capture in the source's study.

All three are built with highdicom, written atomically, and de-identified unless ``keep_phi=True``
(see ``medae.io.deid`` for the policy). Results must lie on the source volume's grid; frames are
placed at the source images' own positions.

With a DICOM source and ``keep_phi=True`` the objects join the source's study and refer to its
images by their original UIDs. Without ``keep_phi`` they form a pseudonymous study whose UIDs are
keyed hashes of the source's: objects exported from one source agree with each other (same study,
frame of reference and referenced images), but not with the original series, unless
``retain_uids=True``. A non-DICOM source (NIfTI) gets a new study with UIDs derived from its voxels and
geometry; the objects then stand on their own geometry and refer to no images, since none exist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medae._version import __version__
from medae.atomic import atomic_path
from medae.errors import MedaeError, OutputError
from medae.io.deid import Deidentification, finish
from medae.io.dicom_export_refs import SourceRefs, check_same_grid, frames_of, resolve_sources, study_header
from medae.progress import ProgressFn, check_cancel, report
from medae.volume import Volume

MANUFACTURER = "medae"
# Segment colours (RGB), cycled: distinct on grey images and for colour-blind readers (Okabe-Ito).
_COLOURS = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167))
# Elements that reference source images; removed when the source images were synthesised and exist nowhere.
_SOURCE_REFERENCES = (
    "ReferencedSeriesSequence",
    "SourceImageSequence",
    "StudiesContainingOtherReferencedInstancesSequence",
)


def write_parametric_map(
    heatmap: Volume,
    source: Volume,
    path: str | os.PathLike,
    *,
    units_description: str,
    units: tuple[str, str] = ("1", "no units"),
    keep_phi: bool = False,
    retain_uids: bool = False,
    pseudonym_key: str | bytes | None = None,
    model_id: str | None = None,
    series_number: int = 9001,
    series_description: str = "medae anomaly map",
    content_label: str = "ANOMALY_MAP",
    window: tuple[float, float] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Writes the heatmap as a DICOM Parametric Map on the source's slices.

    Args:
        heatmap: Float heatmap on ``source``'s grid (same shape and affine).
        source: The analysed scan; ``meta["source_files"]`` names its DICOM files when it has any.
        path: Target file (conventionally ``.dcm``).
        units_description: What the values mean, e.g. "z-score against healthy scans" (LUT Explanation).
        units: UCUM (code, meaning) of the values; dimensionless by default.
        keep_phi: Keep the source's patient/study identification and UIDs (see module docstring).
        retain_uids: Without ``keep_phi``, keep the source's UIDs (Retain UIDs Option).
        pseudonym_key: Secret for pseudonyms and replacement UIDs (see ``medae.io.deid``).
        model_id: Model that produced the heatmap, recorded in the content description.
        series_number: Series Number of the new series.
        series_description: Series Description of the new series.
        content_label: Content Label (up to 16 of A-Z, 0-9, space, underscore; normalised).
        window: Display window (lower, upper) in heatmap units; defaults to the 1st-99.9th percentile.
        progress: Progress callback (fraction, message).
        cancel: Set to stop early with ``CancelledError``.

    Returns:
        ``path``.

    Raises:
        OutputError: the heatmap is not on the source grid, holds NaN/inf, the source files cannot be read,
            or the file cannot be written.
    """
    import highdicom as hd

    target = Path(path)
    check_same_grid(heatmap, source, "heatmap", target)
    values = np.asarray(heatmap.array)
    if values.dtype.kind not in "fiub":
        raise OutputError(f"{target}: heatmap values of type {values.dtype} cannot be written; pass real numbers.")
    frames = frames_of(values.astype(np.float32, copy=False))
    if not np.isfinite(frames).all():
        raise OutputError(f"{target}: the heatmap holds NaN or infinite values; replace them before exporting.")
    policy = Deidentification.create(keep_phi, retain_uids, pseudonym_key)
    report(progress, 0.0, "Reading source headers")
    refs = resolve_sources(source, policy, target)
    check_cancel(cancel)
    report(progress, 0.3, "Building the parametric map")
    lo, hi = window if window is not None else _default_window(frames)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=_short(content_label, 16),
        lut_explanation=_short(units_description, 64),
        unit=_code(units[0], "UCUM", units[1]),
        value_range=(float(frames.min()), float(frames.max())),
        slope=1.0,
        intercept=0.0,
    )
    description = f"medae {__version__} anomaly map" + (f", model {model_id}" if model_id else "")
    texts = [units_description, description, series_description, units[1]]

    def build() -> Any:
        return hd.pm.ParametricMap(
            source_images=refs.headers,
            pixel_array=frames,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MANUFACTURER,
            software_versions=__version__,
            device_serial_number="0",
            contains_recognizable_visual_features=False,
            real_world_value_mappings=[mapping],
            voi_lut_transformations=[
                hd.VOILUTTransformation(window_center=(lo + hi) / 2, window_width=max(hi - lo, 1e-6))
            ],
            plane_positions=refs.plane_positions,
            content_label=_content_label(content_label),
            content_description=_short(description, 64),
            series_description=_short(series_description, 64),
            **_charset(texts, refs.headers),
        )

    ds = _build("parametric map", target, build)
    # General Series Laterality is Type 2C; an empty value says "unknown" where the source gave none.
    ds.Laterality = refs.laterality or ""
    return _finish_and_save(ds, refs, policy, target, progress, cancel)


def write_segmentation(
    labels: Volume,
    source: Volume,
    path: str | os.PathLike,
    *,
    segment_descriptions: Sequence[str],
    model_id: str,
    keep_phi: bool = False,
    retain_uids: bool = False,
    pseudonym_key: str | bytes | None = None,
    series_number: int = 9002,
    series_description: str = "medae findings",
    content_label: str = "FINDINGS",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Writes the findings label map as a binary DICOM Segmentation, one segment per finding.

    Binary segmentations are what PACS viewers, 3D Slicer and OHIF read today; the newer label-map
    type is not yet widely supported. Each segment is a "Morphologically abnormal structure" (SCT
    49755003) of type "Lesion" (SCT 52988006), found automatically by medae (algorithm family
    "Artificial Intelligence", name "medae", version, model id as a parameter).

    Args:
        labels: Integer label map on ``source``'s grid: 0 background, n = finding n (1-based rank).
        source: The analysed scan (see ``write_parametric_map``).
        path: Target file.
        segment_descriptions: One description per finding, in label order; the first 64 characters
            become the Segment Label, the whole text the Segment Description.
        model_id: Model that found the regions.
        keep_phi: See ``write_parametric_map``.
        retain_uids: See ``write_parametric_map``.
        pseudonym_key: See ``write_parametric_map``.
        series_number: Series Number of the new series.
        series_description: Series Description of the new series.
        content_label: Content Label (normalised as for the parametric map).
        progress: Progress callback (fraction, message).
        cancel: Set to stop early with ``CancelledError``.

    Returns:
        ``path``.

    Raises:
        OutputError: no findings, labels outside 0..len(segment_descriptions), not on the source grid,
            unreadable source files, or the file cannot be written.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    target = Path(path)
    check_same_grid(labels, source, "label map", target)
    n = len(segment_descriptions)
    if n == 0:
        raise OutputError(f"{target}: there are no findings to write; a DICOM Segmentation needs at least one.")
    array = np.asarray(labels.array)
    if array.dtype.kind not in "iub":
        raise OutputError(f"{target}: the label map must hold integers (0 = background), not {array.dtype}.")
    lo, hi = int(array.min()), int(array.max())
    if lo < 0 or hi > n:
        raise OutputError(
            f"{target}: the label map holds labels {lo}..{hi} but {n} segment descriptions were given; "
            "pass one description per label 1..N."
        )
    frames = frames_of(array.astype(np.uint8 if n < 256 else np.uint16, copy=False))
    policy = Deidentification.create(keep_phi, retain_uids, pseudonym_key)
    report(progress, 0.0, "Reading source headers")
    refs = resolve_sources(source, policy, target)
    check_cancel(cancel)
    report(progress, 0.3, "Building the segmentation")
    algorithm = hd.AlgorithmIdentificationSequence(
        name=MANUFACTURER,
        family=codes.cid7162.ArtificialIntelligence,
        version=__version__,
        parameters={"model": str(model_id)},
    )
    segments = []
    for number, text in enumerate(segment_descriptions, start=1):
        item = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=_short(_single_line(text) or f"Finding {number}", 64),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            display_color=hd.color.CIELabColor.from_rgb(*_COLOURS[(number - 1) % len(_COLOURS)]),
        )
        if text:
            item.SegmentDescription = str(text)[:1024]
        segments.append(item)
    description = f"medae {__version__} findings, model {model_id}"
    texts = [*segment_descriptions, description, series_description, str(model_id)]

    def build() -> Any:
        return hd.seg.Segmentation(
            source_images=refs.headers,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segments,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MANUFACTURER,
            software_versions=__version__,
            device_serial_number="0",
            plane_positions=refs.plane_positions,
            content_label=_content_label(content_label),
            content_description=_short(description, 64),
            series_description=_short(series_description, 64),
            **_charset(texts, refs.headers),
        )

    ds = _build("segmentation", target, build)
    return _finish_and_save(ds, refs, policy, target, progress, cancel)


def write_secondary_capture(
    rgb: np.ndarray,
    source: Volume | None,
    path: str | os.PathLike,
    *,
    keep_phi: bool = False,
    retain_uids: bool = False,
    pseudonym_key: str | bytes | None = None,
    series_number: int = 9003,
    series_description: str = "medae screenshot",
    patient_orientation: tuple[str, str] | None = None,
    burned_in_annotation: bool = False,
) -> Path:
    """Writes a rendered screenshot (H, W, 3) as a DICOM Secondary Capture image.

    Args:
        rgb: uint8 RGB pixels, rows first, as rendered by the caller (with its colour bar).
        source: The scan shown; the image joins its study (pseudonymous unless ``keep_phi``). ``None``
            starts a new pseudonymous study.
        path: Target file.
        keep_phi: See ``write_parametric_map``.
        retain_uids: See ``write_parametric_map``.
        pseudonym_key: See ``write_parametric_map``.
        series_number: Series Number of the new series.
        series_description: Series Description of the new series.
        patient_orientation: Patient directions of the image's rows and columns, e.g. ("L", "P") for an
            axial view in radiological convention; ``None`` when the view has none (written empty).
        burned_in_annotation: True when the rendered pixels show identifying text; refused without
            ``keep_phi``, since pixels cannot be de-identified here.

    Returns:
        ``path``.

    Raises:
        OutputError: ``rgb`` is not an (H, W, 3) uint8 array, identifying text without ``keep_phi``, an
            unreadable source file, or the file cannot be written.
    """
    import highdicom as hd

    target = Path(path)
    pixels = np.asarray(rgb)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8 or min(pixels.shape[:2]) < 1:
        raise OutputError(
            f"{target}: a screenshot must be an (H, W, 3) uint8 RGB array, got {pixels.dtype} {pixels.shape}."
        )
    if burned_in_annotation and not keep_phi:
        raise OutputError(
            f"{target}: the screenshot shows identifying text, which de-identified output must not carry; "
            "render it without patient overlays, or export with keep_phi=True."
        )
    policy = Deidentification.create(keep_phi, retain_uids, pseudonym_key)
    refs = study_header(source, policy, target)
    ref = refs.headers[0]

    def build() -> Any:
        ds = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=ref,
            pixel_array=np.ascontiguousarray(pixels),
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            # highdicom insists on a direction; an empty value (allowed, Type 2C) replaces it below.
            patient_orientation=patient_orientation or ("L", "P"),
            transfer_syntax_uid="1.2.840.10008.1.2.1",
            series_description=_short(series_description, 64),
            manufacturer_model_name=MANUFACTURER,
            software_versions=__version__,
            **_charset([series_description], refs.headers),
        )
        if patient_orientation is None:
            ds.PatientOrientation = ""
        ds.BurnedInAnnotation = "YES" if burned_in_annotation else "NO"
        ds.Laterality = refs.laterality or ""
        return ds

    ds = _build("secondary capture", target, build)
    return _finish_and_save(ds, refs, policy, target, None, None)


def _build(kind: str, target: Path, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except MedaeError:
        raise
    except Exception as exc:  # highdicom validates with ValueError/TypeError/AttributeError on bad headers
        raise OutputError(
            f"{target}: cannot build the DICOM {kind} from this source ({type(exc).__name__}: {exc}). "
            "Check that the source series is a complete cross-sectional image series."
        ) from exc


def _finish_and_save(
    ds: Any,
    refs: SourceRefs,
    policy: Deidentification,
    target: Path,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> Path:
    if refs.synthesized:
        _drop_source_references(ds)
    elif refs.frame_numbers and refs.plane_positions:
        _refer_to_own_frames(ds, refs)
    finish(ds, policy)
    check_cancel(cancel)
    report(progress, 0.8, "Writing")
    try:
        with atomic_path(target) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write ({exc}). Check that the folder exists and is writable.") from exc
    report(progress, 1.0, "Written")
    return target


def _refer_to_own_frames(ds: Any, refs: SourceRefs) -> None:
    """Points each frame's source reference at the source frame of its slice.

    The builders find a frame's source by its position alone; in a multi-frame file holding several
    stacks at the same positions (two echoes), that is the first stack's frame, not the analysed one's.
    """
    known = [np.array([float(v) for v in p[0].ImagePositionPatient]) for p in refs.plane_positions]
    for group in ds.get("PerFrameFunctionalGroupsSequence", []):
        seq = group.get("PlanePositionSequence")
        if not seq or "DerivationImageSequence" not in group:
            continue
        here = np.array([float(v) for v in seq[0].ImagePositionPatient])
        k = int(np.argmin([np.linalg.norm(here - p) for p in known]))
        for derivation in group.DerivationImageSequence:
            for item in derivation.get("SourceImageSequence", []):
                item.ReferencedFrameNumber = refs.frame_numbers[k]


def _drop_source_references(ds: Any) -> None:
    """Removes references to synthesised source images, which exist in no archive."""
    for keyword in _SOURCE_REFERENCES:
        if keyword in ds:
            delattr(ds, keyword)
    for group in ds.get("PerFrameFunctionalGroupsSequence", []):
        if "DerivationImageSequence" in group:
            for item in group.DerivationImageSequence:
                # Type 2 inside the Derivation Image Macro: present and empty.
                item.SourceImageSequence = []


def _default_window(frames: np.ndarray) -> tuple[float, float]:
    lo, hi = (float(v) for v in np.percentile(frames, [1.0, 99.9]))
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def _code(value: str, scheme: str, meaning: str) -> Any:
    from pydicom.sr.coding import Code

    return Code(value, scheme, meaning)


def _single_line(text: str) -> str:
    # LO values may not hold backslashes (the value separator) or control characters.
    return " ".join(str(text).replace("\\", "/").split())


def _short(text: str, limit: int) -> str:
    return _single_line(text)[:limit]


def _content_label(text: str) -> str:
    """Content Label is a CS: at most 16 of A-Z, 0-9, space and underscore, not ending in either."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in " _") else "_" for c in str(text).upper())
    return cleaned[:16].strip(" _") or "MEDAE"


def _charset(texts: Sequence[str], headers: Sequence = ()) -> dict[str, str]:
    """The character set of what we write: the source's when it is one plain value and our texts are ASCII.

    Otherwise UTF-8 (ISO_IR 192), which encodes any text, ours and the patient and study names copied from
    the source: a source with code extensions (Japanese "ISO 2022 IR 87" after an empty first value, as
    the standard writes it) is refused by the object builders as it is.
    """
    from highdicom import SpecificCharacterSetValues

    source = headers[0].get("SpecificCharacterSet") if headers else None
    # A misspelt term ("ISO_IR100", "ISO-8859-1") that pydicom reads leniently is refused by the builders.
    defined = {v.value for v in SpecificCharacterSetValues}
    plain = source is None or (isinstance(source, str) and not source.startswith("ISO 2022") and source in defined)
    if plain and all(str(t).isascii() for t in texts):
        return {}
    return {"specific_character_set": "ISO_IR 192"}
