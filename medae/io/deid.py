"""De-identification of the DICOM objects medae writes (PS3.15 Annex E, Basic Profile).

The policy is an allow-list: the objects medae derives from a source series (Parametric Map,
Segmentation, Secondary Capture) are built from *reference headers* that carry only geometry, image
format, equipment make and pseudonymised identifiers, never the source's full header. Whatever the
source holds beyond that (addresses, physicians, institution, comments, private tags) cannot reach
the output because it is never copied.

Without ``keep_phi`` the Basic Application Level Confidentiality Profile is applied to what we write:

- Patient's Name and ID (Z) become a pseudonym: a keyed hash (HMAC-SHA256) of the patient's ID and
  its issuer, so every object derived from the same patient carries the same pseudonym.
- Birth date, sex, accession number, study ID, referring physician, study date and time (Z) are
  written empty; position reference indicator too.
- Study, series, SOP instance and frame of reference UIDs (U) are replaced by keyed hashes of the
  originals: objects derived from one source stay in one pseudonymous study and frame of reference,
  and their references to the (pseudonymous) source images stay consistent with each other. They no
  longer match the source series in a PACS. ``retain_uids=True`` keeps the original UIDs instead
  (Retain UIDs Option, DCM 113110): use it only when the objects go back next to a source that was
  de-identified with the same UIDs, since a PACS receiving a known study UID with another patient ID
  will refuse or split it.
- Dates and times of our own objects (Z/D): content date and time become a fixed dummy value where
  the IOD requires one, every other date or time is removed.
- Patient Identity Removed = YES, De-identification Method and its code sequence (DCM 113100, plus
  113110 with retained UIDs) are set.

Without a key the pseudonyms and replacement UIDs can be recomputed by anyone who knows the patient's
ID or the source's UIDs (IDs are short, so they can be guessed). A site that shares its outputs sets a
secret in the environment variable ``MEDAE_PSEUDONYM_KEY`` (every writer takes it: DICOM exports,
report.json, batch tables, compressed studies) or passes ``pseudonym_key`` to a writer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

#: Environment variable holding the site's secret for pseudonyms and replacement UIDs.
KEY_VARIABLE = "MEDAE_PSEUDONYM_KEY"
BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")
RETAIN_UIDS_OPTION = ("113110", "DCM", "Retain UIDs Option")
# PS3.15 Annex E "D" action: a dummy value consistent with the VR where a value is required.
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"

# What a reference header may carry from the source, besides the identifiers handled below. Enough
# for highdicom to place frames, describe the source images and name the acquisition equipment.
_KEPT_ROOT = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "ImageType",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
)
# Geometry functional groups of enhanced (multi-frame) sources; the rest may hold dates or free text.
_KEPT_GROUPS = ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence")
_MAPPED_UIDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")
#: Type 2 attributes of the Patient, General Study and Frame of Reference modules: present, empty.
EMPTIED = (
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "PositionReferenceIndicator",
)
# Dates our objects must carry (Type 1 in the Multi-frame Functional Groups module).
_DUMMY_DATES = {"ContentDate": DUMMY_DATE, "ContentTime": DUMMY_TIME}


@dataclass(frozen=True)
class Deidentification:
    """How much of the patient's identity the written objects keep.

    Attributes:
        keep_phi: Write the source's patient and study identification and UIDs unchanged.
        retain_uids: Without ``keep_phi``: keep the source's study, series, instance and frame of
            reference UIDs (Retain UIDs Option) instead of replacing them.
        pseudonym_key: Secret mixed into pseudonyms and replacement UIDs; by default the site's
            (``site_key``), empty when none is set.
    """

    keep_phi: bool = False
    retain_uids: bool = False
    pseudonym_key: bytes = field(default_factory=lambda: site_key())

    @classmethod
    def create(cls, keep_phi: bool, retain_uids: bool, pseudonym_key: str | bytes | None) -> Deidentification:
        """Builds a policy from the writers' keyword arguments (no ``pseudonym_key``: the site's)."""
        if pseudonym_key is None:
            return cls(keep_phi=bool(keep_phi), retain_uids=bool(retain_uids))
        key = pseudonym_key.encode("utf-8") if isinstance(pseudonym_key, str) else pseudonym_key
        return cls(keep_phi=bool(keep_phi), retain_uids=bool(retain_uids), pseudonym_key=key)

    def uid(self, original: str) -> str:
        """The UID written in place of a source UID."""
        if self.keep_phi or self.retain_uids:
            return str(original)
        return keyed_uid(self.pseudonym_key, "uid", str(original))

    def pseudonym(self, patient_id: str, issuer: str = "", fallback: Iterable[str] = ()) -> tuple[str, str]:
        """Patient's Name and Patient ID to write for a patient.

        Args:
            patient_id: The source's Patient ID.
            issuer: Its Issuer of Patient ID, so that equal IDs from two hospitals differ.
            fallback: Other identifying values (name, birth date, study UID) used when the ID is empty.

        Returns:
            (patient_name, patient_id), both ASCII and within their VR's length.
        """
        parts = [patient_id, issuer] if patient_id.strip() else ["no-id", *fallback]
        code = _keyed_hex(self.pseudonym_key, "patient", *parts)[:16].upper()
        return f"ANON^{code}", f"ANON-{code}"


#: A DICOM UID in running text (a warning or an error naming a series or a file named by its UID): three or
#: more dotted groups of digits, also at a sentence's end ("series <UID>.") or in a file name ("MR.<UID>.dcm").
#: The group before it is set where the message calls it a transfer syntax ("transfer syntax <UID>").
_UID_IN_TEXT = re.compile(r"(transfer syntax (?:UID )?)?(?<!\d)(\d+(?:\.\d+){2,})", re.IGNORECASE)


def site_key() -> bytes:
    """The site's secret for pseudonyms (``MEDAE_PSEUDONYM_KEY``), empty when none is set."""
    return os.environ.get(KEY_VARIABLE, "").encode("utf-8", "surrogateescape")


def site_key_id() -> str:
    """Which key pseudonyms are made with, without revealing it: "" when none, else a short keyed digest."""
    key = site_key()
    return _keyed_hex(key, "key-id")[:12] if key else ""


#: The root of the UIDs the DICOM standard itself defines.
STANDARD_UID_ROOT = "1.2.840.10008."


def without_uids(text: str) -> str:
    """``text`` with every DICOM UID in it (16 characters or more) replaced by its pseudonym.

    Kept as they are: the standard's own UIDs, and a UID the text calls a transfer syntax ("transfer syntax <UID>").

    The same mapping as the DICOM exports and report.json's ``series_uid``, so a series keeps one name.
    Apply it once, to the text as written from the source: a pseudonym is a UID too.
    """
    policy = Deidentification()

    def pseudonym(match: re.Match) -> str:
        said, uid = match.group(1) or "", match.group(2)
        # The standard's own UIDs (SOP classes, transfer syntaxes) name no patient and must stay readable, and
        # so must a vendor's private transfer syntax (GE's 1.2.840.113619.5.2): it names an encoding, which the
        # reader needs to find a converter for, never a patient.
        if len(uid) < 16 or uid.startswith(STANDARD_UID_ROOT) or said:
            return said + uid
        return policy.uid(uid)

    return _UID_IN_TEXT.sub(pseudonym, text)


def private_folders(root: str | os.PathLike) -> list[str]:
    """``root`` (a folder, or a file's folder) and every folder under it, longest first.

    Each in every form a message may name it: as given (a relative path stays relative), absolute, and with
    links resolved. Folder names of an archive are often patients' names and IDs (``DOE^JOHN_1234/MR_HEAD``);
    messages name files by their paths, so a de-identified output names them without those folders.
    """
    from medae.io.walk import walk_folders

    start = os.fspath(root)
    if not os.path.isdir(start):
        start = os.path.dirname(start) or "."
    found: set[str] = set()
    for folder in walk_folders(start):
        found.update((folder.rstrip("/\\") or folder, os.path.abspath(folder), os.path.realpath(folder)))
    # "." and "/" name no one, and would match every relative or absolute path.
    return sorted((f for f in found if f not in (".", "..", "/", "")), key=len, reverse=True)


def without_folders(text: str, folders: Iterable[str]) -> str:
    """``text`` with each of ``folders`` (longest first, as :func:`private_folders` gives them) replaced by "…".

    A file keeps its own name ("…/IM0001.dcm"); a folder is replaced only where a path starts and where its
    name ends, so that ``data/p`` touches neither ``data/p2`` nor ``mydata/p``.
    """
    for folder in folders:
        if folder in text:
            # A relative name could be a word of the message ("in"): it counts as a folder only before a
            # separator or a colon ("in/DOE^JOHN/..", "DOE^JOHN: ..").
            ends = r"(?=[/\\:\s)\],;.]|$)" if os.path.isabs(folder) else r"(?=[/\\:])"
            text = re.sub(r"(?<![\w^.~/\\-])" + re.escape(folder) + ends, "\u2026", text)
    return text


def path_token(path: str) -> str:
    """A keyed digest that stands for an input's path in a de-identified output (the same path, the same token)."""
    # A name that is not UTF-8 on disk comes as surrogates: its bytes are what is digested.
    message = ("path\x1f" + path).encode("utf-8", "surrogateescape")
    return "path-" + hmac.new(site_key(), message, hashlib.sha256).hexdigest()[:24]


def keyed_uid(key: bytes, *parts: str) -> str:
    """A deterministic UID under the UUID-derived root 2.25 (PS3.5 B.2) from a keyed hash of ``parts``."""
    digest = bytes.fromhex(_keyed_hex(key, *parts))
    # Name-based UUID (version and variant bits set), so the integer is a valid 2.25 UID component.
    return f"2.25.{uuid.UUID(bytes=digest[:16], version=5).int}"


def _keyed_hex(key: bytes, *parts: str) -> str:
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def reference_header(ds: Dataset, policy: Deidentification) -> Dataset:
    """The de-identified header that stands in for a source image when building derived objects.

    Args:
        ds: The source image header (read without pixel data); not modified.
        policy: What to keep; must not be ``keep_phi`` (then the source header is used as it is).

    Returns:
        A new dataset carrying only the allow-listed attributes, pseudonymised patient fields,
        replaced UIDs and the de-identification marks.
    """
    out = Dataset()
    for keyword in _KEPT_ROOT:
        if keyword in ds:
            out[keyword] = ds[keyword]
    for keyword in _MAPPED_UIDS:
        if keyword in ds:
            setattr(out, keyword, policy.uid(str(ds[keyword].value)))
    for keyword in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if keyword in ds:
            setattr(out, keyword, Sequence([_geometry_groups(item) for item in ds[keyword].value]))
    name, pid = policy.pseudonym(
        str(ds.get("PatientID", "") or ""),
        str(ds.get("IssuerOfPatientID", "") or ""),
        fallback=(
            str(ds.get("PatientName", "") or ""),
            str(ds.get("PatientBirthDate", "") or ""),
            str(ds.get("StudyInstanceUID", "") or ""),
        ),
    )
    out.PatientName = name
    out.PatientID = pid
    for keyword in EMPTIED:
        setattr(out, keyword, "")
    mark_deidentified(out, policy)
    return out


def _geometry_groups(item: Dataset) -> Dataset:
    kept = Dataset()
    for keyword in _KEPT_GROUPS:
        if keyword in item:
            kept[keyword] = item[keyword]
    return kept


def mark_deidentified(ds: Dataset, policy: Deidentification) -> None:
    """Sets Patient Identity Removed and the De-identification Method (code) of the Patient module."""
    ds.PatientIdentityRemoved = "YES"
    methods = [BASIC_PROFILE] + ([RETAIN_UIDS_OPTION] if policy.retain_uids else [])
    ds.DeidentificationMethod = "; ".join(meaning for _, _, meaning in methods)
    items = []
    for value, scheme, meaning in methods:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)


def finish(ds: Dataset, policy: Deidentification) -> None:
    """Applies the profile's date rules and marks to a built object, in place.

    Identifiers were handled by the reference headers; what remains are the dates and times that the
    object builder stamps itself (content, instance creation, capture, contribution dates).
    """
    if policy.keep_phi:
        return
    _strip_dates(ds, top_level=True)
    mark_deidentified(ds, policy)


def _strip_dates(ds: Dataset, top_level: bool) -> None:
    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value:
                _strip_dates(item, top_level=False)
            continue
        if elem.VR not in ("DA", "TM", "DT"):
            continue
        if top_level and elem.keyword in _DUMMY_DATES:
            elem.value = _DUMMY_DATES[elem.keyword]
        elif top_level and elem.keyword in EMPTIED:
            elem.value = ""
        else:
            del ds[elem.tag]
