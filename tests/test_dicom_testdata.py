"""pydicom's bundled test files: each loads to a sensible Volume or raises a MedaeError, never anything else.

Only files present locally are used (some of pydicom's test files are downloaded on demand, and
there is no network here).
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from medae.errors import MedaeError
from medae.io import load, scan
from medae.io.dicom import load_series


def _local_files() -> list[str]:
    import pydicom.data
    import pydicom.data.download as download

    # pydicom would try to download its online-only files; there is no network, so say so up front
    # instead of waiting for each attempt to time out.
    offline = getattr(download, "_SIMULATE_NETWORK_OUTAGE", None)
    download._SIMULATE_NETWORK_OUTAGE = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "download failures": expected offline
            found = pydicom.data.get_testdata_files("*") + pydicom.data.get_testdata_files("**/*")
    finally:
        download._SIMULATE_NETWORK_OUTAGE = offline
    return sorted({f for f in found if os.path.isfile(f)})


FILES = _local_files()


def _check(v):
    assert v.array.ndim == 3 and all(s > 0 for s in v.shape)
    assert v.affine.shape == (4, 4) and np.isfinite(v.affine).all()
    assert min(v.spacing) > 0 and abs(np.linalg.det(v.affine[:3, :3])) > 0
    assert v.meta["format"] == "dicom" and v.meta["source_files"]


def test_collection_is_present():
    assert len(FILES) > 80
    assert any(f.endswith("CT_small.dcm") for f in FILES) and any("dicomdirtests" in f for f in FILES)


def test_every_bundled_file_loads_or_raises_medae_error():
    loaded = refused = 0
    for f in FILES:
        try:
            infos = scan(f)
        except MedaeError:
            refused += 1
            continue
        for info in infos:
            try:
                v = load(f) if len(infos) == 1 else load_series(info)
            except MedaeError:
                refused += 1
                continue
            _check(v)
            assert v.shape == info.shape
            loaded += 1
    # CT_small, the MR_small family (explicit/implicit/big-endian/RLE/J2K/JPEG-LS), the J2K CTs, ...
    assert loaded >= 25 and refused >= 40


def test_known_files_give_known_volumes():
    import pydicom.data

    ct = load(pydicom.data.get_testdata_file("CT_small.dcm"))
    assert ct.modality == "CT" and ct.shape == (128, 128, 1) and ct.array.dtype == np.int16
    ref = None
    for name in (
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ):
        v = load(pydicom.data.get_testdata_file(name))
        if ref is None:
            ref = v
        np.testing.assert_array_equal(v.array, ref.array)
        np.testing.assert_allclose(v.affine, ref.affine)


@pytest.mark.parametrize("name", ["rtdose.dcm", "test-SR.dcm", "rtstruct.dcm", "liver_1frame.dcm", "waveform_ecg.dcm"])
def test_non_scans_are_refused_with_a_reason(name):
    import pydicom.data

    with pytest.raises(MedaeError, match="not an image series"):
        load(pydicom.data.get_testdata_file(name))


def test_whole_collection_folders():
    root = Path(FILES[0]).parent
    for folder in (root, root / "dicomdirtests"):
        try:
            infos = scan(folder)
        except MedaeError:
            continue
        assert infos
        for info in infos:
            try:
                _check(load_series(info))
            except MedaeError:
                pass


def test_dicomdir_files_of_the_collection():
    dicomdirs = [f for f in FILES if os.path.basename(f).startswith("DICOMDIR")]
    assert len(dicomdirs) >= 5
    usable = 0
    for f in dicomdirs:
        try:
            infos = scan(f)
        except MedaeError:
            continue
        usable += 1
        assert all(i.kind == "dicom" and i.n_files >= 1 for i in infos)
    assert usable >= 3


def test_fast_header_reader_agrees_with_pydicom(monkeypatch, tmp_path):
    """The raw header reader and pydicom's give the same records, file by file."""
    from medae.io import dicom_header
    from medae.io.dicom_rawheader import Fallback
    from tests.dicom_factory import axial_affine, phantom, write_series

    synthetic = write_series(tmp_path, phantom((4, 4, 3)), axial_affine(), intercept=-1024)

    def records(path):
        try:
            h = dicom_header.read_header(path)
        except (dicom_header.NotDicom, dicom_header.Unreadable) as exc:
            return type(exc).__name__
        frames = [
            (
                f.index,
                None if f.position is None else tuple(f.position),
                f.pixel_spacing,
                f.slope,
                f.intercept,
                f.window,
                tuple(sorted((k, str(v)) for k, v in f.keys.items())),
            )
            for f in h.frames
        ]
        return (
            h.sop_class,
            h.modality,
            h.transfer_syntax,
            h.series_uid,
            h.rows,
            h.cols,
            h.bits_allocated,
            h.bits_stored,
            h.pixel_representation,
            h.n_frames,
            h.pixel_offset,
            h.pixel_tag,
            h.image_type,
            h.padding,
            h.photometric,
            sorted(h.info.items(), key=str),
            frames,
        )

    paths = [*FILES, *map(str, synthetic)]
    fast = [records(p) for p in paths]

    def no_fast_path(*args, **kwargs):
        raise Fallback("test")

    monkeypatch.setattr(dicom_header, "read_raw_header", no_fast_path)
    slow = [records(p) for p in paths]
    for p, a, b in zip(paths, fast, slow, strict=True):
        assert a == b, p
