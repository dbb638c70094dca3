"""DICOM results: validity (dciodvfy), read-back with highdicom, geometry, de-identification, atomicity."""

import copy
import shutil
import subprocess
import threading
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from medae import __version__
from medae.errors import CancelledError, OutputError
from medae.geometry import LPS_TO_RAS, reorient, rotation_matrix
from medae.io.dicom_export import write_parametric_map, write_secondary_capture, write_segmentation
from medae.volume import Volume

# Patient data of the test source: long, distinctive strings so that a byte search cannot hit by chance.
PHI = {
    "PatientName": "Quixote^Rosalind",
    "PatientID": "MRN-4471902",
    "PatientBirthDate": "19610817",
    "AccessionNumber": "ACC-88231977",
    "InstitutionName": "Saint Elsewhere Hospital",
    "ReferringPhysicianName": "Hawkeye^Pierce",
    "StudyDate": "20230411",
}
SHAPE = (64, 48, 20)  # (columns, rows, slices)


def make_series(folder: Path, modality: str = "MR", iop=(1, 0, 0, 0, 1, 0), spacing=(0.9, 1.1), dz=2.5):
    """Writes a single-frame series and builds its Volume the way the loader contract says."""
    folder.mkdir(parents=True, exist_ok=True)
    cols, rows, n = SHAPE
    row_dir, col_dir = np.array(iop[:3], float), np.array(iop[3:], float)
    normal = np.cross(row_dir, col_dir)
    origin = np.array([-31.25, 17.5, -44.0])
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    data = np.random.default_rng(3).integers(0, 1200, size=(n, rows, cols)).astype(np.int16)
    sop_class = MRImageStorage if modality == "MR" else CTImageStorage
    files = []
    for k in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = sop_class
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.SOPClassUID = sop_class
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
        ds.PatientSex = "F"
        ds.StudyTime = "101500"
        ds.StudyID = "STUDY-7"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PositionReferenceIndicator = ""
        ds.Modality = modality
        ds.Manufacturer = "ACME"
        ds.SeriesNumber = 3
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.5f}" for v in origin + k * dz * normal]
        ds.PixelSpacing = [spacing[0], spacing[1]]
        ds.SliceThickness = dz
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = data[k].tobytes()
        path = folder / f"im{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(str(path))
    first = np.array(pydicom.dcmread(files[0]).ImagePositionPatient, float)
    last = np.array(pydicom.dcmread(files[-1]).ImagePositionPatient, float)
    affine = np.eye(4)
    affine[:3, 0] = row_dir * spacing[1]
    affine[:3, 1] = col_dir * spacing[0]
    affine[:3, 2] = (last - first) / (n - 1)
    affine[:3, 3] = first
    meta = {
        "source_files": files,
        "series_uid": series,
        "study_uid": study,
        "frame_of_reference_uid": frame,
        "modality": modality,
    }
    phi = {"patient_name": PHI["PatientName"], "patient_id": PHI["PatientID"]}
    return Volume(np.transpose(data, (2, 1, 0)), LPS_TO_RAS @ affine, modality, meta=meta, phi=phi)


OBLIQUE = tuple(rotation_matrix((20, -15, 30))[:, 0]) + tuple(rotation_matrix((20, -15, 30))[:, 1])


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {
        "lps": make_series(root / "lps", modality="CT"),
        "oblique": make_series(root / "oblique", modality="MR", iop=OBLIQUE),
    }


def heatmap_for(volume: Volume) -> Volume:
    values = np.random.default_rng(7).normal(size=volume.shape).astype(np.float32) * 2.5
    return volume.with_array(values)


def labels_for(volume: Volume) -> tuple[Volume, list[str]]:
    labels = np.zeros(volume.shape, np.int32)
    labels[10:20, 10:22, 4:9] = 1
    labels[40:50, 30:40, 12:13] = 2  # a single-slice finding
    labels[5:8, 40:45, 15:19] = 3
    descriptions = ["Left frontal hyperintensity, 4.1 cm3", "Small focus, 0.2 cm3", "Posterior Läsion, 0.9 cm³"]
    return volume.with_array(labels), descriptions


def dciodvfy_errors(path: Path) -> list[str]:
    exe = shutil.which("dciodvfy")
    if exe is None:
        pytest.fail(
            "dciodvfy (DICOM validator) is not installed: run `apt-get install -y dicom3tools` "
            "(installer/setup.sh --test installs it)."
        )
    out = subprocess.run([exe, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]


def source_positions(volume: Volume) -> list[np.ndarray]:
    return [np.array(pydicom.dcmread(f).ImagePositionPatient, float) for f in volume.meta["source_files"]]


def slice_index(position, positions) -> int:
    distances = [np.linalg.norm(np.asarray(position, float) - p) for p in positions]
    k = int(np.argmin(distances))
    assert distances[k] < 1e-4, f"frame at {position} matches no source image position"
    return k


def frame_position(ds, frame_index: int) -> np.ndarray:
    group = ds.PerFrameFunctionalGroupsSequence[frame_index]
    return np.array(group.PlanePositionSequence[0].ImagePositionPatient, float)


# ---------------------------------------------------------------- parametric map


def test_parametric_map_refers_to_gzipped_source_files(sources, tmp_path):
    import gzip

    from medae.io import load

    folder = tmp_path / "gz"
    folder.mkdir()
    for f in sources["lps"].meta["source_files"]:
        (folder / (Path(f).name + ".gz")).write_bytes(gzip.compress(Path(f).read_bytes()))
    source = load(folder)
    assert all(f.endswith(".gz") for f in source.meta["source_files"])
    path = write_parametric_map(heatmap_for(source), source, tmp_path / "map.dcm", units_description="z", keep_phi=True)
    assert dciodvfy_errors(path) == []
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path))
    assert pm.ReferencedSeriesSequence[0].SeriesInstanceUID == source.meta["series_uid"]
    sops = {pydicom.dcmread(f).SOPInstanceUID for f in sources["lps"].meta["source_files"]}
    refs = {
        g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for g in pm.PerFrameFunctionalGroupsSequence
    }
    assert refs == sops


@pytest.mark.parametrize("kind", ["lps", "oblique"])
def test_parametric_map_valid_and_values_at_source_positions(sources, tmp_path, kind):
    source = sources[kind]
    heatmap = heatmap_for(source)
    path = write_parametric_map(
        heatmap, source, tmp_path / "map.dcm", units_description="z-score against healthy scans", keep_phi=True
    )
    assert dciodvfy_errors(path) == []
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path))
    assert int(pm.NumberOfFrames) == SHAPE[2]
    assert pm.FloatPixelData is not None
    frames = pm.pixel_array
    positions = source_positions(source)
    sops = [pydicom.dcmread(f).SOPInstanceUID for f in source.meta["source_files"]]
    seen = set()
    for f in range(SHAPE[2]):
        k = slice_index(frame_position(pm, f), positions)
        seen.add(k)
        np.testing.assert_allclose(frames[f], heatmap.array[:, :, k].T, rtol=0, atol=1e-6)
        ref = pm.PerFrameFunctionalGroupsSequence[f].DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == sops[k]
    assert seen == set(range(SHAPE[2]))
    orientation = pm.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient
    np.testing.assert_allclose(
        [float(v) for v in orientation],
        [float(v) for v in pydicom.dcmread(source.meta["source_files"][0]).ImageOrientationPatient],
    )
    mapping = pm.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert mapping.LUTExplanation == "z-score against healthy scans"
    assert mapping.MeasurementUnitsCodeSequence[0].CodeValue == "1"
    assert mapping.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    assert (mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept) == (1.0, 0.0)
    assert mapping.DoubleFloatRealWorldValueFirstValueMapped == pytest.approx(float(heatmap.array.min()))
    assert mapping.DoubleFloatRealWorldValueLastValueMapped == pytest.approx(float(heatmap.array.max()))
    assert pm.StudyInstanceUID == source.meta["study_uid"]
    assert pm.FrameOfReferenceUID == source.meta["frame_of_reference_uid"]
    assert pm.ReferencedSeriesSequence[0].SeriesInstanceUID == source.meta["series_uid"]


def test_parametric_map_custom_units_and_window(sources, tmp_path):
    source = sources["lps"]
    path = write_parametric_map(
        heatmap_for(source),
        source,
        tmp_path / "map.dcm",
        units_description="Reconstruction error",
        units=("[hnsf'U]", "Hounsfield unit"),
        window=(0.0, 4.0),
        model_id="brain-ct-v2",
        content_label="recon error!",
    )
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    assert shared.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "[hnsf'U]"
    assert float(shared.FrameVOILUTSequence[0].WindowCenter) == pytest.approx(2.0)
    assert float(shared.FrameVOILUTSequence[0].WindowWidth) == pytest.approx(4.0)
    assert "brain-ct-v2" in ds.ContentDescription
    assert ds.ContentLabel == "RECON ERROR"
    assert dciodvfy_errors(path) == []


# ---------------------------------------------------------------- segmentation


@pytest.mark.parametrize("kind", ["lps", "oblique"])
def test_segmentation_valid_segments_and_masks(sources, tmp_path, kind):
    source = sources[kind]
    labels, descriptions = labels_for(source)
    path = write_segmentation(
        labels, source, tmp_path / "seg.dcm", segment_descriptions=descriptions, model_id="brain-mr-v1", keep_phi=True
    )
    assert dciodvfy_errors(path) == []
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "BINARY"
    assert seg.number_of_segments == 3
    for n, text in enumerate(descriptions, start=1):
        item = seg.get_segment_description(n)
        assert item.segment_label == text
        assert item.SegmentDescription == text
        assert item.segmented_property_category.value == "49755003"  # morphologically abnormal structure
        assert item.segmented_property_type.value == "52988006"  # lesion
        algorithm = item.algorithm_identification
        assert algorithm[0].AlgorithmName == "medae"
        assert algorithm[0].AlgorithmVersion == __version__
        assert "brain-mr-v1" in algorithm[0].AlgorithmParameters
    expected = {(k, n) for n in (1, 2, 3) for k in range(SHAPE[2]) if (labels.array[:, :, k] == n).any()}
    assert int(seg.NumberOfFrames) == len(expected)
    positions = source_positions(source)
    sops = [pydicom.dcmread(f).SOPInstanceUID for f in source.meta["source_files"]]
    frames = seg.pixel_array
    found = set()
    for f, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        n = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = slice_index(frame_position(seg, f), positions)
        found.add((k, n))
        np.testing.assert_array_equal(frames[f].astype(bool), labels.array[:, :, k].T == n)
        assert group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID == sops[k]
    assert found == expected
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.meta["series_uid"]


def test_segmentation_rejects_bad_labels(sources, tmp_path):
    source = sources["lps"]
    labels, descriptions = labels_for(source)
    with pytest.raises(OutputError, match="3 segment descriptions"):
        write_segmentation(
            labels.with_array(labels.array * 2),
            source,
            tmp_path / "a.dcm",
            segment_descriptions=descriptions,
            model_id="m",
        )
    with pytest.raises(OutputError, match="no findings"):
        write_segmentation(labels, source, tmp_path / "b.dcm", segment_descriptions=[], model_id="m")
    with pytest.raises(OutputError, match="integers"):
        write_segmentation(
            labels.with_array(labels.array.astype(np.float32)),
            source,
            tmp_path / "c.dcm",
            segment_descriptions=descriptions,
            model_id="m",
        )
    assert not any(tmp_path.iterdir())


# ---------------------------------------------------------------- multi-frame source


def test_enhanced_multiframe_source(sources, tmp_path):
    single = sources["oblique"]
    datasets = [pydicom.dcmread(f) for f in single.meta["source_files"]]
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(datasets, generate_uid(), 5, generate_uid(), 1)
    mf_path = tmp_path / "enhanced.dcm"
    enhanced.save_as(mf_path, enforce_file_format=True)
    mf = pydicom.dcmread(mf_path)
    mf_positions = [frame_position(mf, i) for i in range(int(mf.NumberOfFrames))]
    single_positions = source_positions(single)
    numbers = [slice_index(p, mf_positions) + 1 for p in single_positions]  # frame number of slice k
    source = Volume(single.array, single.affine, "MR", meta={"source_files": [str(mf_path)], "frame_numbers": numbers})
    heatmap = heatmap_for(source)
    out = write_parametric_map(heatmap, source, tmp_path / "map.dcm", units_description="z-score", keep_phi=True)
    assert dciodvfy_errors(out) == []
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(out))
    assert int(pm.NumberOfFrames) == SHAPE[2]
    for f in range(SHAPE[2]):
        k = slice_index(frame_position(pm, f), single_positions)
        np.testing.assert_allclose(pm.pixel_array[f], heatmap.array[:, :, k].T, atol=1e-6)
        ref = pm.PerFrameFunctionalGroupsSequence[f].DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == mf.SOPInstanceUID
        assert int(ref.ReferencedFrameNumber) == numbers[k]
    two_files = Volume(source.array, source.affine, meta=dict(source.meta, source_files=[str(mf_path)] * 2))
    with pytest.raises(OutputError, match="multi-frame"):
        write_parametric_map(heatmap, two_files, tmp_path / "two.dcm", units_description="z-score")


# ---------------------------------------------------------------- secondary capture


def test_secondary_capture_in_source_study(sources, tmp_path):
    source = sources["oblique"]
    rgb = np.random.default_rng(0).integers(0, 256, size=(120, 200, 3), dtype=np.uint8)
    path = write_secondary_capture(rgb, source, tmp_path / "shot.dcm", keep_phi=True, patient_orientation=("L", "P"))
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    np.testing.assert_array_equal(ds.pixel_array, rgb)
    assert ds.StudyInstanceUID == source.meta["study_uid"]
    assert ds.SeriesInstanceUID != source.meta["series_uid"]
    assert list(ds.PatientOrientation) == ["L", "P"]


def test_secondary_capture_without_source_is_a_new_study(tmp_path):
    rgb = np.full((32, 48, 3), 200, np.uint8)
    a = pydicom.dcmread(write_secondary_capture(rgb, None, tmp_path / "a.dcm"))
    b = pydicom.dcmread(write_secondary_capture(rgb, None, tmp_path / "b.dcm"))
    assert dciodvfy_errors(tmp_path / "a.dcm") == []
    assert a.StudyInstanceUID != b.StudyInstanceUID
    assert a.PatientIdentityRemoved == "YES"
    np.testing.assert_array_equal(a.pixel_array, rgb)


@pytest.mark.parametrize(
    "bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32), np.zeros((10, 10, 4), np.uint8)]
)
def test_secondary_capture_rejects_non_rgb(tmp_path, bad):
    with pytest.raises(OutputError, match="uint8 RGB"):
        write_secondary_capture(bad, None, tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_secondary_capture_with_identifying_text_needs_keep_phi(sources, tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(OutputError, match="identifying text"):
        write_secondary_capture(rgb, sources["lps"], tmp_path / "x.dcm", burned_in_annotation=True)
    assert not (tmp_path / "x.dcm").exists()
    path = write_secondary_capture(rgb, sources["lps"], tmp_path / "y.dcm", burned_in_annotation=True, keep_phi=True)
    assert pydicom.dcmread(path).BurnedInAnnotation == "YES"


# ---------------------------------------------------------------- de-identification


def _write_all(source: Volume, folder: Path, **kwargs) -> dict[str, Path]:
    labels, descriptions = labels_for(source)
    rgb = np.zeros((16, 16, 3), np.uint8)
    return {
        "pm": write_parametric_map(heatmap_for(source), source, folder / "pm.dcm", units_description="z", **kwargs),
        "seg": write_segmentation(
            labels, source, folder / "seg.dcm", segment_descriptions=descriptions, model_id="m1", **kwargs
        ),
        "sc": write_secondary_capture(rgb, source, folder / "sc.dcm", **kwargs),
    }


def test_without_keep_phi_no_patient_data_in_the_bytes(sources, tmp_path):
    source = sources["oblique"]
    originals = [pydicom.dcmread(f) for f in source.meta["source_files"]]
    original_uids = {source.meta["study_uid"], source.meta["series_uid"], source.meta["frame_of_reference_uid"]}
    original_uids |= {ds.SOPInstanceUID for ds in originals}
    before = {f: (Path(f).stat().st_mtime_ns, Path(f).read_bytes()) for f in source.meta["source_files"]}
    written = _write_all(source, tmp_path)
    assert {f: (Path(f).stat().st_mtime_ns, Path(f).read_bytes()) for f in before} == before  # sources untouched
    for kind, path in written.items():
        raw = path.read_bytes()
        for keyword, value in PHI.items():
            for part in [value, *value.split("^")]:
                assert part.encode() not in raw, f"{kind}: {keyword} {part!r} leaked"
        for uid in original_uids:
            assert uid.encode() not in raw, f"{kind}: source UID {uid} leaked"
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
        assert str(ds.PatientID).startswith("ANON-")
        assert ds.PatientBirthDate == ""
        assert "InstitutionName" not in ds
        assert "InstanceCreationDate" not in ds
        assert dciodvfy_errors(path) == []


def test_with_keep_phi_patient_data_is_kept(sources, tmp_path):
    source = sources["lps"]
    for kind, path in _write_all(source, tmp_path, keep_phi=True).items():
        raw = path.read_bytes()
        for keyword in ("PatientName", "PatientID", "PatientBirthDate"):
            assert PHI[keyword].encode() in raw, f"{kind}: {keyword} missing with keep_phi"
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == source.meta["study_uid"]
        assert "PatientIdentityRemoved" not in ds


def test_kept_patient_values_that_break_their_vr_are_mended_not_a_failed_export(tmp_path):
    # Sources a PACS export may hold: a name longer than PN allows, a sex spelt out, a date with dashes.
    source = make_series(tmp_path / "src", modality="MR")
    for f in source.meta["source_files"]:
        ds = pydicom.dcmread(f)
        ds.PatientName = "A" * 70 + "^" + "B" * 70
        ds.PatientSex = "MALE"
        ds.PatientBirthDate = "1959-07-23"
        ds.save_as(f, enforce_file_format=True)
    for kind, path in _write_all(source, tmp_path / "out", keep_phi=True).items():
        assert dciodvfy_errors(path) == [], kind
        ds = pydicom.dcmread(path)
        assert (ds.PatientSex, ds.PatientBirthDate) == ("M", "19590723"), kind
        assert len(str(ds.PatientName).split("^")[0]) == 64, kind
    assert pydicom.dcmread(source.meta["source_files"][0]).PatientSex == "MALE"  # the source untouched


def test_pseudonymous_study_is_consistent_and_stable(sources, tmp_path):
    source = sources["lps"]
    first = {k: pydicom.dcmread(p) for k, p in _write_all(source, tmp_path / "1").items()}
    again = {k: pydicom.dcmread(p) for k, p in _write_all(source, tmp_path / "2").items()}
    keyed = {k: pydicom.dcmread(p) for k, p in _write_all(source, tmp_path / "3", pseudonym_key="site secret").items()}
    pm, seg, sc = first["pm"], first["seg"], first["sc"]
    assert pm.StudyInstanceUID == seg.StudyInstanceUID == sc.StudyInstanceUID != source.meta["study_uid"]
    assert pm.PatientID == seg.PatientID == sc.PatientID
    assert pm.FrameOfReferenceUID == seg.FrameOfReferenceUID != source.meta["frame_of_reference_uid"]
    assert pm.ReferencedSeriesSequence[0].SeriesInstanceUID == seg.ReferencedSeriesSequence[0].SeriesInstanceUID
    pm_refs = [
        g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for g in pm.PerFrameFunctionalGroupsSequence
    ]
    seg_refs = {
        g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for g in seg.PerFrameFunctionalGroupsSequence
    }
    assert seg_refs <= set(pm_refs)
    assert len(set(pm_refs)) == SHAPE[2]
    assert again["pm"].StudyInstanceUID == pm.StudyInstanceUID and again["pm"].PatientID == pm.PatientID
    assert again["pm"].SeriesInstanceUID != pm.SeriesInstanceUID  # a new series for every export
    assert keyed["pm"].PatientID != pm.PatientID and keyed["pm"].StudyInstanceUID != pm.StudyInstanceUID


def test_retain_uids_option(sources, tmp_path):
    source = sources["lps"]
    sops = {pydicom.dcmread(f).SOPInstanceUID for f in source.meta["source_files"]}
    paths = _write_all(source, tmp_path, retain_uids=True)
    pm = pydicom.dcmread(paths["pm"])
    assert pm.StudyInstanceUID == source.meta["study_uid"]
    assert pm.FrameOfReferenceUID == source.meta["frame_of_reference_uid"]
    refs = {
        g.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for g in pm.PerFrameFunctionalGroupsSequence
    }
    assert refs == sops
    assert [c.CodeValue for c in pm.DeidentificationMethodCodeSequence] == ["113100", "113110"]
    assert PHI["PatientName"].encode() not in paths["pm"].read_bytes()


# ---------------------------------------------------------------- non-DICOM source


def test_nifti_source_gets_a_new_study_on_its_own_geometry(tmp_path):
    affine = np.eye(4)
    affine[:3, :3] = rotation_matrix((10, 5, -25)) @ np.diag([0.8, 0.8, 3.0])
    affine[:3, 3] = [90.0, -110.0, 40.0]
    source = Volume(np.random.default_rng(1).normal(size=(40, 36, 12)).astype(np.float32), affine, "MR")
    heatmap = heatmap_for(source)
    pm_path = write_parametric_map(heatmap, source, tmp_path / "pm.dcm", units_description="z-score")
    labels = np.zeros(source.shape, np.int16)
    labels[5:9, 6:12, 3:6] = 1
    seg_path = write_segmentation(
        source.with_array(labels), source, tmp_path / "seg.dcm", segment_descriptions=["x"], model_id="m"
    )
    sc_path = write_secondary_capture(np.zeros((8, 8, 3), np.uint8), source, tmp_path / "sc.dcm")
    for path in (pm_path, seg_path, sc_path):
        assert dciodvfy_errors(path) == []
    pm = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(pm_path))
    seg = pydicom.dcmread(seg_path)
    sc = pydicom.dcmread(sc_path)
    assert pm.StudyInstanceUID == seg.StudyInstanceUID == sc.StudyInstanceUID
    assert pm.FrameOfReferenceUID == seg.FrameOfReferenceUID
    assert "ReferencedSeriesSequence" not in pm and "ReferencedSeriesSequence" not in seg
    lps = LPS_TO_RAS @ affine
    expected = [lps[:3, 3] + k * lps[:3, 2] for k in range(source.shape[2])]
    for f in range(int(pm.NumberOfFrames)):
        k = slice_index(frame_position(pm, f), expected)
        np.testing.assert_allclose(pm.pixel_array[f], heatmap.array[:, :, k].T, atol=1e-6)
    again = pydicom.dcmread(write_parametric_map(heatmap, source, tmp_path / "pm2.dcm", units_description="z-score"))
    assert again.StudyInstanceUID == pm.StudyInstanceUID


def test_sheared_nifti_grid_is_refused(tmp_path):
    affine = np.array([[1.0, 0.3, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]])
    source = Volume(np.zeros((8, 8, 4), np.float32), affine)
    with pytest.raises(OutputError, match="sheared"):
        write_parametric_map(source, source, tmp_path / "pm.dcm", units_description="z")
    assert not (tmp_path / "pm.dcm").exists()


# ---------------------------------------------------------------- grid and input errors


def test_result_off_the_source_grid_is_refused(sources, tmp_path):
    source = sources["lps"]
    shifted = Volume(heatmap_for(source).array, source.affine @ np.diag([2.0, 1, 1, 1]))
    with pytest.raises(OutputError, match="not on the source scan's grid"):
        write_parametric_map(shifted, source, tmp_path / "pm.dcm", units_description="z")
    array, affine = reorient(source.array, source.affine, "RAS")
    resampled = Volume(np.ascontiguousarray(array), affine, "CT", meta=dict(source.meta))
    with pytest.raises(OutputError, match="does not lie on the volume's grid"):
        write_parametric_map(
            resampled.with_array(array.astype(np.float32)), resampled, tmp_path / "pm.dcm", units_description="z"
        )
    assert not (tmp_path / "pm.dcm").exists()


def test_nan_heatmap_is_refused(sources, tmp_path):
    source = sources["lps"]
    values = heatmap_for(source).array.copy()
    values[3, 4, 5] = np.nan
    with pytest.raises(OutputError, match="NaN"):
        write_parametric_map(source.with_array(values), source, tmp_path / "pm.dcm", units_description="z")


def test_missing_source_file_is_an_output_error(sources, tmp_path):
    source = sources["lps"]
    meta = dict(source.meta, source_files=[*source.meta["source_files"][:-1], str(tmp_path / "gone.dcm")])
    moved = Volume(source.array, source.affine, "CT", meta=meta)
    with pytest.raises(OutputError, match="gone.dcm"):
        write_parametric_map(heatmap_for(moved), moved, tmp_path / "pm.dcm", units_description="z")


# ---------------------------------------------------------------- atomic output


def test_success_leaves_no_temporary_file(sources, tmp_path):
    source = sources["lps"]
    out = tmp_path / "out"
    _write_all(source, out)
    assert sorted(p.name for p in out.iterdir()) == ["pm.dcm", "sc.dcm", "seg.dcm"]


def test_failing_write_leaves_no_target_and_keeps_an_old_one(sources, tmp_path, monkeypatch):
    source = sources["lps"]

    def broken_save(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", broken_save)
    with pytest.raises(OutputError, match="No space left"):
        write_parametric_map(heatmap_for(source), source, tmp_path / "pm.dcm", units_description="z")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "seg.dcm").write_bytes(b"previous result")
    labels, descriptions = labels_for(source)
    with pytest.raises(OutputError):
        write_segmentation(labels, source, tmp_path / "seg.dcm", segment_descriptions=descriptions, model_id="m")
    assert [p.name for p in tmp_path.iterdir()] == ["seg.dcm"]
    assert (tmp_path / "seg.dcm").read_bytes() == b"previous result"


def test_progress_and_cancel(sources, tmp_path):
    source = sources["lps"]
    seen = []
    write_parametric_map(
        heatmap_for(source), source, tmp_path / "pm.dcm", units_description="z", progress=lambda f, m: seen.append(f)
    )
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    cancel = threading.Event()
    cancel.set()
    labels, descriptions = labels_for(source)
    with pytest.raises(CancelledError):
        write_segmentation(
            labels, source, tmp_path / "seg.dcm", segment_descriptions=descriptions, model_id="m", cancel=cancel
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pm.dcm"]


def test_a_japanese_source_with_code_extensions_exports_in_utf8(sources, tmp_path):
    from medae.io import load

    folder = tmp_path / "jis"
    folder.mkdir()
    name = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    for n, f in enumerate(sources["lps"].meta["source_files"]):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]  # the standard's way to name Japanese with extensions
        ds.PatientName = name
        ds.save_as(folder / f"im{n:03d}.dcm", enforce_file_format=True)
    source = load(folder)
    out = write_parametric_map(heatmap_for(source), source, tmp_path / "map.dcm", units_description="z", keep_phi=True)
    ds = pydicom.dcmread(out)
    assert ds.SpecificCharacterSet == "ISO_IR 192" and str(ds.PatientName) == name


@pytest.mark.parametrize("term", ["ISO_IR100", "ISO-8859-1", "ISO_IR 999"])
def test_a_misspelt_character_set_exports_in_utf8(sources, tmp_path, term):
    import warnings

    from medae.io import load

    folder = tmp_path / "latin"
    folder.mkdir()
    for n, f in enumerate(sources["lps"].meta["source_files"]):
        ds = pydicom.dcmread(f)
        ds.SpecificCharacterSet = term  # not a defined term: pydicom reads it leniently, the builders refuse it
        ds.PatientName = "Muller^Hans"
        ds.save_as(folder / f"im{n:03d}.dcm", enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = load(folder)
        out = write_parametric_map(heatmap_for(source), source, tmp_path / "map.dcm", units_description="z")
    ds = pydicom.dcmread(out)
    assert ds.get("SpecificCharacterSet", "ISO_IR 6") in ("ISO_IR 192", "ISO_IR 6")


def test_orientations_differing_by_rounding_and_over_long_kept_values_still_export(sources, tmp_path):
    import shutil
    import subprocess
    import warnings

    from medae.io import load

    folder = tmp_path / "jitter"
    folder.mkdir()
    for n, f in enumerate(sources["lps"].meta["source_files"]):
        ds = pydicom.dcmread(f)
        iop = [float(v) for v in ds.ImageOrientationPatient]
        iop[1] += 3e-6 * (n % 2)  # the scanner's rounding: one series for the loader, not equal for the builders
        ds.ImageOrientationPatient = [f"{v:.7f}" for v in iop]
        ds.StudyDescription = "x" * 200  # longer than LO allows; kept with --keep-phi, so it must be cut
        ds.AccessionNumber = "A" * 30
        ds.save_as(folder / f"im{n:03d}.dcm", enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = load(folder)
        out = write_parametric_map(
            heatmap_for(source), source, tmp_path / "map.dcm", units_description="z", keep_phi=True
        )
    ds = pydicom.dcmread(out)
    assert len(ds.StudyDescription) <= 64 and len(ds.AccessionNumber) <= 16
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True)
        assert not [ln for ln in (check.stdout + check.stderr).splitlines() if ln.startswith("Error")]


def test_an_enhanced_source_with_its_orientation_in_every_frame_exports(tmp_path):
    from medae.io import load
    from tests.dicom_factory import axial_affine, phantom, write_enhanced

    path = tmp_path / "enh.dcm"
    write_enhanced(path, [(phantom((16, 16, 6)), axial_affine())], shuffle_frames=False)
    ds = pydicom.dcmread(path)
    shared = ds.SharedFunctionalGroupsSequence[0]
    if "PlaneOrientationSequence" in shared:  # move it into every frame's group, as some scanners write it
        for group in ds.PerFrameFunctionalGroupsSequence:
            group.PlaneOrientationSequence = copy.deepcopy(shared.PlaneOrientationSequence)
        del shared.PlaneOrientationSequence
        ds.save_as(path, enforce_file_format=True)
    source = load(path)
    out = write_parametric_map(heatmap_for(source), source, tmp_path / "map.dcm", units_description="z")
    assert int(pydicom.dcmread(out).NumberOfFrames) == 6


def test_an_export_of_one_stack_of_a_two_stack_file_refers_to_that_stacks_frames(tmp_path):
    from medae.io import load, scan
    from tests.dicom_factory import axial_affine, phantom, write_enhanced

    path = tmp_path / "echoes.dcm"
    info = write_enhanced(
        path,
        [(phantom((16, 16, 6), seed=1), axial_affine()), (phantom((16, 16, 6), seed=2), axial_affine())],
        echo_times=[10.0, 80.0],
    )
    second = [n + 1 for n, (stack, _k) in enumerate(info["order"]) if stack == 1]  # frame numbers of echo 2
    part = sorted(s.uid for s in scan(path))[1]
    source = load(path, series=part)
    assert sorted(source.meta["frame_numbers"]) == sorted(second)
    out = write_parametric_map(heatmap_for(source), source, tmp_path / "map.dcm", units_description="z")
    refs = [
        int(item.ReferencedFrameNumber)
        for group in pydicom.dcmread(out).PerFrameFunctionalGroupsSequence
        for derivation in group.DerivationImageSequence
        for item in derivation.SourceImageSequence
    ]
    assert refs and set(refs) <= set(second)  # the builders alone picked the first echo's frames


def test_mending_leaves_several_valued_dates_alone():
    from pydicom.dataset import Dataset

    from medae.io.dicom_export_refs import _mend_values

    ds = Dataset()
    ds.DateOfLastCalibration = ["20240101", "20240202"]
    ds.PatientBirthDate = "1959-07-23"
    _mend_values(ds)
    assert list(ds.DateOfLastCalibration) == ["20240101", "20240202"] and ds.PatientBirthDate == "19590723"
