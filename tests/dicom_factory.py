"""Writes synthetic DICOM series from a numpy volume and its affine, for tests and benchmarks.

The volume is in medae's convention: array (i, j, k) = (column, row, slice) and a RAS+ affine. The
factory converts to DICOM's LPS, derives ImageOrientationPatient, PixelSpacing and one
ImagePositionPatient per slice from the affine (a sheared affine gives a tilted gantry), and
stores ``(value - intercept) / slope`` as the pixel values.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

from medae.geometry import LPS_TO_RAS

SOP_BY_MODALITY = {"CT": CTImageStorage, "MR": MRImageStorage}


def lps_geometry(affine: np.ndarray) -> tuple[list[float], tuple[float, float], np.ndarray, np.ndarray]:
    """IOP, (row spacing, column spacing), origin and slice step vector (LPS) of a RAS affine."""
    lps = LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)
    ci, cj = lps[:3, 0], lps[:3, 1]
    col_sp, row_sp = float(np.linalg.norm(ci)), float(np.linalg.norm(cj))
    iop = [*(ci / col_sp), *(cj / row_sp)]
    return [round(float(v), 8) for v in iop], (row_sp, col_sp), lps[:3, 3], lps[:3, 2]


def base_dataset(
    modality: str, sop_class: str, study_uid: str, series_uid: str, rows: int, cols: int, dtype: np.dtype
) -> Dataset:
    """A dataset with the patient/study/series/image-pixel modules filled in."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = "Synthetic^Patient"
    ds.PatientID = "SYN001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.AccessionNumber = "ACC1"
    ds.InstitutionName = "Test Hospital"
    ds.ReferringPhysicianName = "Ref^Doc"
    ds.StudyDate = "20240102"
    ds.SeriesDate = "20240102"
    ds.StudyTime = "101010"
    ds.StudyInstanceUID = study_uid
    ds.StudyID = "1"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[study_uid, "frame-of-reference"])
    ds.StudyDescription = "Synthetic study"
    ds.Manufacturer = "medae-tests"
    ds.BodyPartExamined = "HEAD"
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = dtype.itemsize * 8
    ds.BitsStored = dtype.itemsize * 8
    ds.HighBit = dtype.itemsize * 8 - 1
    ds.PixelRepresentation = 1 if dtype.kind == "i" else 0
    return ds


def write_series(
    folder: str | os.PathLike,
    volume: np.ndarray,
    affine: np.ndarray,
    *,
    modality: str = "CT",
    stored_dtype: np.dtype | type = np.int16,
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = 0.0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    series_number: int = 1,
    description: str = "synthetic",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    shuffle_names: bool = True,
    reverse_instance_numbers: bool = True,
    skip: Sequence[int] = (),
    prefix: str = "",
    transfer_syntax: str | None = None,
    positions: np.ndarray | None = None,
    edit: Callable[[Dataset, int], None] | None = None,
    seed: int = 0,
) -> list[Path]:
    """Writes one single-frame file per slice of ``volume``.

    Args:
        folder: Target folder (created).
        volume: Values (i, j, k) after the modality LUT.
        affine: RAS+ affine of ``volume``; its k column sets the slice positions (shear = tilt).
        stored_dtype: Dtype of the stored pixel values.
        slope: RescaleSlope, one value or one per slice.
        intercept: RescaleIntercept, one value or one per slice.
        shuffle_names: Random file names, so that name order says nothing.
        reverse_instance_numbers: InstanceNumber decreasing along k, so it says nothing either.
        skip: Slice indices not written (a missing slice).
        transfer_syntax: Compress with pydicom's encoders (e.g. RLE Lossless, JPEG 2000 Lossless).
        positions: Override ImagePositionPatient per slice (LPS), e.g. duplicates.
        edit: Called with each dataset and its slice index before saving.

    Returns:
        The paths written, in k order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored_dtype = np.dtype(stored_dtype)
    ni, nj, nk = volume.shape
    iop, (row_sp, col_sp), origin, step = lps_geometry(affine)
    # Parts of one series written by several calls (same series UID) belong to one study unless told otherwise.
    study_uid = study_uid or (generate_uid(entropy_srcs=[series_uid, "study"]) if series_uid else generate_uid())
    series_uid = series_uid or generate_uid()
    # Names depend on the series and prefix, so that two series written into one folder never collide.
    rng = np.random.default_rng([seed, int(series_uid.replace(".", "")[-15:]), len(prefix), *prefix.encode()])
    slopes = np.broadcast_to(np.asarray(slope, dtype=np.float64), (nk,))
    inters = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (nk,))
    paths = []
    for k in range(nk):
        if k in skip:
            continue
        sop = generate_uid()
        ds = base_dataset(
            modality, SOP_BY_MODALITY.get(modality, CTImageStorage), study_uid, series_uid, nj, ni, stored_dtype
        )
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.ImageType = list(image_type)
        ds.InstanceNumber = (nk - k) if reverse_instance_numbers else (k + 1)
        pos = origin + k * step if positions is None else positions[k]
        ds.ImagePositionPatient = [round(float(v), 6) for v in pos]
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [round(row_sp, 6), round(col_sp, 6)]
        ds.SliceThickness = round(float(abs(step @ np.cross(iop[:3], iop[3:]))), 6)
        ds.RescaleSlope = float(slopes[k])
        ds.RescaleIntercept = float(inters[k])
        if modality == "CT":
            ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        stored = np.round((volume[:, :, k].T.astype(np.float64) - inters[k]) / slopes[k])
        ds.PixelData = np.ascontiguousarray(stored.astype(stored_dtype)).tobytes()
        if edit is not None:
            edit(ds, k)
        if transfer_syntax is not None:
            ds.compress(transfer_syntax)
        name = f"{prefix}{rng.integers(0, 10**9):09d}.dcm" if shuffle_names else f"{prefix}slice{k:04d}.dcm"
        path = folder / name
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def write_enhanced(
    path: str | os.PathLike,
    stacks: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    modality: str = "MR",
    slopes: Sequence[float] | None = None,
    intercept: float = 0.0,
    shared_rescale: bool = False,
    shuffle_frames: bool = True,
    stored_dtype: np.dtype | type = np.int16,
    echo_times: Sequence[float] | None = None,
    seed: int = 0,
) -> dict:
    """Writes one enhanced multi-frame file holding one or more stacks.

    Args:
        path: The file to write.
        stacks: (volume (i, j, k), RAS affine) per stack; all of the same (i, j) size.
        slopes: Per-stack RescaleSlope (per-frame functional groups) unless ``shared_rescale``.
        shared_rescale: Put one Pixel Value Transformation in the shared functional groups.
        shuffle_frames: Store frames in random order, so frame order says nothing.
        echo_times: Per-stack EffectiveEchoTime (MR Echo functional group).

    Returns:
        {"order": list of (stack, k) per stored frame}.
    """
    rng = np.random.default_rng(seed)
    stored_dtype = np.dtype(stored_dtype)
    ni, nj = stacks[0][0].shape[:2]
    sop_class = EnhancedMRImageStorage if modality == "MR" else EnhancedCTImageStorage
    ds = base_dataset(modality, sop_class, generate_uid(), generate_uid(), nj, ni, stored_dtype)
    sop = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SOPInstanceUID = sop
    ds.SeriesNumber = 7
    ds.SeriesDescription = "enhanced"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    slopes = list(slopes) if slopes is not None else [1.0] * len(stacks)
    order = [(s, k) for s, (vol, _aff) in enumerate(stacks) for k in range(vol.shape[2])]
    if shuffle_frames:
        order = [order[i] for i in rng.permutation(len(order))]
    shared = Dataset()
    geo0 = lps_geometry(stacks[0][1])
    measures = Dataset()
    measures.PixelSpacing = [round(geo0[1][0], 6), round(geo0[1][1], 6)]
    measures.SliceThickness = 1.0
    shared.PixelMeasuresSequence = DicomSequence([measures])
    if shared_rescale:
        pvt = Dataset()
        pvt.RescaleSlope = slopes[0]
        pvt.RescaleIntercept = intercept
        pvt.RescaleType = "US"
        shared.PixelValueTransformationSequence = DicomSequence([pvt])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    pixels = []
    for s, k in order:
        vol, aff = stacks[s]
        iop, _sp, origin, step = lps_geometry(aff)
        item = Dataset()
        pos = Dataset()
        pos.ImagePositionPatient = [round(float(v), 6) for v in origin + k * step]
        item.PlanePositionSequence = DicomSequence([pos])
        ori = Dataset()
        ori.ImageOrientationPatient = iop
        item.PlaneOrientationSequence = DicomSequence([ori])
        content = Dataset()
        content.StackID = str(s + 1)
        content.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([content])
        if not shared_rescale:
            pvt = Dataset()
            pvt.RescaleSlope = slopes[s]
            pvt.RescaleIntercept = intercept
            pvt.RescaleType = "US"
            item.PixelValueTransformationSequence = DicomSequence([pvt])
        if echo_times is not None:
            echo = Dataset()
            echo.EffectiveEchoTime = echo_times[s]
            item.MREchoSequence = DicomSequence([echo])
        voi = Dataset()
        voi.WindowCenter = 100
        voi.WindowWidth = 200
        item.FrameVOILUTSequence = DicomSequence([voi])
        per_frame.append(item)
        stored = np.round((vol[:, :, k].T.astype(np.float64) - intercept) / slopes[s]).astype(stored_dtype)
        pixels.append(stored)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.NumberOfFrames = len(order)
    ds.PixelData = np.ascontiguousarray(np.stack(pixels)).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return {"order": order}


def axial_affine(
    spacing: tuple[float, float, float] = (0.8, 0.6, 2.5), origin: tuple[float, float, float] = (10.0, -20.0, 30.0)
) -> np.ndarray:
    """A RAS affine for a standard DICOM axial series (i -> L, j -> P, k -> S)."""
    aff = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    aff[:3, 3] = origin
    return aff


def phantom(shape: tuple[int, int, int], seed: int = 0, lo: int = -1000, hi: int = 2000) -> np.ndarray:
    """An int16 volume where every voxel differs, so any misplaced slice or transposition shows."""
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi, size=shape).astype(np.int16)


def read_back(path: str | os.PathLike) -> Dataset:
    """The dataset of a written file (for tests that edit one)."""
    return pydicom.dcmread(path)
