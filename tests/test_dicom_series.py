"""DICOM discovery and series grouping: folders, splits, localizers, DICOMDIR, damaged files."""

import os
import shutil
import threading

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from medae.errors import CancelledError, InputError, MedaeError, SeriesSelectionError, UnsupportedInputError
from medae.io import load, scan
from medae.io.dicom import load_series, scan_dicom
from medae.io.loader import SeriesInfo
from tests.dicom_factory import axial_affine, phantom, write_enhanced, write_series


def test_two_series_in_one_folder(tmp_path):
    a, b = phantom((6, 5, 4), seed=1), phantom((7, 6, 3), seed=2)
    write_series(tmp_path, a, axial_affine(), series_number=2, description="T1")
    write_series(tmp_path, b, axial_affine((0.5, 0.5, 1.0)), modality="MR", series_number=3, description="T2")
    assert len({s.extra["study_uid"] for s in scan(tmp_path)}) == 2
    infos = sorted(scan(tmp_path), key=lambda s: s.extra["series_number"])  # two studies: any order
    assert [(s.modality, s.description, s.shape, s.n_files) for s in infos] == [
        ("CT", "T1", (6, 5, 4), 4),
        ("MR", "T2", (7, 6, 3), 3),
    ]
    with pytest.raises(SeriesSelectionError, match="2 series"):
        load(tmp_path)
    np.testing.assert_array_equal(load(tmp_path, series=infos[1].uid).array, b)
    extra = infos[0].extra
    assert extra["series_number"] == 2 and extra["patient_name"] == "Synthetic^Patient"
    assert extra["study_uid"] and os.path.isfile(extra["thumbnail_file"])
    assert infos[0].spacing == pytest.approx((0.8, 0.6, 2.5)) and infos[0].orientation == "LPS"


def test_a_whole_series_uid_wins_over_a_longer_one_it_begins(tmp_path):
    a, b = phantom((6, 5, 4), seed=1), phantom((6, 5, 3), seed=2)
    write_series(tmp_path, a, axial_affine(), series_uid="1.2.3.4.100", study_uid="1.2.3.4.5", series_number=2)
    write_series(tmp_path, b, axial_affine(), series_uid="1.2.3.4.1001", study_uid="1.2.3.4.5", series_number=1)
    np.testing.assert_array_equal(load(tmp_path, series="1.2.3.4.100").array, a)
    np.testing.assert_array_equal(load(tmp_path, series="1.2.3.4.1001").array, b)
    with pytest.raises(SeriesSelectionError, match="begins 2 series") as caught:
        load(tmp_path, series="1.2.3.4.10")
    assert "1.2.3.4.100 (" in str(caught.value) and "1.2.3.4.1001 (" in str(caught.value)


def test_a_series_copied_into_a_subfolder_is_read_once_and_other_duplicates_name_their_folders(tmp_path):
    vol = phantom((6, 5, 4), seed=3)
    paths = write_series(tmp_path, vol, axial_affine())
    (tmp_path / "copy").mkdir()
    for p in paths:
        shutil.copy(p, tmp_path / "copy" / p.name)
    (info,) = scan(tmp_path)  # the same images (same SOP Instance UIDs) twice: one series, read once
    assert any("second copies of images already read" in w and "copy/" in w for w in info.warnings), info.warnings
    np.testing.assert_array_equal(load(tmp_path).array, vol)
    for p in paths:  # now other images at the same positions: real duplicates, named with their folder
        ds = pydicom.dcmread(tmp_path / "copy" / p.name)
        ds.SOPInstanceUID = generate_uid()
        ds.save_as(tmp_path / "copy" / p.name)
    with pytest.raises(MedaeError, match="duplicate") as caught:
        load(tmp_path)
    assert any(f"copy/{p.name}" in str(caught.value) for p in paths)


def test_files_that_reuse_one_sop_instance_uid_at_other_positions_are_slices_not_copies(tmp_path):
    def one_uid(ds, k):  # a faulty anonymiser: every image of the series given the same UID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.9999.1"

    vol = phantom((6, 5, 4), seed=5)
    write_series(tmp_path, vol, axial_affine(), edit=one_uid)
    (info,) = scan(tmp_path)
    assert info.shape == (6, 5, 4)
    assert any("reuse the SOP Instance UID" in w for w in info.warnings), info.warnings
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_a_gap_left_by_a_file_without_position_names_that_file(tmp_path):
    def no_position(ds, k):
        if k == 2:
            del ds.ImagePositionPatient

    paths = write_series(tmp_path, phantom((6, 5, 5), seed=4), axial_affine(), edit=no_position)
    with pytest.raises(MedaeError, match="missing slice") as caught:
        load(tmp_path)
    assert paths[2].name in str(caught.value) and "lack ImagePositionPatient" in str(caught.value)
    assert "Restore the missing files" not in str(caught.value)  # nothing is missing: one file is damaged


def test_unevenly_spaced_slices_get_advice_for_that_not_for_missing_files(tmp_path):
    aff = axial_affine((0.8, 0.8, 1.5))
    positions = np.array([aff[:3, 3] + aff[:3, 2] * k + (0, 0, 0.4 if k > 4 else 0) for k in range(8)])
    write_series(tmp_path, phantom((6, 5, 8), seed=2), aff, positions=positions)
    with pytest.raises(MedaeError, match="irregular slice spacing") as caught:
        load(tmp_path)
    assert "resample the series to even spacing" in str(caught.value)
    assert "missing" not in str(caught.value) and "duplicate" not in str(caught.value)


def test_a_gap_acquired_between_slabs_is_not_called_missing_files(tmp_path):
    aff = axial_affine((1.0, 1.0, 1.0))
    # Two slabs 3 mm apart (two slices' worth of gap), numbered without a gap as a scanner numbers them.
    positions = np.array([aff[:3, 3] + aff[:3, 2] * (k if k < 4 else k + 2) for k in range(8)])

    def numbered(ds, k):
        ds.InstanceNumber = k + 1

    write_series(tmp_path, phantom((6, 5, 8), seed=2), aff, positions=positions, edit=numbered)
    with pytest.raises(MedaeError, match="missing slice") as caught:
        load(tmp_path)
    assert "No file is missing" in str(caught.value) and "Resample it to even spacing" in str(caught.value)
    assert "Restore the missing files" not in str(caught.value)


def test_a_gap_inside_one_multi_frame_file_is_not_called_missing_files(tmp_path):
    aff = axial_affine((1.0, 1.0, 2.0))
    write_enhanced(tmp_path / "mf.dcm", [(phantom((6, 5, 8), seed=6).astype(np.float64), aff)], modality="CT")
    ds = pydicom.dcmread(tmp_path / "mf.dcm")
    for item in ds.PerFrameFunctionalGroupsSequence:  # two slabs, one slice's worth apart
        if item.FrameContentSequence[0].InStackPositionNumber > 4:
            position = item.PlanePositionSequence[0]
            position.ImagePositionPatient = [*position.ImagePositionPatient[:2], position.ImagePositionPatient[2] + 2]
    ds.save_as(tmp_path / "mf.dcm")
    with pytest.raises(MedaeError, match="missing slice") as caught:
        load(tmp_path)
    assert "No file is missing" in str(caught.value) and "mf.dcm" in str(caught.value)
    assert "Restore the missing files" not in str(caught.value)


def test_a_gap_left_by_a_damaged_file_names_that_file(tmp_path):
    paths = write_series(tmp_path, phantom((6, 5, 6), seed=3), axial_affine())
    damaged = paths[3]  # a middle slice (the list follows the slice order)
    damaged.write_bytes(damaged.read_bytes()[:-20])  # pixel data cut short
    with pytest.raises(MedaeError, match="missing slice") as caught:
        load(tmp_path)
    assert damaged.name in str(caught.value) and "Copy those files again" in str(caught.value)
    assert "Restore the missing files" not in str(caught.value)


def test_the_parts_of_a_three_plane_localizer_are_named_by_their_plane(tmp_path):
    from medae import geometry

    uid, vol = generate_uid(), phantom((8, 8, 3), seed=4)
    for n, angles in enumerate(((0, 0, 0), (90, 0, 0), (0, 90, 0))):
        aff = np.eye(4)
        aff[:3, :3] = geometry.rotation_matrix(angles) @ np.diag((1.0, 1.0, 5.0))
        # Not flagged LOCALIZER (some scanners write OTHER): listed as a series, its parts must be told apart.
        write_series(
            tmp_path, vol, aff, series_uid=uid, prefix=f"p{n}", description="3-plane loc",
            image_type=("ORIGINAL", "PRIMARY", "OTHER"),
        )  # fmt: skip
    assert sorted(s.description for s in scan(tmp_path)) == [
        "3-plane loc (axial part)",
        "3-plane loc (coronal part)",
        "3-plane loc (sagittal part)",
    ]


def test_orientation_rounding_noise_between_slices_keeps_one_series(tmp_path):
    rng = np.random.default_rng(5)

    def jitter(ds, k):  # as some exports write each slice's direction cosines: about 0.02 degrees of noise
        ds.ImageOrientationPatient = [
            round(float(v), 6) for v in np.array(ds.ImageOrientationPatient, float) + rng.normal(0, 4e-4, 6)
        ]

    vol = phantom((8, 7, 12), seed=6)
    write_series(tmp_path, vol, axial_affine(), edit=jitter)
    (info,) = scan(tmp_path)
    assert info.shape == (8, 7, 12)
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_a_series_that_cannot_be_stacked_is_named_by_its_own_folder(tmp_path):
    folder = tmp_path / "patient" / "series3"
    write_series(folder, phantom((6, 5, 5), seed=7), axial_affine(), skip=[2])
    with pytest.raises(MedaeError, match="missing slice") as caught:
        load(tmp_path)
    assert str(caught.value).startswith(f"{folder}: series ")


def test_meta_and_phi_are_kept_apart(tmp_path):
    write_series(tmp_path, phantom((4, 4, 3)), axial_affine(), description="Head", series_number=5)
    v = load(tmp_path)
    assert v.modality == "CT" and v.source == str(tmp_path)
    m = v.meta
    assert m["format"] == "dicom" and m["series_description"] == "Head" and m["series_number"] == 5
    assert m["window_center"] == 40.0 and m["window_width"] == 400.0
    assert m["study_uid"] and m["series_uid"] and m["frame_of_reference_uid"] and m["sop_class_uid"]
    assert m["body_part"] == "HEAD" and m["manufacturer"] == "medae-tests"
    assert v.phi["patient_name"] == "Synthetic^Patient" and v.phi["patient_id"] == "SYN001"
    assert v.phi["accession_number"] == "ACC1" and v.phi["institution_name"] == "Test Hospital"
    assert v.phi["study_date"] == "20240102" and v.phi["referring_physician"] == "Ref^Doc"
    flat = repr(m)
    assert "Synthetic" not in flat and "SYN001" not in flat and "Test Hospital" not in flat


def test_scout_among_axial_slices_is_left_out(tmp_path):
    vol = phantom((6, 6, 5), seed=4)
    paths = write_series(tmp_path, vol, axial_affine(), shuffle_names=False)
    uid = str(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    scout = np.zeros((4, 4, 4))
    scout[:, :, 0] = 1
    # A lateral scout (sagittal plane) in the same series, and one flagged LOCALIZER.
    sag = np.zeros((4, 4))
    sag[1, 0], sag[2, 1], sag[0, 2], sag[3, 3] = 2.0, -2.0, 1.0, 1.0
    write_series(tmp_path, phantom((6, 6, 1)), sag, series_uid=uid, prefix="scout")
    write_series(
        tmp_path,
        phantom((6, 6, 1)),
        axial_affine(),
        series_uid=uid,
        prefix="loc",
        image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"],
    )
    infos = scan(tmp_path)
    assert len(infos) == 1 and infos[0].shape == (6, 6, 5) and infos[0].n_files == 5
    assert any("localizer" in w.lower() for w in infos[0].warnings)
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_a_single_image_beside_one_stack_is_no_choice_but_is_named(tmp_path):
    vol = phantom((6, 6, 5), seed=4)
    paths = write_series(tmp_path / "same", vol, axial_affine(), modality="MR")
    uid = str(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    # A parallel reference slice of another matrix size in the same series, and a one-image series beside it.
    write_series(tmp_path / "same", phantom((12, 12, 1)), axial_affine((0.5, 0.5, 1)), series_uid=uid, prefix="r")
    write_series(tmp_path / "other", phantom((8, 8, 1)), axial_affine(), modality="MR", description="screen save")
    assert len(scan(tmp_path)) == 3  # all listed
    loaded = load(tmp_path)
    np.testing.assert_array_equal(loaded.array, vol)
    note = next(w for w in loaded.warnings if "single-image" in w)
    assert "2 single-image series or part(s)" in note and "screen save" in note and "--series" in note
    assert str(tmp_path) not in note and uid not in note  # report.json carries the warnings: no path, no UID
    # Two stacks are a choice the user makes, single images or not.
    write_series(tmp_path / "two", phantom((6, 6, 3), seed=5), axial_affine(), modality="MR")
    with pytest.raises(SeriesSelectionError, match="4 series"):
        load(tmp_path)


def test_localizer_only_series_is_not_listed(tmp_path):
    write_series(tmp_path, phantom((6, 6, 1)), axial_affine(), image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    # DICOM was there but no scan: the error says why, for the folder and for one file.
    with pytest.raises(UnsupportedInputError, match="localizer"):
        scan_dicom(tmp_path)
    with pytest.raises(UnsupportedInputError, match="localizer"):
        scan_dicom(next(tmp_path.iterdir()))


@pytest.mark.parametrize("what", ["echo", "orientation", "matrix", "temporal", "patient"])
def test_mixed_series_uid_is_split(tmp_path, what):
    uid = generate_uid()
    vol = phantom((6, 5, 4), seed=5)
    aff = axial_affine()
    write_series(tmp_path, vol, aff, series_uid=uid, modality="MR", edit=lambda ds, k: _set(ds, what, 1))
    other = vol
    aff2 = aff
    if what == "orientation":
        aff2 = np.array([[0, 0, -2.5, 0], [0.8, 0, 0, 0], [0, -0.6, 0, 0], [0, 0, 0, 1.0]])
    if what == "matrix":
        other = phantom((8, 5, 4), seed=6)
    write_series(tmp_path, other, aff2, series_uid=uid, modality="MR", prefix="b", edit=lambda ds, k: _set(ds, what, 2))
    infos = scan(tmp_path)
    assert sorted(s.uid for s in infos) == [uid + ".1", uid + ".2"]
    assert all(s.n_files == 4 for s in infos)
    for s in infos:
        v = load(tmp_path, series=s.uid)
        assert v.shape == s.shape and v.meta["series_uid"] == uid
        assert any("split" in w for w in v.warnings)


def _set(ds, what, n):
    if what == "echo":
        ds.EchoNumbers = n
        ds.EchoTime = 10.0 * n
    elif what == "temporal":
        ds.TemporalPositionIdentifier = n
    elif what == "patient":  # an anonymiser that gave two patients' scans one series UID: never one volume
        ds.PatientID = f"ANON{n}"
        ds.StudyInstanceUID = f"1.2.3.{n}"
        ds.FrameOfReferenceUID = f"1.2.3.{n}.1"


def test_parts_of_a_split_series_are_numbered_in_numeric_order_and_named(tmp_path):
    uid = generate_uid()
    vol = phantom((5, 5, 4), seed=8)
    for t in range(1, 12):  # as text, 10 and 11 would sort between 1 and 2
        write_series(
            tmp_path, vol + t, axial_affine(), series_uid=uid, study_uid=uid + ".9", prefix=f"t{t}_",
            edit=lambda ds, k, t=t: setattr(ds, "TemporalPositionIdentifier", t), description="dynamic",
        )  # fmt: skip
    infos = scan(tmp_path)  # listed in the parts' own order
    assert [s.description for s in infos] == [f"dynamic (time point {t})" for t in range(1, 12)]
    assert [s.uid for s in infos] == [f"{uid}.{n}" for n in range(1, 12)]
    assert load(tmp_path, series=f"{uid}.10").array.min() == vol.min() + 10
    assert any("part 10 (time point 10)" in w for w in infos[9].warnings)


def test_diffusion_directions_at_one_b_value_are_volumes_of_their_own(tmp_path):
    uid = generate_uid()
    vol = phantom((5, 5, 4), seed=9)
    for n, direction in enumerate((None, (1.0, 0.0, 0.0), (0.0, 1.0, 0.0))):

        def edit(ds, k, direction=direction):
            ds.DiffusionBValue = 0.0 if direction is None else 1000.0
            if direction is not None:
                ds.DiffusionGradientOrientation = list(direction)

        write_series(tmp_path, vol + n, axial_affine(), series_uid=uid, prefix=f"d{n}_", edit=edit, description="DWI")
    infos = sorted(scan(tmp_path), key=lambda s: s.uid)
    assert [s.description for s in infos] == [
        "DWI (b=0)",
        "DWI (b=1000, direction (0, 1, 0))",
        "DWI (b=1000, direction (1, 0, 0))",
    ]
    assert all(s.extra["loadable"] and s.shape == (5, 5, 4) for s in infos)
    assert load(tmp_path, series=f"{uid}.3").array.min() == vol.min() + 1


def test_repeated_acquisitions_split_but_disjoint_ones_stay_one_volume(tmp_path):
    uid = generate_uid()
    vol = phantom((5, 5, 6), seed=7)
    write_series(
        tmp_path / "rep", vol, axial_affine(), series_uid=uid, edit=lambda ds, k: setattr(ds, "AcquisitionNumber", 1)
    )
    write_series(
        tmp_path / "rep",
        vol + 1,
        axial_affine(),
        series_uid=uid,
        prefix="b",
        edit=lambda ds, k: setattr(ds, "AcquisitionNumber", 2),
    )
    infos = scan(tmp_path / "rep")
    assert len(infos) == 2 and {s.shape for s in infos} == {(5, 5, 6)}
    assert not any("duplicate" in w for s in infos for w in s.warnings)
    # A step-and-shoot CT: each rotation is an acquisition, together they make one volume.
    uid2 = generate_uid()
    write_series(
        tmp_path / "disjoint",
        vol,
        axial_affine(),
        series_uid=uid2,
        edit=lambda ds, k: setattr(ds, "AcquisitionNumber", 1 + k // 3),
    )
    infos = scan(tmp_path / "disjoint")
    assert len(infos) == 1 and infos[0].shape == (5, 5, 6)
    np.testing.assert_array_equal(load(tmp_path / "disjoint").array, vol)


def test_a_second_acquisition_shifted_by_a_hair_is_split_or_named_as_such(tmp_path):
    from medae.errors import GeometryError

    vol = phantom((5, 5, 8), seed=8)
    shift = np.eye(4)
    shift[2, 3] = 0.02  # of a 2.5 mm step: 0.05 mm, as a scanner repeating a stack may place it
    for acquisitions, folder in (((1, 2), "acq"), ((None, None), "no_key")):
        uid = generate_uid()
        for n, (number, affine) in enumerate(zip(acquisitions, (axial_affine(), axial_affine() @ shift), strict=True)):

            def edit(ds, k, number=number):
                if number is not None:
                    ds.AcquisitionNumber = number

            write_series(tmp_path / folder, vol + n, affine, series_uid=uid, prefix="ab"[n], edit=edit)
    infos = scan(tmp_path / "acq")
    assert len(infos) == 2 and {s.shape for s in infos} == {(5, 5, 8)}
    np.testing.assert_array_equal(load_series(infos[0]).array, vol)
    # Without a key to split by: the positions repeat, no slices are missing.
    (info,) = scan(tmp_path / "no_key")
    with pytest.raises(GeometryError, match="repeat with a tiny offset") as caught:
        load_series(info)
    assert "missing" not in str(caught.value)


def test_dicomdir_is_read_as_a_file_set(tmp_path):
    from pydicom.fileset import FileSet

    src = tmp_path / "src"
    vol = phantom((6, 5, 4), seed=9)
    paths = write_series(src, vol, axial_affine())
    fs = FileSet()
    for p in paths:
        fs.add(pydicom.dcmread(p))
    out = tmp_path / "media"
    fs.write(out)
    infos = scan(out / "DICOMDIR")
    assert len(infos) == 1 and infos[0].n_files == 4
    v = load(out / "DICOMDIR")
    np.testing.assert_array_equal(v.array, vol)
    # The folder holding the DICOMDIR gives the same series (the directory file itself is skipped).
    assert [s.shape for s in scan(out)] == [(6, 5, 4)]
    # A file cut inside its header is named as such, beside the series and alone.
    cut = paths[0]
    cut.write_bytes(cut.read_bytes()[:300])
    with pytest.raises(InputError, match="cut short: the file ends after 300 bytes, inside its header"):
        scan(cut)
    assert any(cut.name in w and "cut short" in w for w in scan(src)[0].warnings)
    # A DICOMDIR cut short (a damaged copy) reads as one without records, or as unreadable when the cut
    # falls inside an element (where it falls depends on the generated UIDs' lengths): the folder is the way in.
    (out / "DICOMDIR").write_bytes((out / "DICOMDIR").read_bytes()[:700])
    with pytest.raises(InputError, match="DICOMDIR that (lists no files|cannot be read).*Open the folder"):
        scan(out / "DICOMDIR")
    assert [s.shape for s in scan(out)] == [(6, 5, 4)]


def test_folder_without_dicom_returns_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.bin").write_bytes(os.urandom(300))
    assert scan_dicom(tmp_path) == []
    with pytest.raises(InputError, match="no scan found"):
        scan(tmp_path)


def test_damaged_and_truncated_files_are_skipped_and_named(tmp_path):
    vol = phantom((6, 6, 5), seed=10)
    paths = write_series(tmp_path, vol, axial_affine(), shuffle_names=False)
    extra = write_series(
        tmp_path / "x", phantom((6, 6, 1)), axial_affine(origin=(10.0, -20.0, 42.5)), series_uid=_uid(paths[0])
    )[0]
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(extra.read_bytes()[:-20])
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(200))
    os.remove(extra)
    infos = scan(tmp_path)
    assert len(infos) == 1 and infos[0].n_files == 5
    text = " ".join(infos[0].warnings)
    assert "truncated.dcm" in text and "garbage.dcm" in text
    np.testing.assert_array_equal(load(tmp_path).array, vol)
    with pytest.raises(InputError, match="truncated"):
        scan_dicom(truncated)


def test_a_frame_count_beyond_the_pixel_data_is_told_from_a_cut_file(tmp_path):
    path = tmp_path / "enh.dcm"
    write_enhanced(path, [(phantom((8, 8, 5)), axial_affine())])
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 6  # the file holds all of its 5 frames
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(
        InputError, match="NumberOfFrames says 6 frames but its pixel data, complete, holds 5"
    ) as caught:
        scan_dicom(path)
    assert "truncated" not in str(caught.value)
    cut = tmp_path / "cut.dcm"
    write_enhanced(cut, [(phantom((8, 8, 5)), axial_affine())])
    cut.write_bytes(cut.read_bytes()[:-100])  # copied in part: the pixel data ends before its declared length
    with pytest.raises(InputError, match="truncated"):
        scan_dicom(cut)


def _uid(path):
    return str(pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_file_without_preamble_is_read(tmp_path):
    vol = phantom((5, 4, 3), seed=11)
    paths = write_series(tmp_path, vol, axial_affine(), shuffle_names=False)
    for p in paths:
        ds = pydicom.dcmread(p)
        raw = p.read_bytes()
        # Drop the preamble and file meta: a bare dataset, as some old archives hold.
        ds.preamble = None
        del ds.file_meta
        ds.save_as(p, enforce_file_format=False, implicit_vr=True, little_endian=True)
        assert p.read_bytes()[128:132] != b"DICM" and raw[128:132] == b"DICM"
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_non_image_objects_are_not_listed(tmp_path):
    import pydicom.data

    write_series(tmp_path, phantom((4, 4, 3)), axial_affine())
    for name in ("rtdose.dcm", "rtstruct.dcm", "test-SR.dcm"):
        src = pydicom.data.get_testdata_file(name)
        (tmp_path / name).write_bytes(open(src, "rb").read())
    infos = scan(tmp_path)
    assert len(infos) == 1 and infos[0].modality == "CT"
    with pytest.raises(UnsupportedInputError, match="RT dose|radiotherapy"):
        scan(tmp_path / "rtdose.dcm")
    with pytest.raises(UnsupportedInputError, match="structured report"):
        load(tmp_path / "test-SR.dcm")


def test_progress_and_cancel(tmp_path):
    write_series(tmp_path, phantom((4, 4, 20)), axial_affine())
    seen = []
    infos = scan_dicom(tmp_path, progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)
    seen.clear()
    load_series(infos[0], progress=lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CancelledError):
        scan_dicom(tmp_path, cancel=stop)
    with pytest.raises(CancelledError):
        load_series(infos[0], cancel=stop)


def test_plain_series_info_is_rescanned(tmp_path):
    vol = phantom((4, 5, 3), seed=12)
    write_series(tmp_path, vol, axial_affine())
    info = scan_dicom(tmp_path)[0]
    plain = SeriesInfo(
        **{k: v for k, v in info.to_json().items() if k not in ("shape", "spacing")},
        shape=info.shape,
        spacing=info.spacing,
    )
    np.testing.assert_array_equal(load_series(plain).array, vol)
    plain.uid = "1.2.3.nothing"
    with pytest.raises(SeriesSelectionError):
        load_series(plain)


def test_read_only_files_load_and_are_untouched(tmp_path):
    vol = phantom((4, 4, 3), seed=13)
    paths = write_series(tmp_path, vol, axial_affine())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths}
    for p in paths:
        p.chmod(0o444)
    np.testing.assert_array_equal(load(tmp_path).array, vol)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in paths} == before


def test_vanished_file_is_a_clear_error(tmp_path):
    paths = write_series(tmp_path, phantom((4, 4, 3)), axial_affine())
    info = scan_dicom(tmp_path)[0]
    os.remove(paths[1])
    with pytest.raises(MedaeError, match=paths[1].name):
        load_series(info)


def test_corrupted_bytes_never_escape_as_other_errors(tmp_path):
    """Random damage to a series: every outcome is a Volume or a MedaeError."""
    vol = phantom((8, 8, 4), seed=14)
    paths = write_series(tmp_path / "good", vol, axial_affine(), shuffle_names=False)
    originals = {p: p.read_bytes() for p in paths}
    rng = np.random.default_rng(1)
    outcomes = set()
    for trial in range(60):
        victim = paths[trial % len(paths)]
        data = bytearray(originals[victim])
        kind = trial % 3
        if kind == 0:  # flip bytes in the header
            for pos in rng.integers(132, min(len(data), 900), size=4):
                data[pos] = int(rng.integers(0, 256))
        elif kind == 1:  # cut the file short
            data = data[: int(rng.integers(0, len(data)))]
        else:  # garbage lengths: overwrite a 4-byte run with 0xFF
            pos = int(rng.integers(132, min(len(data), 900) - 4))
            data[pos : pos + 4] = b"\xff\xff\xff\xff"
        victim.write_bytes(bytes(data))
        try:
            for info in scan_dicom(tmp_path / "good"):
                v = load_series(info)
                assert v.array.ndim == 3 and np.isfinite(v.affine).all()
            outcomes.add("ok")
        except MedaeError:
            outcomes.add("refused")
        victim.write_bytes(originals[victim])
    assert outcomes == {"ok", "refused"}


def test_a_siemens_mosaic_is_named_with_the_way_to_read_it(tmp_path):
    from medae.errors import MedaeError

    vol = phantom((24, 24, 1), seed=4)  # one tiled image per volume, as the scanner writes EPI runs
    write_series(tmp_path, vol, axial_affine(), modality="MR", image_type=("ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"))
    with pytest.raises(MedaeError, match="Siemens mosaic.*dcm2niix"):
        load(tmp_path)


def test_a_slice_of_another_matrix_size_is_named_not_called_missing(tmp_path):
    from medae.errors import GeometryError

    vol = phantom((10, 12, 8), seed=5)

    def smaller(ds, k):
        if k == 4:  # one image resized on export: one row fewer
            ds.Rows = ds.Rows - 1
            ds.PixelData = ds.PixelData[: -ds.Columns * 2]

    write_series(tmp_path, vol, axial_affine(), modality="MR", edit=smaller)
    infos = scan(tmp_path)
    main = max(infos, key=lambda s: s.shape[2])
    with pytest.raises(GeometryError, match="missing slice.*mixes image sizes.*other part"):
        load(tmp_path, series=main.uid)


def test_imager_pixel_spacing_stands_in_for_pixel_spacing_with_a_warning(tmp_path):
    def detector_only(ds, index):
        ds.ImagerPixelSpacing = ds.PixelSpacing
        del ds.PixelSpacing

    write_series(tmp_path, phantom((6, 5, 4)), axial_affine((0.7, 0.7, 2.0)), modality="MR", edit=detector_only)
    (info,) = scan(tmp_path)
    assert info.spacing == pytest.approx((0.7, 0.7, 2.0))
    notes = [w for w in load(tmp_path).warnings if "ImagerPixelSpacing" in w]
    assert len(notes) == 1 and "0.7 x 0.7 mm" in notes[0] and "magnification" in notes[0]


def test_parts_of_one_series_set_apart_by_image_type_are_named_in_words(tmp_path):
    uid = generate_uid()
    vol = phantom((5, 5, 4), seed=9)
    for n, kind in enumerate((("M", "ND"), ("M", "DIS2D"), ("P", "ND"))):
        write_series(
            tmp_path, vol + n, axial_affine(), series_uid=uid, prefix=f"p{n}_", description="SWI", modality="MR",
            image_type=("ORIGINAL", "PRIMARY", *kind),
        )  # fmt: skip
    names = sorted(s.description for s in scan(tmp_path))
    assert names == [
        "SWI (magnitude distortion-corrected (2D))",
        "SWI (magnitude not distortion-corrected)",
        "SWI (phase not distortion-corrected)",
    ]


def test_a_multi_frame_file_with_fewer_frame_groups_than_frames_is_named_inconsistent(tmp_path):
    from tests.dicom_factory import write_enhanced

    path = tmp_path / "enh.dcm"
    write_enhanced(path, [(phantom((8, 8, 5)), axial_affine())])
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[-1]  # NumberOfFrames still says 5
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MedaeError, match="places only 4 of its 5 frames.*export the series again") as caught:
        scan_dicom(path)
    assert "NumberOfFrames says 5, its per-frame functional groups describe 4" in str(caught.value)
    # As many groups as frames, but one frame's group without its position: that frame is named, not the count.
    write_enhanced(path, [(phantom((8, 8, 5)), axial_affine())], shuffle_frames=False)
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[2].PlanePositionSequence
    ds.save_as(path, enforce_file_format=True)
    with pytest.raises(MedaeError, match="places only 4 of its 5 frames") as caught:
        scan_dicom(path)
    assert "frame 3 lacks a position" in str(caught.value) and "disagree" not in str(caught.value)


def test_a_damaged_file_in_a_neighbouring_folder_is_counted_without_its_name(tmp_path):
    # A viewer's export splits a series over capped folders; the last slice, alone in the next, is damaged.
    vol = phantom((8, 8, 6), seed=40)
    paths = write_series(tmp_path / "DICOM" / "00001", vol, axial_affine(), modality="MR", shuffle_names=False)
    (tmp_path / "DICOM" / "00002").mkdir()
    damaged = tmp_path / "DICOM" / "00002" / "Jones_0001.dcm"
    damaged.write_bytes(paths[-1].read_bytes()[:-40])
    paths[-1].unlink()
    (info,) = scan(tmp_path)
    text = " ".join(info.warnings)
    assert "1 DICOM file(s) in a neighbouring folder could not be read" in text and "Jones" not in text


def test_one_folder_of_a_series_spread_over_several_is_named_part_of_it(tmp_path):
    # A viewer's export caps each folder: the first 6 slices in 00001, the last 4 in 00002.
    vol = phantom((8, 8, 10), seed=41)

    def edit(ds, k):
        ds.ImagesInAcquisition = 10

    paths = write_series(tmp_path / "DICOM" / "00001", vol, axial_affine(), modality="MR", edit=edit)
    (tmp_path / "DICOM" / "00002").mkdir()
    for p in sorted(paths, key=lambda p: pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2])[6:]:
        p.rename(tmp_path / "DICOM" / "00002" / p.name)
    (part,) = scan(tmp_path / "DICOM" / "00001")
    assert part.shape == (8, 8, 6)
    assert any("only 6 of the 10 images" in w and "open the folder above" in w for w in part.warnings), part.warnings
    (whole,) = scan(tmp_path / "DICOM")
    assert whole.shape == (8, 8, 10) and not any("ImagesInAcquisition" in w for w in whole.warnings)

    # A series of two acquisitions (CT rotations) counts the images of each.
    def rotations(ds, k):
        ds.ImagesInAcquisition, ds.AcquisitionNumber = 5, 1 + k // 5

    write_series(tmp_path / "rotations", vol, axial_affine(), edit=rotations)
    (both,) = scan(tmp_path / "rotations")
    assert not any("ImagesInAcquisition" in w for w in both.warnings), both.warnings


def test_pixel_data_longer_than_rows_and_columns_need_is_refused_and_padding_is_not(tmp_path):
    vol = phantom((8, 7, 4), seed=11)
    paths = write_series(tmp_path / "wrong", vol, axial_affine())
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.Columns = ds.Columns - 1  # one column short of what the pixel data holds: every row would shift
        ds.save_as(p, enforce_file_format=True)
    with pytest.raises(
        InputError,
        match=r"and 1 more \(its pixel data holds 112 bytes .*need 98: the image size in its header is wrong",
    ):
        scan(tmp_path / "wrong")
    paths = write_series(tmp_path / "padded", vol, axial_affine())
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.PixelData = ds.PixelData + b"\0\0"  # a writer's padding, less than a row
        ds.save_as(p, enforce_file_format=True)
    np.testing.assert_array_equal(load(tmp_path / "padded").array, vol)


def test_an_odd_8_bit_row_padded_to_an_even_length_is_read(tmp_path):
    vol = (phantom((1, 5, 3), seed=12, lo=0, hi=200)).astype(np.uint8)
    paths = write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint8)
    assert len(pydicom.dcmread(paths[0]).PixelData) == 6  # five pixels and the pad byte
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_a_folder_of_a_localizer_and_a_report_names_both(tmp_path):
    """Its one message named the report alone, and the localizer images went unmentioned."""
    from pydicom.dataset import FileMetaDataset

    write_series(tmp_path, phantom((6, 6, 1)), axial_affine(), image_type=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7"
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    sr = pydicom.Dataset()
    sr.file_meta = meta
    sr.SOPClassUID, sr.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    sr.Modality, sr.SeriesInstanceUID, sr.StudyInstanceUID = "SR", "1.2.3.4.9", "1.2.3.4.8"
    sr.save_as(tmp_path / "SR0001.dcm", enforce_file_format=True)
    with pytest.raises(UnsupportedInputError, match=r"SR0001.dcm.*1 localizer \(scout\) image beside it"):
        scan_dicom(tmp_path)
