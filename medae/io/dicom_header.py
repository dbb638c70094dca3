"""The DICOM header pass: one read of each file up to its pixel data, into plain records.

Each file becomes a ``FileHeader`` (what is common to the file) holding one ``Frame`` per 2D image
(one for a classic single-frame file, one per frame for a multi-frame file). Pixel data is never
read here: ``dcmread(stop_before_pixels=True, specific_tags=...)`` skips every value we do not
need, and the file position where it stops is the pixel data element, remembered so that the pixel
pass can read uncompressed frames straight into the output array.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medae.io import dicom_multiframe
from medae.io.dicom_rawheader import Fallback, read_raw_header
from medae.io.dicom_source import GzipNotDicom, open_dicom

# The tags the header pass keeps; everything else is skipped without being decoded.
HEADER_TAGS = (
    "SpecificCharacterSet",
    "ImageType",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "StudyTime",
    "SeriesTime",
    "AccessionNumber",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyDescription",
    "SeriesDescription",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAge",
    "PatientSex",
    "BodyPartExamined",
    "ContrastBolusAgent",
    "ContrastBolusRoute",
    "ContrastBolusIngredient",
    "ContrastBolusAgentSequence",
    "SliceThickness",
    "SpacingBetweenSlices",
    "EchoTime",
    "EchoNumbers",
    "TriggerTime",
    "DiffusionBValue",
    "DiffusionGradientOrientation",
    "GantryDetectorTilt",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SeriesNumber",
    "AcquisitionNumber",
    "InstanceNumber",
    "ImagesInAcquisition",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "FrameOfReferenceUID",
    "TemporalPositionIdentifier",
    "NumberOfTemporalPositions",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "PixelPaddingValue",
    "PixelPaddingRangeLimit",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "ModalityLUTSequence",
    "SharedFunctionalGroupsSequence",
    "PerFrameFunctionalGroupsSequence",
)

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian: the whole data set is zlib-compressed
_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00008: "FloatPixelData", 0x7FE00009: "DoubleFloatPixelData"}
_PLAUSIBLE_FIRST_GROUPS = {0x0002, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}
# A decimal string written with a comma for its point ("0,4688"), as software set to a European locale writes it.
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*")
# The decimal strings that place the slices and give the values their unit: named when written with a comma.
_DECIMAL_TAGS = (
    "PixelSpacing",
    "ImagerPixelSpacing",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RescaleSlope",
    "RescaleIntercept",
)
# Of those, the ones whose value changes from image to image: quoted, they would make each file's warning its own.
_PER_IMAGE_TAGS = ("ImagePositionPatient", "RescaleSlope", "RescaleIntercept")


class NotDicom(Exception):
    """Internal: the file is not DICOM at all (silently ignored in folders)."""


class Unreadable(Exception):
    """Internal: the file looks like DICOM but cannot be parsed (reported, then skipped).

    Attributes:
        series_uid: The file's SeriesInstanceUID when its header was read ("" when not).
    """

    def __init__(self, message: str, series_uid: str = "") -> None:
        super().__init__(message)
        self.series_uid = series_uid


@dataclass
class Frame:
    """One 2D image: a single-frame file or one frame of a multi-frame file.

    Attributes:
        header: The file it lives in.
        index: 0-based frame number inside a multi-frame file; None for a single-frame file.
        position: ImagePositionPatient (LPS mm) of the first transmitted pixel, or None.
        orientation: ImageOrientationPatient (row cosines then column cosines), or None.
        pixel_spacing: (row spacing, column spacing) in mm: PixelSpacing[0], PixelSpacing[1].
        slope: RescaleSlope.
        intercept: RescaleIntercept.
        keys: Values that may split a series (echo, temporal position, acquisition, stack, ...).
        window: (centre, width) of the first VOI window, or None.
    """

    header: FileHeader
    index: int | None
    position: np.ndarray | None
    orientation: np.ndarray | None
    pixel_spacing: tuple[float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    keys: dict[str, Any] = field(default_factory=dict)
    window: tuple[float, float] | None = None

    @property
    def name(self) -> str:
        """The file (and frame) for messages."""
        base = os.path.basename(self.header.path)
        return base if self.index is None else f"{base} frame {self.index + 1}"


@dataclass
class FileHeader:
    """What the header pass learnt about one file."""

    path: str
    sop_class: str = ""
    modality: str = ""
    transfer_syntax: str = ""
    series_uid: str = ""
    rows: int = 0
    cols: int = 0
    samples: int = 1
    photometric: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0
    n_frames: int = 1
    pixel_tag: int = 0
    pixel_offset: int | None = None
    file_size: int = 0
    image_type: tuple[str, ...] = ()
    padding: tuple[float, float | None] | None = None
    modality_lut: tuple[int, np.ndarray] | None = None
    enhanced: bool = False
    frame_of_reference: str = ""
    # Descriptive fields for the series picker, meta and phi, as plain strings/numbers.
    info: dict[str, Any] = field(default_factory=dict)
    frames: list[Frame] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one uncompressed frame."""
        return self.rows * self.cols * self.samples * self.bits_allocated // 8


def looks_like_dicom(head: bytes) -> tuple[bool, bool]:
    """Sniffs the first 132 bytes.

    Returns:
        (is_dicom, needs_force): Part 10 files have "DICM" at offset 128; files without the preamble
        are accepted only when they start with a plausible group 0002/0008/... element.
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return True, False
    if len(head) < 8:
        return False, False
    group = int.from_bytes(head[0:2], "little")
    if group not in _PLAUSIBLE_FIRST_GROUPS:
        group_be = int.from_bytes(head[0:2], "big")
        if group_be not in _PLAUSIBLE_FIRST_GROUPS or group_be == 0x0002:
            return False, False
    vr = head[4:6]
    if vr.isalpha() and vr.isupper():
        return True, True
    length = int.from_bytes(head[4:8], "little")
    # Implicit VR: the first element of a real header is short.
    return (length < 1024), True


def read_header(path: str) -> FileHeader:
    """Reads one file's header.

    Raises:
        NotDicom: the file is not DICOM.
        Unreadable: the file looks like DICOM but its header cannot be parsed.
    """
    import pydicom

    try:
        fh, size, _gzipped = open_dicom(path, sniff=lambda head: looks_like_dicom(head)[0])
    except GzipNotDicom as exc:
        raise NotDicom(path) from exc
    except OSError as exc:
        raise Unreadable(f"cannot be opened ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise Unreadable(str(exc)) from exc
    with fh:
        try:
            ds, pixel_offset, pixel_tag = read_raw_header(fh, *_tag_tables())
        except (Fallback, RecursionError, ValueError, OverflowError, MemoryError):
            ds = None  # pydicom's reader decides, and reports damage in its own words
        if ds is None:
            fh.seek(0)
            head = fh.read(132)
            is_dicom, force = looks_like_dicom(head)
            if not is_dicom:
                raise NotDicom(path)
            fh.seek(0)
            try:
                ds = pydicom.dcmread(fh, stop_before_pixels=True, force=force, specific_tags=list(HEADER_TAGS))
            except Exception as exc:  # pydicom raises many types on damaged headers
                raise Unreadable(f"damaged header ({type(exc).__name__}: {exc})") from exc
            if not force and len(ds) == 0 and not getattr(ds, "file_meta", None):
                raise Unreadable("no data elements")
            pixel_offset, pixel_tag = _pixel_position(ds, fh)
            if pixel_tag == 0 and str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")) == DEFLATED:
                pixel_tag = _deflated_pixel_tag(fh, force)
        element = b""
        if pixel_offset is not None:
            fh.seek(pixel_offset)
            element = fh.read(12)  # the pixel data element's tag, VR and length
    try:
        h = _header_from_dataset(path, ds, pixel_offset, pixel_tag, size)
    except Unreadable:
        raise  # already says what is wrong
    except Exception as exc:  # pydicom converts values lazily and raises many types on bad ones
        raise Unreadable(f"invalid header values ({type(exc).__name__}: {exc})") from exc
    if pixel_tag == 0 and not h.series_uid and not h.rows and h.sop_class != MEDIA_STORAGE_DIRECTORY:
        # An image object without its series, its size or its pixels: the file ends inside its header.
        raise Unreadable(f"cut short: the file ends after {size} bytes, inside its header")
    # Greyscale only: colour is refused later anyway, and YBR_FULL_422 stores fewer bytes than it says.
    if h.transfer_syntax in NATIVE_SYNTAXES and h.pixel_offset is not None and h.bits_allocated >= 8 and h.samples == 1:
        need = h.pixel_offset + 8 + h.n_frames * h.frame_bytes
        if need > h.file_size:
            raise Unreadable(_short_pixel_data(h, element, need), h.series_uid)
        _check_pixel_length(h, element)
    return h


def _pixel_length(h: FileHeader, element: bytes) -> tuple[int | None, int]:
    """The length the pixel data element declares (None when unknown) and the size of its own tag and length."""
    if len(element) < 12:
        return None, 0
    order = "big" if h.transfer_syntax == "1.2.840.10008.1.2.2" else "little"
    if h.transfer_syntax == "1.2.840.10008.1.2":
        return int.from_bytes(element[4:8], order), 8
    if element[4:6] in (b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN"):
        return int.from_bytes(element[8:12], order), 12
    return int.from_bytes(element[6:8], order), 8


def _short_pixel_data(h: FileHeader, element: bytes, need: int) -> str:
    """Why native pixel data is shorter than the header's size says: a cut file, or a wrong frame count or size.

    A file that holds every byte its pixel data element declares is complete: the header overstates the image.
    """
    length, head = _pixel_length(h, element)
    expected = h.n_frames * h.frame_bytes
    if length is None or length == 0xFFFFFFFF or h.pixel_offset + head + length > h.file_size:
        return f"truncated: {h.file_size} bytes where the pixel data needs {need}"
    if h.n_frames > 1 and h.frame_bytes and length >= h.frame_bytes and length % h.frame_bytes <= 1:
        return (
            f"NumberOfFrames says {h.n_frames} frames but its pixel data, complete, holds {length // h.frame_bytes} "
            f"({length} bytes, {h.frame_bytes} per frame): NumberOfFrames is wrong and the file cannot be read as "
            "it stands; export the series again"
        )
    return (
        f"its pixel data, complete, holds {length} bytes where Rows x Columns x frames ({h.rows} x {h.cols} x "
        f"{h.n_frames}, {h.bits_allocated} bits) need {expected}: the image size in its header is wrong; export the "
        "series again"
    )


def _check_pixel_length(h: FileHeader, element: bytes) -> None:
    """Refuses native pixel data longer than its size by whole rows or columns: Rows or Columns is wrong.

    Read with the header's size, every row would be shifted against the last and the image garbled.
    Less than a row or column over is padding, which some writers leave, and is ignored.
    """
    length, _ = _pixel_length(h, element)
    if length is None:
        return
    expected = h.n_frames * h.frame_bytes
    sample = h.bits_allocated // 8
    # An odd length is padded by one byte to an even one, which a single row or column of 8 bits equals.
    if length == 0xFFFFFFFF or length - expected <= 1 or length - expected < min(h.rows, h.cols) * sample:
        return
    raise Unreadable(
        f"its pixel data holds {length} bytes where Rows x Columns x frames ({h.rows} x {h.cols} x {h.n_frames}, "
        f"{h.bits_allocated} bits) need {expected}: the image size in its header is wrong, and read with it the "
        "image would be garbled; export the series again",
        h.series_uid,
    )


def _pixel_position(ds: Any, fh: Any) -> tuple[int | None, int]:
    """Where pydicom stopped: the pixel data element's offset and tag, if it is there."""
    stop = fh.tell()
    tag_bytes = fh.read(4)
    if len(tag_bytes) < 4:
        return None, 0
    order = "little" if getattr(ds, "original_encoding", (True, True))[1] else "big"
    tag = int.from_bytes(tag_bytes[0:2], order) << 16 | int.from_bytes(tag_bytes[2:4], order)
    return (stop, tag) if tag in _PIXEL_TAGS else (None, 0)


def _deflated_pixel_tag(fh: Any, force: bool) -> int:
    """The pixel data tag of a deflated file (0 when it has none).

    pydicom inflates such a file into memory before parsing, so where it stopped in the file says
    nothing; the whole dataset is read instead (the pixel pass decodes it with pydicom too).
    """
    import pydicom

    fh.seek(0)
    try:
        full = pydicom.dcmread(fh, force=force)
    except Exception as exc:  # pydicom raises many types on damaged data
        raise Unreadable(f"damaged deflated data set ({type(exc).__name__}: {exc})") from exc
    return next((tag for tag in sorted(_PIXEL_TAGS) if tag in full), 0)


@functools.lru_cache(maxsize=1)
def _tag_tables() -> tuple[dict[int, tuple[str, str]], set[int]]:
    """Tag -> (keyword, VR) of the header tags, and the sequence tags only pydicom reads for us."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    wanted, sequences = {}, set()
    for keyword in HEADER_TAGS:
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag)
        if vr == "SQ":
            sequences.add(tag)
        else:
            wanted[tag] = (keyword, vr)
    return wanted, sequences


def _header_from_dataset(path: str, ds: Any, pixel_offset: int | None, pixel_tag: int, size: int) -> FileHeader:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    sop = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""))
    little = getattr(ds, "original_encoding", (True, True))[1]
    if not ts:
        implicit = getattr(ds, "original_encoding", (True, True))[0]
        ts = "1.2.840.10008.1.2" if implicit else ("1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
    h = FileHeader(
        path=path,
        sop_class=sop,
        modality=str(ds.get("Modality", "") or "").strip().upper(),
        transfer_syntax=ts,
        series_uid=str(ds.get("SeriesInstanceUID", "") or "").strip(),
        rows=_int(ds.get("Rows")) or 0,
        cols=_int(ds.get("Columns")) or 0,
        samples=_int(ds.get("SamplesPerPixel")) or 1,
        photometric=str(ds.get("PhotometricInterpretation", "") or "").strip().upper(),
        bits_allocated=_int(ds.get("BitsAllocated")) or 0,
        bits_stored=_int(ds.get("BitsStored")) or _int(ds.get("BitsAllocated")) or 0,
        pixel_representation=_int(ds.get("PixelRepresentation")) or 0,
        n_frames=max(1, _int(ds.get("NumberOfFrames")) or 1),
        file_size=size,
        image_type=tuple(str(v).strip().upper() for v in _multi(ds.get("ImageType"))),
        frame_of_reference=str(ds.get("FrameOfReferenceUID", "") or ""),
    )
    h.pixel_tag, h.pixel_offset = pixel_tag, pixel_offset
    if "PixelPaddingValue" in ds:
        limit = ds.get("PixelPaddingRangeLimit")
        h.padding = (float(_num(ds.PixelPaddingValue)), None if limit is None else float(_num(limit)))
    lut = _modality_lut(ds)
    if lut is not None:
        h.modality_lut = lut
    h.info = _descriptive(ds)
    commas = [name for name in _DECIMAL_TAGS if any(_DECIMAL_COMMA.fullmatch(str(v)) for v in _multi(ds.get(name)))]
    if commas:
        # An example only from a value all images share: the series keeps one warning, not one per file.
        shown = next((name for name in commas if name not in _PER_IMAGE_TAGS), None)
        example = ""
        if shown:
            written = "\\".join(str(v) for v in _multi(ds.get(shown)))
            example = f" ({shown} {written})"
        h.warnings.append(
            f"{', '.join(commas)} written with a comma for the decimal point{example}, which DICOM "
            "does not allow: read with the comma as the decimal point (the software that wrote the files used its "
            "locale's number format)."
        )
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        h.enhanced = True
        h.frames = dicom_multiframe.frames_from_functional_groups(h, ds)
    else:
        h.frames = _classic_frames(h, ds)
    return h


def _classic_frames(h: FileHeader, ds: Any) -> list[Frame]:
    position = _vector(ds.get("ImagePositionPatient"), 3)
    orientation = _vector(ds.get("ImageOrientationPatient"), 6)
    spacing = _vector(ds.get("PixelSpacing"), 2)
    if spacing is None:
        spacing = _vector(ds.get("ImagerPixelSpacing"), 2)
        if spacing is not None:
            note = (
                f"no PixelSpacing: ImagerPixelSpacing ({spacing[0]:g} x {spacing[1]:g} mm, measured at the detector) "
                "was used, so sizes and distances may be off by the geometric magnification."
            )
            if note not in h.warnings:
                h.warnings.append(note)
    keys = {
        "echo_number": _int(_first(ds.get("EchoNumbers"))),
        "echo_time": _float(ds.get("EchoTime")),
        "temporal_position": _int(ds.get("TemporalPositionIdentifier")),
        "acquisition": _int(ds.get("AcquisitionNumber")),
        "trigger_time": _float(ds.get("TriggerTime")),
        "b_value": _float(ds.get("DiffusionBValue")),
        "gradient": gradient_key(_vector(ds.get("DiffusionGradientOrientation"), 3)),
        "image_type": h.image_type,
        "instance": _int(ds.get("InstanceNumber")),
    }
    slope = rescale_value(h, ds, "RescaleSlope")
    intercept = rescale_value(h, ds, "RescaleIntercept")
    window = first_window(ds)
    common = {
        "orientation": orientation,
        "pixel_spacing": None if spacing is None else (float(spacing[0]), float(spacing[1])),
        "slope": 1.0 if slope in (None, 0.0) else slope,
        "intercept": intercept or 0.0,
        "keys": keys,
        "window": window,
    }
    if h.n_frames == 1:
        return [Frame(header=h, index=None, position=position, **common)]
    # A classic multi-frame file (NM, US, RT dose ...): frames share one plane description, so
    # only GridFrameOffsetVector-style stacks could be placed; they are not scans we accept.
    return [Frame(header=h, index=i, position=None, **common) for i in range(h.n_frames)]


def rescale_value(h: FileHeader, item: Any, name: str) -> float | None:
    """RescaleSlope or RescaleIntercept (``name``) of ``item``; None when absent or empty.

    Raises:
        Unreadable: the value is present but no number. Read as 1 or 0, it would shift or scale every value
            without a word (CT in HU off by the intercept). Where a Modality LUT replaces the rescale, the
            value plays no part: it is named in a warning instead.
    """
    value = _first(item.get(name))
    if value is None or not str(value).strip():
        return None
    number = _float(value)
    if number is not None:
        return number
    said = f"{name} {str(value).strip()!r} is not a valid number"
    if h.modality_lut is not None:
        note = f"{said}; it was ignored, as the file's Modality LUT converts its values instead."
        if note not in h.warnings:
            h.warnings.append(note)
        return None
    raise Unreadable(
        f"{said}, so its pixel values cannot be converted to their unit (HU for CT); correct the value (e.g. with "
        "dcmtk's dcmodify) or export the series again",
        h.series_uid,
    )


def first_window(ds: Any) -> tuple[float, float] | None:
    """The first WindowCenter/WindowWidth pair as floats, when both are present and valid."""
    c, w = _float(_first(ds.get("WindowCenter"))), _float(_first(ds.get("WindowWidth")))
    if c is None or w is None:
        return None
    return c, w


def _modality_lut(ds: Any) -> tuple[int, np.ndarray] | None:
    seq = ds.get("ModalityLUTSequence")
    if not seq:
        return None
    item = seq[0]
    desc = _multi(item.get("LUTDescriptor"))
    data = item.get("LUTData")
    if len(desc) < 3 or data is None:
        return None
    first = int(desc[1])
    if isinstance(data, bytes):
        dtype = "<u2" if int(desc[2]) > 8 else "u1"
        table = np.frombuffer(data, dtype=dtype)
    else:
        table = np.asarray(list(_multi(data)), dtype=np.float64)
    entries = int(desc[0]) or 65536
    return first, np.asarray(table[:entries], dtype=np.float64)


def _descriptive(ds: Any) -> dict[str, Any]:
    def text(name: str) -> str:
        value = ds.get(name)
        return "" if value is None else str(value).strip()

    return {
        "study_uid": text("StudyInstanceUID"),
        "sop_instance_uid": text("SOPInstanceUID"),
        "series_number": _int(ds.get("SeriesNumber")),
        "series_description": text("SeriesDescription"),
        "study_description": text("StudyDescription"),
        "body_part": text("BodyPartExamined"),
        "contrast_agent": text("ContrastBolusAgent") or _coded_agent(ds),
        "contrast_route": text("ContrastBolusRoute"),
        "contrast_ingredient": text("ContrastBolusIngredient"),
        "manufacturer": text("Manufacturer"),
        "manufacturer_model": text("ManufacturerModelName"),
        "rescale_type": text("RescaleType"),
        "slice_thickness": _float(ds.get("SliceThickness")),
        "spacing_between_slices": _float(ds.get("SpacingBetweenSlices")),
        "gantry_tilt": _float(ds.get("GantryDetectorTilt")),
        "images_in_acquisition": _int(ds.get("ImagesInAcquisition")),
        "patient_name": text("PatientName"),
        "patient_id": text("PatientID"),
        "patient_birth_date": text("PatientBirthDate"),
        "patient_age": text("PatientAge"),
        "patient_sex": text("PatientSex"),
        "accession_number": text("AccessionNumber"),
        "institution_name": text("InstitutionName"),
        "referring_physician": text("ReferringPhysicianName"),
        "study_date": text("StudyDate"),
        "series_date": text("SeriesDate") or text("AcquisitionDate"),
        "series_time": text("SeriesTime") or text("AcquisitionTime"),
        "study_time": text("StudyTime"),
    }


def _coded_agent(ds: Any) -> str:
    """The agents an enhanced image names in its ContrastBolusAgentSequence ("" when it holds none).

    Enhanced MR and CT objects carry that sequence instead of ContrastBolusAgent when an agent was given.
    """
    items = ds.get("ContrastBolusAgentSequence") or []
    names = [str(item.get("CodeMeaning") or item.get("CodeValue") or "").strip() for item in items]
    if not items:
        return ""
    return ", ".join(n for n in names if n) or "coded, without a name"


def _multi(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, int, float)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _first(value: Any) -> Any:
    items = _multi(value)
    return items[0] if items else None


def _num(value: Any) -> float:
    return float(_first(value))


def _float(value: Any) -> float | None:
    value = _first(value)
    if value is None or value == "":
        return None
    f = _number(value)
    return f if f is not None and np.isfinite(f) else None


def _number(value: Any) -> float | None:
    """A decimal string's value, also when written with a decimal comma; None when it is no number.

    A comma is no character of a DICOM decimal string (PS3.5 6.2), so within one value it can only be the point.
    """
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    if isinstance(value, str) and _DECIMAL_COMMA.fullmatch(value):
        return float(value.replace(",", "."))
    return None


def _int(value: Any) -> int | None:
    f = _float(value)
    return None if f is None else int(round(f))


def _vector(value: Any, n: int) -> np.ndarray | None:
    items = _multi(value)
    if len(items) < n:
        return None
    numbers = [_number(v) for v in items[:n]]
    if any(v is None for v in numbers):
        return None
    vec = np.array(numbers, dtype=np.float64)
    return vec if np.all(np.isfinite(vec)) else None


def gradient_key(direction: np.ndarray | None) -> tuple | None:
    """A diffusion gradient direction as a hashable key (rounded; None without one)."""
    return None if direction is None else tuple(round(float(v), 3) for v in direction)


# Shared with the multi-frame reader.
vector = _vector
as_float = _float
as_int = _int
as_first = _first
