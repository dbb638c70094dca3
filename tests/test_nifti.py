import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medae.errors import InputError
from medae.io import load, scan
from medae.io.nifti import load_nifti, save_nifti
from medae.volume import Volume


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_round_trip_exact(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    arr = (rng.normal(size=(7, 8, 9)) * 100).astype(dtype)
    aff = np.array([[-0.9, 0.1, 0, 90.5], [0.05, 0.95, 0.02, -120.25], [0, 0, 3.3, -60], [0, 0, 0, 1]])
    path = save_nifti(Volume(arr, aff), tmp_path / f"x{suffix}")
    back = load_nifti(path)
    assert back.array.dtype == arr.dtype
    np.testing.assert_array_equal(back.array, arr)
    np.testing.assert_allclose(back.affine, aff, atol=1e-5)


def test_scaling_applied(tmp_path):
    img = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    img.header.set_slope_inter(2.0, -10.0)
    nib.save(img, tmp_path / "s.nii")
    v = load_nifti(tmp_path / "s.nii")
    assert v.array[1, 2, 3] == pytest.approx(23 * 2 - 10)


def test_sform_preferred_over_qform(tmp_path):
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), None)
    img.set_qform(np.diag([2, 2, 2, 1]), code=1)
    img.set_sform(np.diag([3, 3, 3, 1]), code=2)
    nib.save(img, tmp_path / "q.nii")
    assert load_nifti(tmp_path / "q.nii").spacing == pytest.approx((3, 3, 3))


def _with_raw_geometry(tmp_path, name, sform=None, qform=None, zooms=None):
    """A file whose header fields are written as given, degenerate or not (nibabel would refuse to set them)."""
    h = nib.Nifti1Header()
    if qform is not None:
        h.set_qform(qform, code=1)
    if zooms is not None:  # the qform's voxel sizes live in pixdim too
        h["pixdim"][1:4] = zooms
    if sform is not None:
        h["sform_code"] = 2
        h["srow_x"], h["srow_y"], h["srow_z"] = np.asarray(sform, np.float32)[:3]
    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 4), None, header=h), path)
    raw = nib.load(path).header
    assert raw["sform_code"] == (2 if sform is not None else 0) and raw["qform_code"] == (1 if qform is not None else 0)
    return path


def test_degenerate_sform_falls_back_to_the_qform_then_to_the_voxel_sizes(tmp_path):
    good = np.array([[-1.1, 0, 0, 90], [0, -1.1, 0, 100], [0, 0, 1.5, -70], [0, 0, 0, 1]])
    broken = good.copy()
    broken[:, 2] = 0  # a zero column: no slice direction
    v = load_nifti(_with_raw_geometry(tmp_path, "q.nii", sform=broken, qform=good))
    np.testing.assert_allclose(v.affine, good, atol=1e-5)
    assert any("qform was used" in w for w in v.warnings)
    (info,) = scan(tmp_path / "q.nii")  # the listing shows the geometry loading uses, and says why
    np.testing.assert_allclose(info.spacing, (1.1, 1.1, 1.5), atol=1e-5)
    assert any("qform was used" in w for w in info.warnings)
    v = load_nifti(_with_raw_geometry(tmp_path, "z.nii", sform=broken, zooms=(0.9, 0.9, 3.0)))
    np.testing.assert_allclose(v.affine, np.diag([0.9, 0.9, 3.0, 1.0]), atol=1e-6)
    assert any("voxel sizes (0.9, 0.9, 3 mm)" in w and "left and right may be swapped" in w for w in v.warnings)
    # Zero voxel sizes are read as 1 mm (nibabel's repair), and said.
    v = load_nifti(_with_raw_geometry(tmp_path, "n.nii", sform=broken, zooms=(0.0, 0.0, 0.0)))
    np.testing.assert_array_equal(v.affine, np.eye(4))
    assert any("voxel sizes (1, 1, 1 mm)" in w for w in v.warnings)
    # A valid sform is still the file's own choice; that its qform places the scan elsewhere is said.
    v = load_nifti(_with_raw_geometry(tmp_path, "ok.nii", sform=good, qform=np.diag([2.0, 2.0, 2.0, 1.0])))
    np.testing.assert_allclose(v.affine, good, atol=1e-5)
    assert len(v.warnings) == 1 and "used the sform" in v.warnings[0]


def test_files_without_orientation_say_what_was_assumed(tmp_path):
    import nibabel as nib

    arr = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    nib.save(nib.AnalyzeImage(arr, np.diag([1.1, 1.1, 1.5, 1.0])), tmp_path / "old.img")
    v = load_nifti(tmp_path / "old.hdr")
    assert any("Analyze files (.hdr/.img) store no orientation" in w and "LAS" in w for w in v.warnings), v.warnings
    np.testing.assert_array_equal(v.array, arr)
    # A NIfTI file with both codes 0 is the same case.
    v = load_nifti(_with_raw_geometry(tmp_path, "none.nii", zooms=(1.0, 1.0, 2.0)))
    assert any("qform and sform codes are 0" in w for w in v.warnings), v.warnings
    # One code set: the file's orientation is trusted, no warning.
    v = load_nifti(_with_raw_geometry(tmp_path, "q.nii", qform=np.diag([1.0, 1.0, 2.0, 1.0])))
    assert not v.warnings


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_zero_voxel_size_under_a_qform_is_a_warning(tmp_path, suffix):
    import struct

    plain = _with_raw_geometry(tmp_path, "zero.nii", qform=np.diag([1.0, 1.0, 2.0, 1.0]))
    raw = bytearray(plain.read_bytes())
    struct.pack_into("<f", raw, 88, 0.0)  # pixdim[3]: the slice axis has no size
    path = tmp_path / f"zero{suffix}"
    path.write_bytes(gzip.compress(bytes(raw)) if suffix == ".nii.gz" else bytes(raw))
    v = load_nifti(path)
    assert any("voxel size (pixdim) is 0 along k" in w for w in v.warnings), v.warnings
    struct.pack_into("<f", raw, 80, -1.0)  # pixdim[1]: a negative size, which tools read in different ways
    struct.pack_into("<f", raw, 88, 2.0)
    negative = tmp_path / f"negative{suffix}"
    negative.write_bytes(gzip.compress(bytes(raw)) if suffix == ".nii.gz" else bytes(raw))
    v = load_nifti(negative)
    assert v.spacing == pytest.approx((1.0, 1.0, 2.0))
    assert len(v.warnings) == 1 and "voxel size (pixdim) is negative along i" in v.warnings[0], v.warnings
    ok = load_nifti(_with_raw_geometry(tmp_path, "q.nii", qform=np.diag([1.0, 1.0, 2.0, 1.0])))
    assert not ok.warnings


@pytest.mark.parametrize("suffix", [".mgz", ".mgh"])
def test_freesurfer_mgh_reads_with_its_geometry(tmp_path, suffix):
    # FreeSurfer's MGH stores voxel -> RAS itself: no orientation warning, and a folder lists it as a scan.
    rng = np.random.default_rng(2)
    arr = (rng.normal(size=(6, 7, 8)) * 100).astype(np.float32)
    aff = np.array([[-1.0, 0, 0, 90.0], [0, 0, 1.2, -100.0], [0, -1.1, 0, 110.0], [0, 0, 0, 1]])
    nib.save(nib.MGHImage(arr, aff), tmp_path / f"brain{suffix}")
    v = load(tmp_path / f"brain{suffix}")
    np.testing.assert_array_equal(v.array, arr)
    np.testing.assert_allclose(v.affine, aff, atol=1e-5)
    assert v.meta["format"] == "mgh" and v.warnings == []
    assert [s.kind for s in scan(tmp_path)] == ["nifti"]
    # Its goodRASFlag at 0, the file stores no geometry: the default nibabel puts in is said, as for NIfTI.
    raw = (tmp_path / f"brain{suffix}").read_bytes()
    raw = gzip.decompress(raw) if suffix == ".mgz" else raw
    flagless = raw[:28] + (0).to_bytes(2, "big") + raw[30:]
    (tmp_path / f"brain{suffix}").write_bytes(gzip.compress(flagless) if suffix == ".mgz" else flagless)
    for found in (load(tmp_path / f"brain{suffix}"), scan(tmp_path / f"brain{suffix}")[0]):
        assert any("goodRASFlag is 0" in w and "FreeSurfer's default" in w for w in found.warnings), found.warnings


def test_analyze_pair_is_listed_once(tmp_path):
    nib.save(nib.AnalyzeImage(np.zeros((4, 5, 6), np.int16), np.eye(4)), tmp_path / "pair.img")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair.hdr", "pair.img"]
    assert [s.description for s in scan(tmp_path)] == ["pair.hdr"]
    assert load(tmp_path).shape == (4, 5, 6)


def test_broken_mgz_is_a_clear_error(tmp_path):
    (tmp_path / "x.mgz").write_bytes(b"x" * 100)
    with pytest.raises(InputError, match="not a readable MGH file"):
        load(tmp_path / "x.mgz")


def test_4d_needs_index(tmp_path):
    data = np.stack([np.full((2, 3, 4), i, np.int16) for i in range(3)], axis=-1)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "f.nii.gz")
    with pytest.raises(InputError, match="--volume"):
        load(tmp_path / "f.nii.gz")
    assert load(tmp_path / "f.nii.gz", volume_index=2).array.max() == 2
    with pytest.raises(InputError, match="out of range"):
        load_nifti(tmp_path / "f.nii.gz", index=3)


def test_nan_reported_and_replaced(tmp_path):
    data = np.ones((3, 3, 3), np.float32)
    data[0, 0, 0] = np.nan
    data[1, 1, 1] = np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "n.nii")
    v = load_nifti(tmp_path / "n.nii")
    assert np.isfinite(v.array).all() and any("NaN" in w for w in v.warnings)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    save_nifti(
        Volume(np.random.default_rng(0).normal(size=(30, 30, 30)).astype(np.float32), np.eye(4)), tmp_path / "t.nii.gz"
    )
    raw = (tmp_path / "t.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="truncated"):
        load_nifti(tmp_path / "cut.nii.gz")
    (tmp_path / "junk.nii").write_bytes(gzip.compress(b"hello"))
    with pytest.raises(InputError):
        load_nifti(tmp_path / "junk.nii")


def test_ct_modality_guess(tmp_path):
    arr = np.full((10, 10, 10), -1000, np.int16)
    arr[3:7, 3:7, 3:7] = 1200
    save_nifti(Volume(arr, np.eye(4)), tmp_path / "ct.nii.gz")
    assert load_nifti(tmp_path / "ct.nii.gz").modality == "CT"


def test_nibabel_bundled_data_loads_or_raises_medae_error():
    """Every file in nibabel's own test data (NIfTI, Analyze, CIFTI, its DICOM samples) is a Volume or a
    MedaeError, nothing else; so is each of its data folders loaded as a whole."""
    from pathlib import Path

    import nibabel.nicom.tests
    import nibabel.tests

    from medae.errors import MedaeError, SeriesSelectionError

    data_dirs = [Path(m.__file__).parent / "data" for m in (nibabel.tests, nibabel.nicom.tests)]
    files = [p for d in data_dirs for p in sorted(d.iterdir()) if p.is_file()]
    assert len(files) > 50
    loaded = {"nifti": 0, "dicom": 0}
    for p in [*files, *data_dirs]:
        try:
            v = load(p, volume_index=0)
        except SeriesSelectionError:
            assert p.is_dir()
            continue
        except MedaeError:
            continue
        assert v.array.ndim == 3 and v.affine.shape == (4, 4)
        assert np.isfinite(v.affine).all() and min(v.spacing) > 0
        loaded["dicom" if v.meta.get("format") == "dicom" else "nifti"] += 1
    assert loaded["nifti"] >= 5 and loaded["dicom"] >= 3


def test_parallel_gzip_is_one_valid_member_in_order():
    import io

    from medae.io.gzip_parallel import write_gzip

    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 4, n, dtype=np.uint8).tobytes() for n in (5000, 1, 300000, 0, 70000)]
    buf = io.BytesIO()
    assert write_gzip(buf, parts, threads=3) == sum(len(p) for p in parts)
    assert gzip.decompress(buf.getvalue()) == b"".join(parts)
    empty = io.BytesIO()
    write_gzip(empty, [])
    assert gzip.decompress(empty.getvalue()) == b""


@pytest.mark.parametrize("order", ["C", "F"])
def test_nii_gz_written_in_parallel_reads_back_everywhere(tmp_path, order):
    import subprocess

    import SimpleITK as sitk

    rng = np.random.default_rng(4)
    # Large enough for several compressed chunks, with an oblique affine.
    arr = np.array(rng.normal(size=(48, 40, 1200)).astype(np.float32), order=order)
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[0.0, -1.0, 0.0], [c, 0.0, -s], [s, 0.0, c]])  # oblique, axes at right angles (ITK asks)
    aff = np.eye(4)
    aff[:3, :3], aff[:3, 3] = rotation @ np.diag([1.1, 0.9, 1.3]), (20.0, -30.0, 5.0)
    path = save_nifti(Volume(arr, aff, "MR", {"kind": "heatmap"}), tmp_path / "map.nii.gz")
    img = nib.load(path)
    assert np.array_equal(np.asarray(img.dataobj), arr)
    assert np.allclose(img.affine, aff, atol=1e-5)
    assert img.header.get_xyzt_units()[0] == "mm"
    back = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)
    assert np.array_equal(back, arr)
    if shutil.which("gzip"):
        assert subprocess.run(["gzip", "-t", str(path)]).returncode == 0


def test_an_sform_and_qform_that_disagree_are_named(tmp_path):
    aff = np.diag([-1.0, 1.0, 1.5, 1.0])
    aff[:3, 3] = (80.0, -100.0, -60.0)
    moved = aff.copy()
    moved[:3, 3] += (0.0, 0.0, 130.0)
    data = np.zeros((6, 7, 8), np.int16)
    for name, qform in (("same", aff), ("apart", moved)):
        img = nib.Nifti1Image(data, None)
        img.set_sform(aff, code=2)
        img.set_qform(qform, code=1)
        nib.save(img, tmp_path / f"{name}.nii.gz")
    assert not any("qform" in w for w in load_nifti(tmp_path / "same.nii.gz").warnings)
    v = load_nifti(tmp_path / "apart.nii.gz")
    assert np.allclose(v.affine, aff)  # the sform, as nibabel and FSL read it
    (note,) = [w for w in v.warnings if "qform" in w]
    assert "130 mm apart" in note and "used the sform" in note


def test_a_2d_file_with_both_transforms_reads_as_one_slice(tmp_path):
    aff = np.diag([0.9, 0.9, 5.0, 1.0])
    img = nib.Nifti1Image(np.arange(64 * 48, dtype=np.int16).reshape(64, 48), aff)
    img.set_qform(aff, code=1)
    img.set_sform(aff, code=1)
    nib.save(img, tmp_path / "slice.nii.gz")
    v = load_nifti(tmp_path / "slice.nii.gz")
    assert v.shape == (64, 48, 1) and np.allclose(v.affine, aff)


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_dimension_beyond_nifti1_is_written_as_nifti2(tmp_path, suffix):
    aff = np.diag([0.5, 0.7, 2.0, 1.0])
    arr = np.arange(40000 * 2, dtype=np.int16).reshape(40000, 2, 1)
    path = save_nifti(Volume(arr, aff, "MR"), tmp_path / f"long{suffix}")
    img = nib.load(path)
    assert isinstance(img, nib.Nifti2Image)
    assert np.array_equal(np.asanyarray(img.dataobj), arr) and np.allclose(img.affine, aff)


def test_distances_in_metres_are_read_in_millimetres(tmp_path):
    aff = np.diag([-1.1, 1.1, 1.5, 1.0])
    aff[:3, 3] = (90.0, -120.0, -70.0)
    metres = aff.copy()
    metres[:3, :] /= 1000.0
    img = nib.Nifti1Image(np.zeros((6, 7, 8), np.int16), metres)
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "m.nii.gz")
    v = load_nifti(tmp_path / "m.nii.gz")
    np.testing.assert_allclose(v.affine, aff, atol=1e-6)
    assert any("distances in meters" in w for w in v.warnings)
    # A result on that grid is written back in metres: the same header numbers as the file it lies over.
    save_nifti(v.with_array(np.ones((6, 7, 8), np.float32)), tmp_path / "heat.nii.gz")
    out = nib.load(tmp_path / "heat.nii.gz")
    np.testing.assert_allclose(out.affine, metres, atol=1e-9)
    assert out.header.get_xyzt_units()[0] == "meter"


def test_a_file_of_nan_only_is_refused_as_such_and_nibabel_repairs_stay_off_the_console(tmp_path, capfd):
    nib.save(nib.Nifti1Image(np.full((6, 7, 8), np.nan, np.float32), np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="every voxel is NaN or infinite"):
        load_nifti(tmp_path / "nan.nii.gz")
    img = nib.Nifti1Image(np.arange(336, dtype=np.int16).reshape(6, 7, 8), None)
    img.header["pixdim"][1:4] = 0
    nib.save(img, tmp_path / "zero.nii")
    capfd.readouterr()
    v = load_nifti(tmp_path / "zero.nii")
    assert any("voxel size (pixdim) is 0" in w for w in v.warnings)
    assert "pixdim" not in capfd.readouterr().err  # said once, in medae's own warnings


def test_other_header_repairs_are_warnings_and_the_logger_is_restored_after_threads(tmp_path, capfd):
    import threading

    from nibabel.imageglobals import logger

    img = nib.Nifti1Image(np.arange(336, dtype=np.int16).reshape(6, 7, 8), np.eye(4))
    img.header["qform_code"] = 7  # not a valid code: nibabel sets it to 0 as it reads the header
    nib.save(img, tmp_path / "code.nii")
    handlers, propagate = list(logger.handlers), logger.propagate
    capfd.readouterr()
    results = []
    threads = [threading.Thread(target=lambda: results.append(load_nifti(tmp_path / "code.nii"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(
        any("nibabel repaired the file's header" in w and "qform_code" in w for w in v.warnings) for v in results
    )
    assert "qform_code" not in capfd.readouterr().err
    assert list(logger.handlers) == handlers and logger.propagate == propagate


def test_an_spm_mat_beside_an_analyze_file_gives_its_orientation_without_a_warning(tmp_path):
    aff = np.diag([-1.1, 1.1, 1.5, 1.0])
    aff[:3, 3] = (90.0, -120.0, -70.0)
    nib.save(nib.Spm2AnalyzeImage(np.zeros((6, 7, 8), np.int16), aff), tmp_path / "spm.img")
    assert (tmp_path / "spm.mat").is_file()
    v = load_nifti(tmp_path / "spm.hdr")
    np.testing.assert_allclose(v.affine, aff, atol=1e-5)
    assert not any("store no orientation" in w for w in v.warnings), v.warnings


@pytest.mark.parametrize("written,named", [(".nii", "scan.nii.gz"), (".nii.gz", "scan.nii"), (".mgz", "scan.mgh")])
def test_a_file_whose_name_says_the_other_compression_is_read_by_its_content(tmp_path, written, named):
    data = np.arange(6 * 7 * 8, dtype=np.int16).reshape(6, 7, 8)
    aff = np.diag([1.0, 1.5, 2.0, 1.0])
    img = nib.MGHImage(data.astype(np.int32), aff) if written == ".mgz" else nib.Nifti1Image(data, aff)
    nib.save(img, tmp_path / f"t{written}")
    (tmp_path / f"t{written}").rename(tmp_path / named)
    v = load_nifti(tmp_path / named)
    np.testing.assert_array_equal(v.array, data)
    np.testing.assert_allclose(v.affine, aff)
    assert any("unlike what its name says" in w for w in v.warnings)


def test_complex_data_is_flagged_when_listed_and_refused_when_loaded(tmp_path):
    from medae.io.nifti import nifti_info

    path = tmp_path / "phase.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8), np.complex64), np.eye(4)), path)
    assert any("complex or structured voxel data" in w for w in nifti_info(path).warnings)
    with pytest.raises(InputError, match="complex numbers.*Save their magnitude"):
        load_nifti(path)
    rgb = np.zeros((6, 7, 8), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "render.nii.gz")
    with pytest.raises(InputError, match=r"colours \(RGB\), not the grey values.*Open the scan itself"):
        load_nifti(tmp_path / "render.nii.gz")


def test_a_file_shorter_than_its_header_says_is_one_line_that_names_both_causes(tmp_path):
    path = tmp_path / "cut.nii"
    nib.save(nib.Nifti1Image(np.ones((6, 7, 8), np.float32), np.eye(4)), path)
    whole = path.read_bytes()
    from medae.io.nifti import nifti_info

    assert not nifti_info(path).warnings
    path.write_bytes(whole[: len(whole) - 6 * 7 * 8])  # a quarter of the voxel data cut off
    assert any("lacks 25% of the voxel data" in w for w in nifti_info(path).warnings)  # seen when listed too
    with pytest.raises(InputError, match="fewer voxels than its header's dimensions say.*cut short") as err:
        load_nifti(path)
    assert "\n" not in str(err.value) and "could the file be damaged" not in str(err.value)


def test_the_outputs_of_an_earlier_analysis_in_the_folder_are_not_listed_as_scans(tmp_path):
    import json

    scan_vol = Volume(np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8), np.eye(4), "MR")
    save_nifti(scan_vol, tmp_path / "t1.nii.gz")
    out = tmp_path / "t1_results"
    out.mkdir()
    for name in ("heatmap.nii.gz", "findings.nii.gz", "not_ours.nii.gz"):
        save_nifti(scan_vol, out / name)
    files = {"heatmap": "heatmap.nii.gz", "findings": "findings.nii.gz", "report": "report.json"}
    (out / "report.json").write_text(json.dumps({"score": 1.0, "files": files}))
    assert sorted(Path(s.source).name for s in scan(tmp_path)) == ["not_ours.nii.gz", "t1.nii.gz"]
    (out / "not_ours.nii.gz").unlink()
    np.testing.assert_array_equal(load(tmp_path).array, scan_vol.array)  # one scan: no --series to ask


def test_a_gzipped_file_under_a_plain_name_is_not_called_short(tmp_path):
    from medae.io.nifti import nifti_info

    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), np.eye(4)), tmp_path / "scan.nii.gz")
    (tmp_path / "scan.nii.gz").rename(tmp_path / "scan.nii")  # compressed, but named as if not
    assert not [w for w in nifti_info(tmp_path / "scan.nii").warnings if "lacks" in w]


def test_a_sheared_grid_is_written_without_a_qform_that_would_move_it(tmp_path):
    tilt = np.deg2rad(25)
    aff = np.array([[-1.0, 0, 0, 90], [0, -1.0, 2 * np.tan(tilt), 120], [0, 0, 2.0, -60], [0, 0, 0, 1]])
    path = save_nifti(Volume(np.zeros((8, 9, 10), np.int16), aff), tmp_path / "tilted.nii.gz")
    header = nib.load(path).header
    assert int(header["qform_code"]) == 0 and int(header["sform_code"]) == 1
    np.testing.assert_allclose(header.get_sform(), aff, atol=1e-5)
    back = load_nifti(path)
    np.testing.assert_allclose(back.affine, aff, atol=1e-5)
    assert not any("apart" in w for w in back.warnings)  # no disagreement of two transforms to report
    nearly = np.diag([0.9, 0.9, 1.0, 1.0])
    nearly[0, 1] = 2e-4  # rounding in ImageOrientationPatient: the nearest rotation is off by far under 0.1 mm
    header = nib.load(save_nifti(Volume(np.zeros((8, 9, 10), np.int16), nearly), tmp_path / "round.nii")).header
    assert int(header["qform_code"]) == int(header["sform_code"]) == 1  # ITK-based tools still read it


def test_an_oblique_grid_keeps_both_transforms_equal(tmp_path):
    c, s = np.cos(0.4), np.sin(0.4)
    aff = np.array([[c, -s, 0, 10], [s, c, 0, -20], [0, 0, 1.5, 30], [0, 0, 0, 1]]) @ np.diag([0.9, 0.9, 1, 1])
    header = nib.load(save_nifti(Volume(np.zeros((4, 5, 6), np.float32), aff), tmp_path / "oblique.nii")).header
    assert int(header["qform_code"]) == int(header["sform_code"]) == 1
    np.testing.assert_allclose(header.get_qform(), aff, atol=1e-5)
    np.testing.assert_allclose(header.get_sform(), aff, atol=1e-5)


@pytest.mark.parametrize("code", [2, 4])
def test_a_result_keeps_the_space_its_scan_is_in(tmp_path, code):
    img = nib.Nifti1Image(np.ones((4, 5, 6), np.int16), None)
    img.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=code)  # aligned to another scan, or in MNI space
    img.set_qform(None, code=0)
    nib.save(img, tmp_path / "mni.nii")
    scan = load_nifti(tmp_path / "mni.nii")
    assert scan.meta["nifti_space_code"] == code
    written = save_nifti(
        Volume(np.zeros(scan.shape, np.float32), scan.affine, meta=dict(scan.meta)), tmp_path / "h.nii"
    )
    header = nib.load(written).header
    assert int(header["sform_code"]) == int(header["qform_code"]) == code
    plain = load_nifti(save_nifti(Volume(np.zeros((2, 2, 2), np.int16), np.eye(4)), tmp_path / "p.nii"))
    assert "nifti_space_code" not in plain.meta  # scanner space is the default and needs no note


def test_a_header_asking_for_more_memory_than_exists_says_so(tmp_path):
    header = nib.Nifti1Header()
    header.set_data_shape((30000, 30000, 30000))
    header.set_data_dtype(np.int16)
    path = tmp_path / "huge.nii.gz"
    with gzip.open(path, "wb") as fh:  # a header and a few voxels: the dimensions are wrong
        fh.write(header.binaryblock + b"\0" * 4 + b"\0" * 1000)
    with pytest.raises(InputError, match=r"30000 x 30000 x 30000\) ask for 50,291.4 GiB.*header is wrong"):
        load_nifti(path)


def test_a_header_without_its_voxel_file_says_which_file_is_missing(tmp_path):
    nib.save(nib.Nifti1Pair(np.ones((8, 8, 8), np.int16), np.eye(4)), tmp_path / "t1.hdr")
    (tmp_path / "t1.img").unlink()
    (info,) = scan(tmp_path / "t1.hdr")
    assert any("voxel data file t1.img that this header needs is missing" in w for w in info.warnings)
    with pytest.raises(InputError, match="t1.img that this header needs is missing beside it: copy it"):
        load_nifti(tmp_path / "t1.hdr")


def test_a_header_in_metres_with_fine_voxels_keeps_its_orientation(tmp_path):
    aff = np.diag([-0.0009, 0.0009, 0.0009, 1.0])  # 0.9 mm voxels in metres: a determinant of 7e-10
    aff[:3, 3] = (0.09, -0.12, -0.07)
    img = nib.Nifti1Image(np.ones((6, 7, 8), np.int16), aff)
    img.set_sform(aff, code=4)
    img.header.set_xyzt_units("meter")
    nib.save(img, tmp_path / "m.nii.gz")
    v = load_nifti(tmp_path / "m.nii.gz")
    np.testing.assert_allclose(v.affine[:3, :3], np.diag([-0.9, 0.9, 0.9]), atol=1e-6)
    assert v.orientation == "LAS" and v.meta["nifti_space_code"] == 4
    assert not any("orientation" in w for w in v.warnings), v.warnings
    (info,) = scan(tmp_path / "m.nii.gz")
    assert info.orientation == "LAS" and not info.warnings


def test_series_must_name_a_series_of_the_input(tmp_path):
    from medae.errors import SeriesSelectionError
    from medae.io import load

    inside, outside = tmp_path / "in", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    vol = Volume(np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4), np.eye(4), "MR")
    save_nifti(vol, inside / "a.nii.gz")
    save_nifti(vol, inside / "b.nii.gz")
    save_nifti(vol, outside / "c.nii.gz")
    assert load(inside, series=str(inside / "b.nii.gz")).shape == (6, 5, 4)  # a file of the folder: its series
    with pytest.raises(SeriesSelectionError, match="not a series of"):
        load(inside, series=str(outside / "c.nii.gz"))  # a file elsewhere is not analysed in its place
    assert load(inside / "a.nii.gz", series=str(inside / "a.nii.gz")).shape == (6, 5, 4)
    with pytest.raises(SeriesSelectionError, match="does not name"):
        load(inside / "a.nii.gz", series="1.2.3.4")  # a file holds one series: a wrong choice is not ignored
    # Behind a linked folder (a DataLad or git-annex dataset), every series the scan lists loads.
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "linked").symlink_to(outside, target_is_directory=True)
    for info in scan(tmp_path / "study"):
        assert load(tmp_path / "study", series=info.uid).shape == (6, 5, 4)


def test_a_sidecar_beside_the_file_gives_its_acquisition_facts(tmp_path):
    import json

    vol = Volume(np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4), np.eye(4), "MR")
    save_nifti(vol, tmp_path / "scan.nii.gz")
    (tmp_path / "scan.json").write_text(
        json.dumps({"SeriesDescription": "T1 MPRAGE POST GAD", "ContrastBolusAgent": "Gadovist", "EchoTime": 0.003})
    )
    meta = load(tmp_path / "scan.nii.gz").meta
    assert meta["contrast_agent"] == "Gadovist" and meta["sidecar_description"] == "T1 MPRAGE POST GAD"
    (tmp_path / "scan.json").write_text("[not an object")  # a damaged sidecar is none, never an error
    assert "contrast_agent" not in load(tmp_path / "scan.nii.gz").meta
    (tmp_path / "scan.json").write_text("[" * 100_000 + "]" * 100_000)  # nested too deep to parse
    assert "contrast_agent" not in load(tmp_path / "scan.nii.gz").meta
    (tmp_path / "scan.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"ContrastBolusAgent": "Dotarem"}).encode())
    assert load(tmp_path / "scan.nii.gz").meta["contrast_agent"] == "Dotarem"  # a byte-order mark is read past
    (tmp_path / "scan.json").write_text(json.dumps({"ContrastBolusAgent": False}))
    assert "contrast_agent" not in load(tmp_path / "scan.nii.gz").meta


def test_another_file_under_a_nifti_name_says_so_and_what_to_do(tmp_path):
    from medae.gui.errors import user_message

    fake = tmp_path / "notascan.nii.gz"
    fake.write_text("hello\n")
    for read in (load, scan):
        with pytest.raises(InputError, match="neither a NIfTI-1/2 header nor gzip-compressed.*open the original file"):
            read(fake)
    import gzip

    packed = tmp_path / "packed.nii.gz"  # compressed indeed: only what it holds is no scan
    packed.write_bytes(gzip.compress(b"hello\n" * 100))
    for read in (load, scan):
        with pytest.raises(InputError, match="gzip-compressed, but what it holds is not a NIfTI-1/2 header"):
            read(packed)
    try:
        load(fake)
    except InputError as exc:
        _title, text = user_message(exc, f"reading {fake.name}")
    assert text.startswith(str(fake)) and text.count(fake.name) == 1  # the file named once, in full
