"""DICOM geometry: slice order, affine and orientation, checked against SimpleITK as an oracle."""

import numpy as np
import pytest
import SimpleITK as sitk

from medae import geometry
from medae.errors import GeometryError
from medae.geometry import LPS_TO_RAS
from medae.io import load, scan
from medae.io.dicom_geometry import stack_geometry
from tests.dicom_factory import axial_affine, phantom, write_series


def _oblique(spacing, angles, origin=(-5.0, 12.0, 40.0)):
    aff = np.eye(4)
    aff[:3, :3] = geometry.rotation_matrix(angles) @ np.diag(spacing)
    aff[:3, 3] = origin
    return aff


def _sagittal(spacing):
    # i -> A (rows run front to back), j -> I (columns run head to foot), k -> L: a typical sagittal.
    aff = np.zeros((4, 4))
    aff[1, 0] = spacing[0]
    aff[2, 1] = -spacing[1]
    aff[0, 2] = -spacing[2]
    aff[:, 3] = [30.0, -80.0, 90.0, 1.0]
    return aff


def _coronal(spacing):
    # i -> L, j -> I, k -> P: k along the DICOM normal (row x column cosines), as sorted.
    aff = np.zeros((4, 4))
    aff[0, 0] = -spacing[0]
    aff[2, 1] = -spacing[1]
    aff[1, 2] = -spacing[2]
    aff[:, 3] = [100.0, -40.0, 120.0, 1.0]
    return aff


CASES = {
    "axial": axial_affine((0.7, 0.45, 2.0)),
    "sagittal": _sagittal((0.9, 0.55, 3.0)),
    "coronal": _coronal((0.6, 0.8, 1.5)),
    "oblique": _oblique((0.75, 0.5, 2.2), (17.0, -11.0, 28.0)),
}


def _sitk_read(folder):
    reader = sitk.ImageSeriesReader()
    ids = reader.GetGDCMSeriesIDs(str(folder))
    assert len(ids) == 1
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder), ids[0]))
    return reader.Execute()


def _sitk_code(img):
    # ITK direction columns are LPS axis directions; convert to RAS and use medae's own naming.
    direction = np.array(img.GetDirection()).reshape(3, 3)
    aff = np.eye(4)
    aff[:3, :3] = LPS_TO_RAS[:3, :3] @ direction @ np.diag(img.GetSpacing())
    return geometry.orientation_code(aff)


@pytest.mark.parametrize("name", sorted(CASES))
def test_geometry_matches_simpleitk(tmp_path, name):
    affine = CASES[name]
    vol = phantom((11, 9, 7), seed=3)
    write_series(tmp_path, vol, affine)
    v = load(tmp_path)
    np.testing.assert_allclose(v.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(v.array, vol)
    assert v.array.dtype == np.int16

    img = _sitk_read(tmp_path)
    ref = sitk.GetArrayFromImage(img).transpose(2, 1, 0)  # (z, y, x) -> (i, j, k)
    assert ref.shape == v.shape
    np.testing.assert_array_equal(ref, v.array)
    assert _sitk_code(img) == v.orientation
    rng = np.random.default_rng(0)
    for ijk in rng.integers(0, np.array(v.shape), size=(20, 3)):
        ours = v.voxel_to_world(ijk[None].astype(float))[0]
        theirs = np.array(img.TransformIndexToPhysicalPoint([int(x) for x in ijk]))
        np.testing.assert_allclose(ours, LPS_TO_RAS[:3, :3] @ theirs, atol=1e-4)
        # And the same voxel value at that world point.
        idx = img.TransformPhysicalPointToIndex(tuple(LPS_TO_RAS[:3, :3] @ ours))
        assert img[idx] == v.array[tuple(ijk)]


def test_anisotropic_pixel_spacing_goes_to_the_right_axes(tmp_path):
    # PixelSpacing = [row spacing, column spacing]: row spacing is the distance between rows (along j).
    write_series(tmp_path, phantom((6, 4, 3)), axial_affine((0.3, 1.7, 4.0)))
    ds_spacing = [float(x) for x in __import__("pydicom").dcmread(next(tmp_path.iterdir())).PixelSpacing]
    assert ds_spacing == pytest.approx([1.7, 0.3])
    v = load(tmp_path)
    assert v.spacing == pytest.approx((0.3, 1.7, 4.0))
    assert v.shape == (6, 4, 3)


def test_order_comes_from_positions_not_names_or_instance_numbers(tmp_path):
    vol = phantom((5, 6, 9), seed=8)
    paths = write_series(tmp_path, vol, axial_affine(), shuffle_names=True, reverse_instance_numbers=True)
    v = load(tmp_path)
    np.testing.assert_array_equal(v.array, vol)
    assert v.meta["source_files"] == [str(p) for p in paths]
    # Descending slice positions give the same grid once sorted along the normal.
    flipped = axial_affine()
    flipped[:3, 2] *= -1
    write_series(tmp_path / "down", vol, flipped, shuffle_names=False, reverse_instance_numbers=False)
    w = load(tmp_path / "down")
    np.testing.assert_array_equal(w.array, vol[:, :, ::-1])
    np.testing.assert_allclose(
        w.voxel_to_world(np.array([[1.0, 2.0, 8.0]])), [[*flipped[:3, :3] @ [1, 2, 0] + flipped[:3, 3]]]
    )


def test_gantry_tilt_gives_exact_sheared_affine(tmp_path):
    affine = axial_affine((0.5, 0.5, 2.0))
    tilt = np.radians(15.0)
    affine[1, 2] = 2.0 * np.tan(tilt)  # each slice shifts anteriorly: a gantry tilted about the x axis
    vol = phantom((8, 8, 6), seed=2)
    paths = write_series(tmp_path, vol, affine)
    info = scan(tmp_path)[0]
    assert any("tilt" in w for w in info.warnings)
    # Listed as acquired: 2 mm between the slice planes, not the 2.07 mm each slice steps along its tilt.
    assert info.spacing == pytest.approx((0.5, 0.5, 2.0))
    v = load(tmp_path)
    assert any("15.00 degrees" in w for w in v.warnings)
    np.testing.assert_array_equal(v.array, vol)
    import pydicom

    for k, p in enumerate(paths):
        ipp = np.array([float(x) for x in pydicom.dcmread(p).ImagePositionPatient])
        np.testing.assert_allclose(v.voxel_to_world(np.array([[0.0, 0.0, k]]))[0], LPS_TO_RAS[:3, :3] @ ipp, atol=1e-5)
    np.testing.assert_allclose(v.affine, affine, atol=1e-5)
    assert v.meta["gantry_tilt_deg"] == pytest.approx(15.0, abs=0.01)


def test_missing_slice_warns_in_scan_and_refuses_to_stack(tmp_path):
    paths = write_series(tmp_path, phantom((4, 4, 8)), axial_affine(), skip=[4], shuffle_names=False)
    info = scan(tmp_path)[0]
    text = " ".join(info.warnings)
    assert "1 missing slice" in text and paths[3].name in text and paths[4].name in text
    with pytest.raises(GeometryError, match="missing slice") as err:
        load(tmp_path)
    assert paths[3].name in str(err.value) and str(tmp_path) in str(err.value)


def test_duplicate_positions_refuse_to_stack(tmp_path):
    vol = phantom((4, 4, 5))
    aff = axial_affine()
    paths = write_series(tmp_path, vol, aff, shuffle_names=False)
    series, study = _uids_of(paths[0])
    write_series(tmp_path, vol[:, :, :1], aff, series_uid=series, study_uid=study, prefix="dup", shuffle_names=False)
    info = scan(tmp_path)[0]
    assert any("duplicate" in w for w in info.warnings)
    with pytest.raises(GeometryError, match="duplicate"):
        load(tmp_path)


def _uids_of(path):
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.SeriesInstanceUID), str(ds.StudyInstanceUID)


def test_stack_geometry_tolerances_and_messages():
    iop = np.array([1.0, 0, 0, 0, 1, 0])
    names = [f"f{k}" for k in range(6)]
    z = np.array([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    pos = np.c_[np.zeros(6), np.zeros(6), z]
    ok = stack_geometry(pos[::-1], iop, (0.5, 0.5), names[::-1])
    assert not ok.problems and ok.step == pytest.approx(2.0)
    jitter = pos.copy()
    jitter[3, 2] += 0.01  # 0.5 % of the step: tolerated
    assert not stack_geometry(jitter, iop, (0.5, 0.5), names).problems
    irregular = pos.copy()
    irregular[3, 2] += 0.3  # 15 %: irregular, named
    g = stack_geometry(irregular, iop, (0.5, 0.5), names)
    assert g.problems and "irregular" in g.problems[0] and "f2 and f3" in g.problems[0]
    gap = np.delete(pos, [2, 3], axis=0)
    g = stack_geometry(gap, iop, (0.5, 0.5), [n for i, n in enumerate(names) if i not in (2, 3)])
    assert "2 missing slice(s)" in g.problems[0] and "f1 and f4" in g.problems[0]
    offline = pos.copy()
    offline[2, 0] += 3.0
    assert any("not on one line" in p for p in stack_geometry(offline, iop, (0.5, 0.5), names).problems)
    single = stack_geometry(pos[:1], iop, (0.5, 0.5), names[:1], fallback_step=3.0)
    assert single.step == 3.0 and not single.problems
    np.testing.assert_allclose(single.affine[:3, 2], [0, 0, 3.0])


@pytest.mark.parametrize("decimals", [1, 2, 3])
def test_an_oblique_stack_written_with_few_decimals_is_regular(decimals):
    rot = geometry.rotation_matrix((20.0, 10.0, 0.0))
    iop = np.r_[rot[:, 0], rot[:, 1]]
    normal = rot[:, 2]
    names = [f"f{k}" for k in range(120)]
    exact = np.array([12.345, -98.765, 43.21]) + np.outer(np.arange(120) * 1.0, normal)
    written = np.round(exact, decimals)  # as an exporter writes ImagePositionPatient
    g = stack_geometry(written, iop, (1.0, 1.0), names)
    assert not g.problems and g.tilt_deg == 0.0 and not g.warnings, (g.problems, g.warnings)
    assert g.step == pytest.approx(1.0, abs=0.002)  # end to end: the rounding does not add up
    # A real irregularity well above the rounding is still caught.
    moved = written.copy()
    moved[60:] += 0.3 * normal
    assert any("irregular" in p for p in stack_geometry(moved, iop, (1.0, 1.0), names).problems)


def _with_decimal_commas(path, tags):
    """Rewrites the decimal strings ``tags`` of an explicit-VR little-endian file with commas for their points."""
    data = bytearray(path.read_bytes())
    for group, element in tags:
        at = data.index(group.to_bytes(2, "little") + element.to_bytes(2, "little") + b"DS")
        length = int.from_bytes(data[at + 6 : at + 8], "little")
        data[at + 8 : at + 8 + length] = data[at + 8 : at + 8 + length].replace(b".", b",")
    path.write_bytes(bytes(data))


def test_decimal_strings_written_with_a_decimal_comma_are_read_and_named(tmp_path):
    # Software set to a European locale writes "0,75" where DICOM needs "0.75": before, the pixels were taken
    # as 1 mm and the rescale ignored (values off by the intercept) without a word.
    aff = axial_affine((0.75, 0.75, 2.5))
    vol = phantom((6, 5, 4), seed=8)
    for path in write_series(tmp_path, vol, aff, slope=0.5, intercept=-1024.5):
        _with_decimal_commas(path, [(0x0028, 0x0030), (0x0028, 0x1053), (0x0028, 0x1052)])
    (info,) = scan(tmp_path)
    assert any("comma for the decimal point" in w and "PixelSpacing 0,75" in w for w in info.warnings), info.warnings
    v = load(tmp_path)
    np.testing.assert_allclose(v.affine, aff, atol=1e-6)
    np.testing.assert_array_equal(v.array, vol)


def test_a_rescale_value_that_is_no_number_is_refused_not_taken_as_zero(tmp_path):
    from medae.errors import InputError
    from medae.io.dicom import scan_dicom

    paths = write_series(tmp_path, phantom((6, 5, 3), seed=9), axial_affine(), intercept=-1024.0)
    for path in paths:  # "-1o24": a letter for a digit, as a hand-edited or faulty header holds it
        data = path.read_bytes()
        path.write_bytes(data.replace(b"-1024", b"-1o24", 1))
    # Read as 0, every CT value would be 1024 HU too high without a word.
    with pytest.raises(InputError, match="RescaleIntercept '-1o24.*' is not a valid number.*export the series again"):
        scan_dicom(tmp_path)


def test_positions_written_with_a_decimal_comma_are_one_warning_for_the_series(tmp_path):
    # Each file's warning quoted its own ImagePositionPatient, so a series of 300 slices carried 300 warnings.
    aff = axial_affine((1.0, 1.0, 2.5))
    aff[:3, 3] = [-100.25, -90.5, -40.75]
    for path in write_series(tmp_path, phantom((6, 5, 8), seed=8), aff):
        _with_decimal_commas(path, [(0x0020, 0x0032)])
    (info,) = scan(tmp_path)
    said = [w for w in info.warnings if "comma for the decimal point" in w]
    assert len(said) == 1 and "ImagePositionPatient" in said[0], info.warnings
    np.testing.assert_allclose(load(tmp_path).affine, aff, atol=1e-6)
