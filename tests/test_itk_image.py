"""NRRD and MetaImage reading: geometry from ITK's LPS header onto medae's RAS+ affine."""

import numpy as np
import pytest
import SimpleITK as sitk

from medae.errors import InputError
from medae.io import load, scan
from medae.viewer.thumbnails import thumbnail


def _oblique_image() -> sitk.Image:
    arr = (np.random.default_rng(0).random((7, 6, 5)) * 1000).astype(np.int16)  # ITK order (K, J, I)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((0.9, 1.1, 2.5))
    img.SetOrigin((10.0, -20.0, 5.0))
    rot = sitk.VersorRigid3DTransform()
    rot.SetRotation((0.2, -0.1, 0.3), 0.4)
    img.SetDirection(rot.GetMatrix())
    return img


@pytest.mark.parametrize("name", ["x.nrrd", "x.nhdr", "x.mha", "x.mhd"])
def test_oblique_geometry_matches_itk_and_the_same_scan_as_nifti(tmp_path, name):
    img = _oblique_image()
    sitk.WriteImage(img, str(tmp_path / name))
    sitk.WriteImage(img, str(tmp_path / "x.nii.gz"))
    v = load(tmp_path / name)
    ref = load(tmp_path / "x.nii.gz")
    assert v.shape == (5, 6, 7) and v.array.dtype == np.int16
    assert np.array_equal(v.array, ref.array)
    np.testing.assert_allclose(v.affine, ref.affine, atol=1e-4)
    # Every corner lands where ITK puts it (LPS), with x and y negated for RAS.
    for idx in [(0, 0, 0), (4, 0, 0), (0, 5, 0), (4, 5, 6), (2, 3, 1)]:
        lps = np.array(img.TransformIndexToPhysicalPoint(idx))
        np.testing.assert_allclose(v.affine @ [*idx, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-6)
    assert v.warnings == [] and v.meta["format"] in ("nrrd", "metaimage")


@pytest.mark.parametrize("space", ["right-anterior-superior", "left-posterior-superior"])
def test_hand_written_nrrd_in_either_space(tmp_path, space):
    data = np.arange(24, dtype="<i2").reshape(2, 3, 4)  # the file's order: i fastest
    header = (
        f"NRRD0004\ntype: short\ndimension: 3\nspace: {space}\nsizes: 4 3 2\n"
        "space directions: (2,0,0) (0,3,0) (0,0,4)\nkinds: domain domain domain\nendian: little\n"
        "encoding: raw\nspace origin: (10,20,30)\n\n"
    ).encode()
    (tmp_path / "h.nrrd").write_bytes(header + data.tobytes())
    v = load(tmp_path / "h.nrrd")
    sign = 1.0 if space.startswith("right") else -1.0
    expected = np.diag([2.0 * sign, 3.0 * sign, 4.0, 1.0])
    expected[:3, 3] = [10.0 * sign, 20.0 * sign, 30.0]
    np.testing.assert_allclose(v.affine, expected)
    assert (v.array[1, 0, 0], v.array[0, 1, 0], v.array[0, 0, 1]) == (1, 4, 12)
    assert v.warnings == []


def test_nrrd_without_space_says_what_was_assumed(tmp_path):
    header = b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nspacings: 2 3 4\nendian: little\nencoding: raw\n\n"
    (tmp_path / "h.nrrd").write_bytes(header + bytes(48))
    v = load(tmp_path / "h.nrrd")
    assert v.spacing == pytest.approx((2.0, 3.0, 4.0))
    assert any("no orientation" in w and "LPS" in w for w in v.warnings)


def test_metaimage_modality_is_taken_from_the_header(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.int16)), str(tmp_path / "m.mha"))
    raw = (tmp_path / "m.mha").read_bytes().replace(b"ElementSpacing", b"Modality = MET_MOD_CT\nElementSpacing")
    (tmp_path / "ct.mha").write_bytes(raw)
    v = load(tmp_path / "ct.mha")
    assert v.modality == "CT" and "modality_guessed" not in v.meta
    assert load(tmp_path / "m.mha").meta["modality_guessed"] is True


def test_4d_needs_an_index_and_vectors_are_refused(tmp_path):
    four = np.arange(4 * 5 * 6 * 7, dtype=np.float32).reshape(4, 5, 6, 7)
    sitk.WriteImage(sitk.GetImageFromArray(four, isVector=False), str(tmp_path / "t.nrrd"))
    with pytest.raises(InputError, match="4D file with 4 volumes"):
        load(tmp_path / "t.nrrd")
    v = load(tmp_path / "t.nrrd", volume_index=2)
    assert v.shape == (7, 6, 5) and v.array[0, 0, 0] == 420 and v.meta["volume_index"] == 2
    with pytest.raises(InputError, match="out of range"):
        load(tmp_path / "t.nrrd", volume_index=4)
    assert scan(tmp_path / "t.nrrd")[0].warnings[0].startswith("4D: 4 volumes")
    rgb = np.zeros((8, 8, 8, 3), np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.mha"))
    with pytest.raises(InputError, match="3 values per voxel"):
        load(tmp_path / "rgb.mha")


def test_broken_files_are_clear_errors(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((20, 20, 20), np.float32)), str(tmp_path / "t.nrrd"), False)
    raw = (tmp_path / "t.nrrd").read_bytes()
    (tmp_path / "cut.nrrd").write_bytes(raw[: len(raw) - 5000])
    with pytest.raises(InputError, match="truncated"):
        load(tmp_path / "cut.nrrd")
    (tmp_path / "junk.mha").write_bytes(b"not an image\n")
    with pytest.raises(InputError, match="not a readable MetaImage file"):
        load(tmp_path / "junk.mha")
    (tmp_path / "lost.mhd").write_bytes(
        b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = lost.raw\n"
    )
    with pytest.raises(InputError, match="lost.mhd: its header names the data file lost.raw, which is not there"):
        load(tmp_path / "lost.mhd")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.int16)), str(tmp_path / "pair.nhdr"))
    data = next(p for p in tmp_path.iterdir() if p.name.startswith("pair.") and p.suffix != ".nhdr")
    data.unlink()
    with pytest.raises(InputError, match=f"names the data file {data.name}, which is not there"):
        load(tmp_path / "pair.nhdr")


@pytest.mark.parametrize("header", ["half.mhd", "half.nhdr"])
def test_a_data_file_cut_short_is_named_with_its_sizes(tmp_path, header):
    # Written uncompressed, then the detached data file cut in half (as a copy still running leaves it).
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((6, 5, 4), np.int16)), str(tmp_path / header), False)
    data = next(p for p in tmp_path.iterdir() if p.name != header)
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(InputError, match=f"its data file {data.name} holds 120 bytes where the header describes 240"):
        load(tmp_path / header)


def test_folder_lists_them_beside_nifti_and_previews_them(tmp_path):
    img = _oblique_image()
    sitk.WriteImage(img, str(tmp_path / "a.nrrd"))
    sitk.WriteImage(img, str(tmp_path / "b.mhd"))  # with its b.raw, which is not a scan of its own
    sitk.WriteImage(img, str(tmp_path / "c.nii.gz"))
    infos = scan(tmp_path)
    assert [(s.kind, s.description) for s in infos] == [("itk", "a.nrrd"), ("itk", "b.mhd"), ("nifti", "c.nii.gz")]
    assert infos[0].shape == (5, 6, 7) and infos[0].orientation == infos[2].orientation
    assert np.array_equal(load(tmp_path, series=infos[1].uid).array, load(tmp_path / "c.nii.gz").array)
    preview = thumbnail(infos[0])
    assert preview is not None and preview.dtype == np.uint8 and preview.size > 1
    assert np.array_equal(preview, thumbnail(infos[2]))


def test_a_broken_file_does_not_hide_the_rest_of_a_folder(tmp_path):
    (tmp_path / "broken.nrrd").write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 9 9 9\nencoding: raw\n\n")
    with pytest.raises(InputError, match="no readable scan.*broken.nrrd: not a readable NRRD file"):
        scan(tmp_path)
    sitk.WriteImage(_oblique_image(), str(tmp_path / "good.mha"))
    infos = scan(tmp_path)
    assert [s.description for s in infos] == ["good.mha"]
    assert any("skipped 1 unreadable file(s) nearby: broken.nrrd" in w for w in infos[0].warnings)
    assert load(tmp_path).shape == (5, 6, 7)


def test_training_lists_a_broken_scan_so_that_it_is_reported_as_skipped(tmp_path):
    from medae.training.data import find_scans

    sitk.WriteImage(_oblique_image(), str(tmp_path / "a.nrrd"))
    (tmp_path / "b.nii.gz").write_bytes(b"not gzip")
    assert find_scans(tmp_path) == sorted([(str(tmp_path / "a.nrrd"), None), (str(tmp_path / "b.nii.gz"), None)])


@pytest.mark.parametrize("kind", ["list", "RGB-color", "vector"])
def test_a_diffusion_nrrd_lists_its_volumes_and_colours_stay_refused(tmp_path, kind):
    # As 3D Slicer writes DWI: the per-voxel list axis first in the file, then the three domain axes.
    data = np.arange(3 * 2 * 3 * 4, dtype="<i2").reshape(2, 3, 4, 3)  # (k, j, i, volume), the last fastest
    header = (
        f"NRRD0004\ntype: short\ndimension: 4\nspace: left-posterior-superior\nsizes: 3 4 3 2\n"
        f"space directions: none (2,0,0) (0,2,0) (0,0,3)\nkinds: {kind} domain domain domain\nendian: little\n"
        f"encoding: raw\nspace origin: (0,0,0)\n{'' if kind == 'vector' else 'modality:=DWMRI'}\n\n"
    ).encode()
    (tmp_path / "dwi.nrrd").write_bytes(header + data.tobytes())
    if kind != "list":  # a vector without diffusion keys: a displacement field or a gradient, not volumes
        with pytest.raises(InputError, match="3 values per voxel"):
            load(tmp_path / "dwi.nrrd")
        return
    with pytest.raises(InputError, match="4D file with 3 volumes. Choose one with --volume"):
        load(tmp_path / "dwi.nrrd")
    for n in range(3):
        v = load(tmp_path / "dwi.nrrd", volume_index=n)
        assert v.shape == (4, 3, 2) and v.meta["volume_index"] == n
        np.testing.assert_array_equal(v.array, data[..., n].T)
    assert scan(tmp_path / "dwi.nrrd")[0].warnings[0].startswith("4D: 3 volumes")


def test_damaged_data_itk_only_prints_about_are_refused_and_nothing_reaches_the_console(tmp_path, capfd):
    arr = (np.random.default_rng(1).random((30, 40, 50)) * 1000).astype(np.int16)
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "z.mhd"), True)  # compressed: z.zraw
    packed = tmp_path / "z.zraw"
    raw = bytearray(packed.read_bytes())
    at = len(raw) - len(raw) // 40
    raw[at : at + 16] = bytes(b ^ 0xFF for b in raw[at : at + 16])  # ITK prints "Uncompress failed", raises nothing
    packed.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="compressed image data is damaged"):
        load(tmp_path / "z.mhd")
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "a.mha"), False)
    whole = (tmp_path / "a.mha").read_bytes()
    (tmp_path / "cut.mha").write_bytes(whole[: len(whole) - 60000])  # its attached data cut short
    with pytest.raises(InputError, match=r"image data is cut short \(\d+ of 120000 bytes\)"):
        load(tmp_path / "cut.mha")
    (tmp_path / "bad.mha").write_bytes(
        b"ObjectType = Image\nNDims = 3\nElementType = MET_SHORT\nElementDataFile = LOCAL\n"
    )
    with pytest.raises(InputError, match="DimSize required") as caught:
        load(tmp_path / "bad.mha")
    assert "No such file or directory" not in str(caught.value)
    assert capfd.readouterr().err == ""  # ITK's own lines stay off the console


def test_nrrd_distances_in_metres_are_read_in_millimetres(tmp_path):
    data = np.arange(24, dtype="<i2").reshape(2, 3, 4)
    header = (
        b"NRRD0004\ntype: short\ndimension: 3\nspace: left-posterior-superior\nsizes: 4 3 2\n"
        b'space directions: (0.002,0,0) (0,0.003,0) (0,0,0.004)\nspace units: "m" "m" "m"\n'
        b"kinds: domain domain domain\nendian: little\nencoding: raw\nspace origin: (0.01,0.02,0.03)\n\n"
    )
    (tmp_path / "m.nrrd").write_bytes(header + data.tobytes())
    v = load(tmp_path / "m.nrrd")
    assert v.spacing == pytest.approx((2.0, 3.0, 4.0)) and v.affine[:3, 3] == pytest.approx((-10.0, -20.0, 30.0))
    assert v.meta["space_unit"] == "meter" and any("in meters" in w for w in v.warnings)
    assert any("in meters" in w for w in scan(tmp_path / "m.nrrd")[0].warnings)


def test_info_says_what_loading_would_warn_of(tmp_path):
    header = b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nspacings: 2 3 4\nendian: little\nencoding: raw\n\n"
    (tmp_path / "h.nrrd").write_bytes(header + bytes(48))
    assert any("no orientation" in w for w in scan(tmp_path / "h.nrrd")[0].warnings)
    (tmp_path / "lost.mhd").write_bytes(
        b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = lost.raw\n"
    )
    assert any("lost.raw, which is not there" in w for w in scan(tmp_path / "lost.mhd")[0].warnings)


def test_a_layout_itk_does_not_take_says_how_to_save_it_instead(tmp_path):
    header = (
        b"NRRD0004\ntype: short\ndimension: 4\nspace: left-posterior-superior\nsizes: 4 3 2 2\n"
        b"space directions: (1,0,0) (0,1,0) (0,0,1) none\nkinds: domain domain domain time\nendian: little\n"
        b"encoding: raw\nspace origin: (0,0,0)\n\n"
    )
    (tmp_path / "t.nrrd").write_bytes(header + bytes(96))
    with pytest.raises(InputError, match=r"does not support this file's layout .*Save the scan again as NIfTI") as e:
        load(tmp_path / "t.nrrd")
    assert "0x" not in str(e.value)


def test_a_program_without_a_console_still_reads_them(tmp_path):
    # A windowed program (pythonw, a desktop launcher) has no stderr to keep ITK's lines off.
    import subprocess
    import sys

    sitk.WriteImage(sitk.GetImageFromArray(np.ones((4, 5, 6), np.int16)), str(tmp_path / "x.nrrd"))
    code = "import sys; sys.stderr = None\nfrom medae.io import load\nprint(load(sys.argv[1]).shape)"
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.nrrd")],
        stderr=subprocess.DEVNULL,
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "(6, 5, 4)"
    closed = subprocess.run(
        ["bash", "-c", f'exec 2>&-; "{sys.executable}" -c "{code}" "{tmp_path / "x.nrrd"}"'],
        stdout=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    assert closed.returncode == 0 and closed.stdout.strip() == "(6, 5, 4)"
