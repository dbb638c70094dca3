"""DICOM pixel values: rescale, dtypes, padding, MONOCHROME1, bit depths, codecs, multi-frame."""

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

from medae.errors import MissingCodecError
from medae.io import load, scan
from medae.io.dicom_pixels import read_frames
from tests.dicom_factory import axial_affine, phantom, write_enhanced, write_series


def test_ct_hu_stays_int16_from_unsigned_storage(tmp_path):
    vol = phantom((6, 5, 4), lo=-1024, hi=3000)
    write_series(tmp_path, vol, axial_affine(), stored_dtype=np.uint16, intercept=-1024)
    v = load(tmp_path)
    assert v.array.dtype == np.int16
    np.testing.assert_array_equal(v.array, vol)
    assert v.meta["rescale_intercept"] == -1024 and v.meta["rescale_slope"] == 1


def test_full_range_uint16_with_intercept_uses_actual_range(tmp_path):
    # BitsStored 16 could reach 65535 - 1024, but the data does not: int16 still holds it.
    vol = phantom((5, 5, 3), lo=-1024, hi=2000)
    write_series(tmp_path, vol, axial_affine(), stored_dtype=np.uint16, intercept=-1024)
    assert load(tmp_path).array.dtype == np.int16
    big = vol.astype(np.int32)
    big[0, 0, 0] = 60000
    write_series(tmp_path / "big", big, axial_affine(), stored_dtype=np.uint16, intercept=-1024)
    v = load(tmp_path / "big")
    assert v.array.dtype == np.int32 and v.array[0, 0, 0] == 60000
    np.testing.assert_array_equal(v.array, big)


def test_fractional_slope_gives_float32(tmp_path):
    stored = phantom((5, 4, 3), lo=0, hi=4000).astype(np.float64)
    vol = stored * 0.25 + 3.5
    write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16, slope=0.25, intercept=3.5)
    v = load(tmp_path)
    assert v.array.dtype == np.float32
    np.testing.assert_allclose(v.array, vol, rtol=1e-6)


def test_rescale_per_slice(tmp_path):
    stored = phantom((5, 4, 3), lo=0, hi=1000).astype(np.float64)
    slopes, inters = [1.0, 2.0, 0.5], [0.0, -100.0, 7.0]
    vol = stored * np.array(slopes) + np.array(inters)
    write_series(tmp_path, vol, axial_affine(), modality="PT", stored_dtype=np.int16, slope=slopes, intercept=inters)
    v = load(tmp_path)
    np.testing.assert_allclose(v.array, vol, rtol=1e-6)
    assert v.meta["rescale_per_slice"] is True


def test_integral_per_slice_rescale_stays_integer(tmp_path):
    stored = phantom((4, 4, 3), lo=0, hi=1000)
    inters = [-1024, -1000, -1024]
    vol = stored + np.array(inters, dtype=np.int16)
    write_series(tmp_path, vol, axial_affine(), stored_dtype=np.uint16, intercept=inters)
    v = load(tmp_path)
    assert v.array.dtype == np.int16
    np.testing.assert_array_equal(v.array, vol)


def test_padding_value_becomes_air_and_is_reported(tmp_path):
    vol = phantom((8, 8, 3), lo=-1000, hi=1500)
    vol[:2, :, :] = -3024  # outside the reconstruction circle
    write_series(
        tmp_path, vol, axial_affine(), intercept=-1024, edit=lambda ds, k: setattr(ds, "PixelPaddingValue", -2000)
    )
    v = load(tmp_path)
    assert v.array.dtype == np.int16
    assert (v.array[:2] == -1024).all()
    np.testing.assert_array_equal(v.array[2:], vol[2:])
    assert v.meta["padding_voxels"] == 2 * 8 * 3
    assert any("padding" in w and "-1024" in w for w in v.warnings)


def test_a_padding_value_stored_unsigned_for_signed_pixels_is_named_as_the_pixels_read_it(tmp_path):
    # In implicit VR the tag's sign is not stored, and readers take it as US: -2000 reads 63536.
    vol = phantom((8, 8, 3), lo=-1000, hi=1500)
    vol[:2, :, :] = -2000
    write_series(tmp_path, vol, axial_affine(), edit=lambda ds, k: ds.add_new(0x00280120, "US", 63536))
    v = load(tmp_path)
    assert v.meta["padding_voxels"] == 2 * 8 * 3 and v.meta["padding_value"] == -2000
    assert any("PixelPaddingValue -2000)" in w for w in v.warnings), v.warnings


def test_padding_range_limit_for_mr_uses_data_minimum(tmp_path):
    vol = phantom((6, 6, 2), lo=100, hi=900).astype(np.uint16)
    vol[0, :, 0] = 4000
    vol[1, :, 0] = 4005

    def pad(ds, k):
        ds.PixelPaddingValue = 4000
        ds.PixelPaddingRangeLimit = 4010

    write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16, edit=pad)
    v = load(tmp_path)
    assert v.array.dtype == np.uint16
    real_min = vol[2:].min() if vol[2:].min() < vol[:2, :, 1].min() else vol[:2, :, 1].min()
    assert (v.array[:2, :, 0] == real_min).all()
    assert v.array.max() < 4000


def test_monochrome1_is_inverted(tmp_path):
    vol = phantom((5, 5, 3), lo=0, hi=1000).astype(np.uint16)
    write_series(
        tmp_path,
        vol,
        axial_affine(),
        modality="MR",
        stored_dtype=np.uint16,
        edit=lambda ds, k: setattr(ds, "PhotometricInterpretation", "MONOCHROME1"),
    )
    v = load(tmp_path)
    lo, hi = int(vol.min()), int(vol.max())
    np.testing.assert_array_equal(v.array, lo + hi - vol.astype(np.int64))
    assert any("MONOCHROME1" in w for w in v.warnings)
    assert v.meta["window_center"] == pytest.approx(lo + hi - 40)


@pytest.mark.parametrize("signed", [True, False])
def test_bits_stored_below_bits_allocated(tmp_path, signed):
    # 12 bits stored in 16: the top 4 bits carry junk (old overlay planes) and must be ignored.
    lo, hi = (-2048, 2047) if signed else (0, 4095)
    vol = phantom((6, 5, 3), lo=lo, hi=hi + 1)
    dtype = np.int16 if signed else np.uint16

    def twelve_bits(ds, k):
        ds.BitsStored, ds.HighBit = 12, 11
        arr = np.frombuffer(ds.PixelData, dtype=dtype).copy().view(np.uint16)
        arr = (arr & 0x0FFF) | 0xA000
        ds.PixelData = arr.tobytes()

    write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=dtype, edit=twelve_bits)
    v = load(tmp_path)
    np.testing.assert_array_equal(v.array, vol)


def test_big_endian_and_implicit_vr(tmp_path):
    vol = phantom((5, 4, 3), seed=21)

    def save_as(ts):
        def edit(ds, k):
            ds.file_meta.TransferSyntaxUID = ts
            if ts == ExplicitVRBigEndian:
                ds.PixelData = np.frombuffer(ds.PixelData, "<i2").astype(">i2").tobytes()

        return edit

    write_series(tmp_path / "be", vol, axial_affine(), edit=save_as(ExplicitVRBigEndian))
    write_series(tmp_path / "ivr", vol, axial_affine(), edit=save_as(ImplicitVRLittleEndian))
    np.testing.assert_array_equal(load(tmp_path / "be").array, vol)
    np.testing.assert_array_equal(load(tmp_path / "ivr").array, vol)


def test_deflated_series_is_listed_and_loads(tmp_path):
    vol = phantom((6, 5, 4), seed=24)
    for path in write_series(tmp_path, vol, axial_affine()):
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
        ds.save_as(path, enforce_file_format=True)
    (info,) = scan(tmp_path)
    assert info.shape == (6, 5, 4) and info.n_files == 4
    np.testing.assert_array_equal(load(tmp_path).array, vol)


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless, JPEGLSLossless], ids=["rle", "j2k", "jls"])
def test_compressed_series_decode_exactly(tmp_path, syntax):
    vol = phantom((40, 32, 6), lo=-1024, hi=2000, seed=22)  # openjpeg needs 32+ pixels for its default levels
    write_series(tmp_path, vol, axial_affine(), transfer_syntax=syntax)
    assert pydicom.dcmread(next(tmp_path.iterdir())).file_meta.TransferSyntaxUID == syntax
    v = load(tmp_path)
    np.testing.assert_array_equal(v.array, vol)
    assert v.meta["transfer_syntax_uid"] == syntax


def test_thread_pool_and_sequential_decoding_agree(tmp_path):
    vol = phantom((10, 10, 12), seed=23)
    write_series(tmp_path, vol, axial_affine(), transfer_syntax=RLELossless)
    frames = scan(tmp_path)[0].plan.frames
    np.testing.assert_array_equal(read_frames(frames, workers=1), read_frames(frames, workers=3))


def test_missing_codec_names_syntax_and_package(tmp_path, monkeypatch):
    write_series(tmp_path, phantom((32, 32, 2)), axial_affine(), transfer_syntax=JPEG2000Lossless)
    from pydicom.pixels.decoders.base import Decoder

    monkeypatch.setattr(Decoder, "is_available", property(lambda self: False))
    monkeypatch.setattr(Decoder, "missing_dependencies", property(lambda self: ["pylibjpeg-openjpeg"]))
    with pytest.raises(MissingCodecError) as err:
        load(tmp_path)
    msg = str(err.value)
    assert "JPEG 2000" in msg and JPEG2000Lossless in msg and "pylibjpeg-openjpeg" in msg


def _to_jpeg_extended_12(paths, quality=90):
    """Re-codes each single-frame file's pixels as 12-bit lossy JPEG (Process 4), as old archives hold them."""
    import imagecodecs
    from pydicom.encaps import encapsulate

    for path in paths:
        ds = pydicom.dcmread(path)
        stored = ds.pixel_array.astype(np.int32) & 0xFFF  # two's complement bits of signed values
        stream = imagecodecs.jpeg8_encode(stored.astype(np.uint16), level=quality, bitspersample=12)
        ds.PixelData = encapsulate([stream])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.51"
        ds.BitsStored, ds.HighBit = 12, 11
        ds.save_as(path, enforce_file_format=True)


def test_12_bit_jpeg_extended_decodes_close_to_the_original(tmp_path):
    vol = phantom((32, 32, 3), lo=0, hi=4000, seed=25).astype(np.uint16)
    vol[:8, :8, :] = 3  # dark air: an undershooting decoder would wrap these to about 4095
    _to_jpeg_extended_12(write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16))
    assert pydicom.dcmread(next(tmp_path.iterdir())).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    v = load(tmp_path)
    assert v.shape == (32, 32, 3)
    err = np.abs(v.array.astype(np.int32) - vol.astype(np.int32))
    assert err.mean() < 40 and err[:8, :8].max() < 40  # lossy, but near; no wrap-around near 0


def test_12_bit_jpeg_extended_signed_ct_keeps_negative_hu(tmp_path):
    vol = np.full((24, 24, 2), -1000, np.int16)  # air
    vol[6:18, 6:18] = 40  # soft tissue
    vol[10:14, 10:14] = 1500  # bone
    _to_jpeg_extended_12(write_series(tmp_path, vol, axial_affine(), stored_dtype=np.int16))
    v = load(tmp_path)
    assert v.array.min() < -900 and np.abs(v.array[10:14, 10:14].astype(int) - 1500).max() < 60
    assert np.abs(v.array[0:4, 0:4].astype(int) + 1000).max() < 20


def test_12_bit_jpeg_extended_without_a_12_bit_decoder_says_what_to_install(tmp_path, monkeypatch):
    vol = phantom((16, 16, 2), lo=0, hi=4000, seed=26).astype(np.uint16)
    _to_jpeg_extended_12(write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16))
    from pydicom.pixels import get_decoder

    from medae.io import dicom_jpeg_extended

    monkeypatch.setattr(dicom_jpeg_extended, "available", lambda: False)
    if "pylibjpeg" in get_decoder("1.2.840.10008.1.2.4.51").available_plugins:
        assert load(tmp_path).shape == (16, 16, 2)  # a machine with pylibjpeg-libjpeg reads it
        return
    with pytest.raises(MissingCodecError, match="12-bit samples.*pip install -U imagecodecs"):
        load(tmp_path)


def test_damaged_12_bit_jpeg_extended_is_an_input_error(tmp_path):
    from medae.errors import InputError

    vol = phantom((16, 16, 2), lo=0, hi=4000, seed=27).astype(np.uint16)
    paths = write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16)
    _to_jpeg_extended_12(paths)
    ds = pydicom.dcmread(paths[0])
    from pydicom.encaps import encapsulate, generate_frames

    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([stream[: len(stream) // 3]])
    ds.save_as(paths[0], enforce_file_format=True)
    with pytest.raises(InputError, match="cannot be decoded"):
        load(tmp_path)


def test_unknown_transfer_syntax_is_a_missing_codec(tmp_path):
    private = "1.2.826.0.1.3680043.9.9999.77"  # a vendor's own compression: no decoder exists for it
    paths = write_series(tmp_path, phantom((8, 8, 2)), axial_affine(), transfer_syntax=RLELossless)
    for p in paths:
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = private
        ds.save_as(p, enforce_file_format=True, implicit_vr=False, little_endian=True)
    with pytest.raises(MissingCodecError, match=private.replace(".", r"\.")):
        load(tmp_path)


def test_enhanced_multiframe_with_per_frame_rescale(tmp_path):
    vol = phantom((9, 7, 6), lo=0, hi=1000, seed=24).astype(np.float64)
    aff = axial_affine((0.9, 0.6, 3.0))
    info = write_enhanced(tmp_path / "mf.dcm", [(vol * 2.0, aff)], slopes=[2.0])
    assert info["order"] != sorted(info["order"])  # frames are stored shuffled
    [s] = scan(tmp_path)
    assert s.shape == (9, 7, 6) and s.n_files == 1 and s.extra["multiframe"]
    v = load(tmp_path)
    np.testing.assert_allclose(v.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(v.array, vol * 2)
    assert v.array.dtype == np.int16
    assert v.meta["source_files"] == [str(tmp_path / "mf.dcm")]
    stored_k = [k for _s, k in info["order"]]
    assert [stored_k[n - 1] for n in v.meta["frame_numbers"]] == list(range(6))
    assert v.meta["window_center"] == 100.0


def test_enhanced_multiframe_with_two_stacks_is_split(tmp_path):
    a = phantom((6, 6, 4), lo=0, hi=500, seed=25)
    b = phantom((6, 6, 5), lo=0, hi=500, seed=26)
    sag = np.array([[0, 0, -2.0, 20], [0.7, 0, 0, -30], [0, -0.7, 0, 40], [0, 0, 0, 1.0]])
    write_enhanced(
        tmp_path / "two.dcm",
        [(a, axial_affine((0.7, 0.7, 2.0))), (b, sag)],
        shared_rescale=True,
        echo_times=[10.0, 10.0],
    )
    infos = scan(tmp_path)
    assert sorted(s.shape for s in infos) == [(6, 6, 4), (6, 6, 5)]
    by_k = {s.shape[2]: s for s in infos}
    np.testing.assert_array_equal(load(tmp_path, series=by_k[4].uid).array, a)
    vb = load(tmp_path, series=by_k[5].uid)
    np.testing.assert_array_equal(vb.array, b)
    np.testing.assert_allclose(vb.affine, sag, atol=1e-5)


def test_enhanced_mr_echoes_are_split(tmp_path):
    a = phantom((5, 5, 3), lo=0, hi=500, seed=27)
    aff = axial_affine()
    write_enhanced(tmp_path / "echo.dcm", [(a, aff), (a + 7, aff)], echo_times=[5.0, 20.0])
    infos = scan(tmp_path)
    assert len(infos) == 2 and len({s.uid for s in infos}) == 2
    got = sorted(load(tmp_path, series=s.uid).array.mean() for s in infos)
    assert got == pytest.approx([a.mean(), a.mean() + 7])


def test_highdicom_legacy_converted_enhanced_ct(tmp_path):
    import highdicom

    vol = phantom((8, 6, 5), lo=-1000, hi=1000, seed=28)
    paths = write_series(tmp_path / "single", vol, axial_affine(), intercept=-1024, stored_dtype=np.uint16)
    datasets = [pydicom.dcmread(p) for p in paths]
    for ds in datasets:
        ds.KVP = 120
    _legacy_converted(highdicom.legacy.LegacyConvertedEnhancedCTImage, datasets, tmp_path / "mf" / "ct.dcm")
    v = load(tmp_path / "mf")
    np.testing.assert_array_equal(v.array, vol)
    np.testing.assert_allclose(v.affine, axial_affine(), atol=1e-5)


def test_highdicom_legacy_converted_enhanced_mr_with_two_echoes_is_split(tmp_path):
    """Echo numbers and times of a Legacy Converted file live only in its Unassigned Converted Attributes."""
    import highdicom

    vol = phantom((8, 6, 5), lo=0, hi=800, seed=29)
    uid = generate_uid()
    datasets = []
    for echo, (te, offset) in enumerate(((9.0, 0), (80.0, 300)), start=1):

        def tag_echo(ds, k, echo=echo, te=te):
            ds.EchoNumbers, ds.EchoTime = echo, te

        paths = write_series(
            tmp_path / f"e{echo}", vol + offset, axial_affine(), modality="MR", series_uid=uid, edit=tag_echo
        )
        datasets += [pydicom.dcmread(p) for p in paths]
    for n, ds in enumerate(datasets):  # one study and frame of reference, as a scanner writes its echoes
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = datasets[0].StudyInstanceUID, datasets[0].FrameOfReferenceUID
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = n + 1
    _legacy_converted(highdicom.legacy.LegacyConvertedEnhancedMRImage, datasets, tmp_path / "mf" / "mr.dcm")
    infos = scan(tmp_path / "mf")
    assert len(infos) == 2 and sorted(s.shape for s in infos) == [(8, 6, 5)] * 2
    got = {s.extra.get("part_label", s.description): load(tmp_path / "mf", series=s.uid).array for s in infos}
    means = sorted(float(a.mean()) for a in got.values())
    assert means == pytest.approx([vol.mean(), vol.mean() + 300])


def _legacy_converted(sop_class, datasets, path) -> None:
    """Saves single-frame datasets as one highdicom Legacy Converted Enhanced file at ``path``."""
    for ds in datasets:
        ds.AcquisitionNumber = 1
        ds.ContentDate, ds.ContentTime = "20240102", "101010"
        ds.AcquisitionDate, ds.AcquisitionTime = "20240102", "101010"
    mf = sop_class(
        legacy_datasets=datasets,
        series_instance_uid=generate_uid(),
        series_number=9,
        sop_instance_uid=generate_uid(),
        instance_number=1,
    )
    path.parent.mkdir(parents=True)
    mf.save_as(path)


def _gzip_files(files, keep_name: bool = False) -> None:
    """Replaces each file by its gzip-compressed copy (``NAME.gz``, or the same name)."""
    import gzip
    import os

    for f in files:
        data = f.read_bytes()
        target = f if keep_name else f.with_name(f.name + ".gz")
        target.write_bytes(gzip.compress(data))
        if not keep_name:
            os.remove(f)


def _implicit_vr(ds, k):
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


@pytest.mark.parametrize(
    ("syntax", "edit"), [(None, None), (None, _implicit_vr), (RLELossless, None)], ids=["native", "implicit", "rle"]
)
def test_gzipped_dicom_files_load_like_plain_ones(tmp_path, syntax, edit):
    vol = phantom((8, 6, 5), lo=-1024, hi=2000)
    files = write_series(tmp_path / "plain", vol, axial_affine(), transfer_syntax=syntax, edit=edit)
    files_gz = write_series(tmp_path / "gz", vol, axial_affine(), transfer_syntax=syntax, edit=edit)
    _gzip_files(files_gz[:3])
    _gzip_files(files_gz[3:], keep_name=True)  # recognised by content, not by name
    plain, gz = load(tmp_path / "plain"), load(tmp_path / "gz")
    np.testing.assert_array_equal(gz.array, vol)
    np.testing.assert_array_equal(gz.affine, plain.affine)
    (info,) = scan(tmp_path / "gz")
    assert info.n_files == len(files) and not any("unreadable" in w or "damaged" in w for w in info.warnings)
    one = sorted((tmp_path / "gz").glob("*.gz"))[0]
    assert load(one).array.shape[:2] == vol.shape[:2]


def test_damaged_gzip_dicom_is_reported_and_other_gzip_files_ignored(tmp_path):
    import gzip

    vol = phantom((6, 6, 4))
    files = write_series(tmp_path, vol, axial_affine())
    _gzip_files(files)
    victim = sorted(tmp_path.glob("*.gz"))[1]
    victim.write_bytes(victim.read_bytes()[: len(victim.read_bytes()) // 2])
    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress(b"not a scan at all" * 20))
    (info,) = scan(tmp_path)
    assert info.n_files == 3
    assert any(victim.name in w for w in info.warnings), info.warnings


def test_12_bit_jpeg_extended_multi_frame_keeps_frame_order(tmp_path):
    import imagecodecs
    from pydicom.encaps import encapsulate

    vol = phantom((20, 20, 5), lo=0, hi=4000, seed=28).astype(np.uint16)
    path = tmp_path / "enhanced.dcm"
    write_enhanced(path, [(vol, axial_affine())], stored_dtype=np.uint16)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    ds.PixelData = encapsulate([imagecodecs.jpeg8_encode(f, level=95, bitspersample=12) for f in frames])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.51"
    ds.BitsStored, ds.HighBit = 12, 11
    ds.save_as(path, enforce_file_format=True)
    reference = tmp_path / "plain"
    reference.mkdir()
    write_enhanced(reference / "enhanced.dcm", [(vol, axial_affine())], stored_dtype=np.uint16)
    err = np.abs(load(path).array.astype(np.int32) - load(reference).array.astype(np.int32))
    assert err.mean() < 30  # frames decoded into their own slices (a shuffled order would be far off)


def test_a_series_mixing_signed_and_unsigned_files_is_one_volume_read_file_by_file(tmp_path):
    vol = phantom((8, 8, 6), lo=0, hi=30000)
    vol[:, :, 3:] -= 15000  # the signed files hold negative values too

    def unsigned_half(ds, k):
        if k < 3:
            ds.PixelRepresentation = 0  # same bytes: their values are all positive

    write_series(tmp_path, vol, axial_affine(), modality="MR", edit=unsigned_half)
    (series,) = scan(tmp_path)
    v = load(tmp_path)
    assert v.shape == (8, 8, 6)
    np.testing.assert_array_equal(v.array, vol)
    assert v.array.dtype == np.int16  # the values fit the stored width: not held twice as wide
    assert any("signed and unsigned" in w for w in v.warnings)


def test_a_mixed_series_beyond_the_stored_width_is_held_wider(tmp_path):
    vol = phantom((8, 8, 4), lo=0, hi=1000, seed=32).astype(np.int32)
    vol[:, :, :2] += 60000  # unsigned files above int16's range; the signed files hold negative values
    vol[:, :, 2:] -= 500

    def unsigned_half(ds, k):
        if k < 2:
            ds.PixelRepresentation = 0

    write_series(tmp_path, vol, axial_affine(), modality="MR", edit=unsigned_half)
    v = load(tmp_path)
    assert v.array.dtype == np.int32
    np.testing.assert_array_equal(v.array, vol)


def test_each_file_clears_the_bits_it_does_not_store(tmp_path):
    vol = phantom((8, 8, 4), lo=0, hi=4000, seed=30).astype(np.uint16)
    vol[:, :, 2:] += 4000  # above 12 bits: these files store 16

    def bits(ds, k):
        ds.BitsStored, ds.HighBit = (12, 11) if k < 2 else (16, 15)

    write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16, edit=bits)
    np.testing.assert_array_equal(load(tmp_path).array, vol)


def test_a_series_differing_only_in_bits_stored_keeps_its_unsigned_width(tmp_path):
    vol = phantom((8, 8, 4), lo=0, hi=4000, seed=33).astype(np.uint16)
    vol[:, :, 2:] += 50000  # 16 bits stored, beyond int16

    def bits(ds, k):
        ds.BitsStored, ds.HighBit = (12, 11) if k < 2 else (16, 15)

    write_series(tmp_path, vol, axial_affine(), modality="MR", stored_dtype=np.uint16, edit=bits)
    v = load(tmp_path)
    assert v.array.dtype == np.uint16  # not int32: no sign was mixed in
    np.testing.assert_array_equal(v.array, vol)


def test_padding_declared_by_some_files_of_a_series_applies_to_all(tmp_path):
    vol = phantom((8, 8, 4), lo=-1000, hi=1500, seed=31)
    vol[:2] = -3024  # stored as -2000 (intercept -1024): padding in every slice

    def padding_in_one(ds, k):
        if k == 1:  # neither the first nor the last slice declares it
            ds.PixelPaddingValue = -2000

    write_series(tmp_path, vol, axial_affine(), intercept=-1024, edit=padding_in_one)
    v = load(tmp_path)
    assert (v.array[:2] == -1024).all() and v.meta["padding_voxels"] == 2 * 8 * 4


def test_a_damaged_rle_frame_is_one_line_that_names_the_file(tmp_path):
    from pydicom.encaps import encapsulate, generate_frames

    from medae.errors import InputError

    paths = write_series(tmp_path, phantom((24, 24, 3), seed=28), axial_affine(), transfer_syntax=RLELossless)
    ds = pydicom.dcmread(paths[1])
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([stream[: len(stream) // 2]])  # the decoders list their failures line by line
    ds.save_as(paths[1], enforce_file_format=True)
    with pytest.raises(InputError, match="cannot be decoded") as caught:
        load(tmp_path)
    assert "\n" not in str(caught.value) and paths[1].name in str(caught.value)
