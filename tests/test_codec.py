"""The compressed study (.mae): exact and bounded round trips for every voxel type, and damaged files refused."""

import numpy as np
import pytest

from medae.codec import compress, container, decompress, describe
from medae.errors import InputError
from medae.volume import Volume

AFFINE = np.array([[0.0, -0.9, 0.1, 12.5], [1.1, 0.0, 0.0, -80.25], [0.0, 0.05, 3.0, 7.0], [0, 0, 0, 1]])


def _volume(array, **kw) -> Volume:
    return Volume(array, AFFINE, "MR", {"series_description": "test", "kind": "scan"}, **kw)


def _round_trip(volume, mode="lossless", max_error=None) -> tuple[Volume, dict, int]:
    header, sections = compress(volume, mode, max_error)
    blob = container.pack(header, sections)
    back = decompress(*container.unpack(blob))
    return back, header, len(blob)


def _smooth(shape, seed=0, scale=1000.0) -> np.ndarray:
    """A smooth field with noise, as scans are (compressible, but not trivially)."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(0, 3, n) for n in shape], indexing="ij")
    field = np.sin(grid[0]) * np.cos(grid[1]) + grid[2] / 3
    return field * scale + rng.normal(0, scale / 50, shape)


ARRAYS = {
    "int16 CT": lambda: np.clip(_smooth((20, 18, 7)) * 2 - 1024, -2048, 3071).astype(np.int16),
    "uint8": lambda: np.clip(_smooth((9, 8, 5), scale=120), 0, 255).astype(np.uint8),
    "uint16 full range": lambda: np.array([0, 65535, 1, 40000] * 30, dtype=np.uint16).reshape(4, 6, 5),
    "int32 wide": lambda: (_smooth((10, 9, 4), scale=1e7)).astype(np.int32),
    "big-endian int16": lambda: _smooth((7, 6, 5)).astype(">i2"),
    "int64 extremes": lambda: np.array([np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1] * 6).reshape(2, 3, 4),
    "uint64 extremes": lambda: np.array([0, 2**64 - 1, 5, 2**63] * 6, dtype=np.uint64).reshape(2, 3, 4),
    "bool": lambda: _smooth((6, 5, 4), seed=3) > 1000,
    "float32 whole numbers": lambda: np.round(_smooth((8, 7, 6))).astype(np.float32),
    "float32 with NaN and -0": lambda: (
        np.where(
            _smooth((8, 7, 6)) > 1500,
            np.nan,
            _smooth((8, 7, 6)) / 7.3 * np.array([1, -1])[None, None, [0, 1, 0, 1, 0, 1]],
        ).astype(np.float32)
        * np.where(np.arange(6) == 2, -0.0, 1.0)
    ),
    "float64": lambda: _smooth((6, 6, 6)) / 3.1,
    "one slice": lambda: _smooth((12, 11, 1)).astype(np.int16),
    # Pure noise (the air of a phase map, a corrupted slice) codes larger than it is raw.
    "uint8 noise": lambda: np.random.default_rng(4).integers(0, 256, (128, 128, 2)).astype(np.uint8),
    "int16 noise": lambda: np.random.default_rng(5).integers(-32768, 32768, (128, 128, 2)).astype(np.int16),
}


@pytest.mark.parametrize("name", list(ARRAYS))
def test_lossless_gives_back_every_bit_the_dtype_and_the_affine(name):
    array = ARRAYS[name]()
    back, header, _ = _round_trip(_volume(array))
    assert back.array.dtype == array.dtype
    assert back.array.shape == array.shape
    assert back.array.tobytes() == np.ascontiguousarray(array).tobytes()
    assert np.array_equal(back.affine, AFFINE)  # exactly: JSON keeps float64 digits
    assert back.modality == "MR" and back.meta["kind"] == "scan"
    assert "series_description" not in back.meta  # free text: left out without keep_phi
    assert header["sha256_values"]


@pytest.mark.parametrize(
    ("name", "bound"), [("int16 CT", 3), ("int32 wide", 5000), ("uint16 full range", 2), ("float64", 0.01)]
)
def test_near_lossless_keeps_every_voxel_within_the_bound_and_is_smaller(name, bound):
    array = ARRAYS[name]()
    back, header, size = _round_trip(_volume(array), "near-lossless", bound)
    _, _, lossless = _round_trip(_volume(array))
    error = np.abs(back.array.astype(np.float64) - array.astype(np.float64))
    assert error.max() <= bound
    assert error.max() > 0  # it did use the room it was given
    assert size < lossless
    assert back.array.dtype == array.dtype
    assert f"within {bound:g}" in describe(header)
    assert any(f"may differ from the acquired scan by up to {bound:g}" in w for w in back.warnings)


@pytest.mark.parametrize("bound", [1, 127, 128, 255, 256, 5000])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32])
def test_near_lossless_holds_at_the_top_of_the_type_and_for_any_bound(dtype, bound):
    # Values at the type's ends, where a decoded step past the top would wrap round to the bottom.
    info = np.iinfo(dtype)
    rng = np.random.default_rng(1)
    array = rng.integers(max(info.min, info.max - 150), info.max, size=(9, 8, 6), endpoint=True).astype(dtype)
    array[0, 0, :] = info.max
    back, header, _ = _round_trip(_volume(array), "near-lossless", bound)
    assert back.array.dtype == array.dtype
    assert np.abs(back.array.astype(np.int64) - array.astype(np.int64)).max() <= bound


def test_noise_is_coded_near_losslessly_too():
    # A phase map in radians: uniform noise in the air; the default bound leaves about 200 levels.
    phase = np.random.default_rng(6).uniform(-np.pi, np.pi, (128, 128, 2)).astype(np.float32)
    back, header, _ = _round_trip(_volume(phase), "near-lossless")
    assert np.abs(back.array - phase).max() <= header["max_error"]


@pytest.mark.parametrize(
    ("name", "make", "bound"),
    [
        # A header's scaling steps by 2.5: the default bound (about 0.9) would quantise more finely.
        ("uint8 scaled by 2.5", lambda: np.clip(_smooth((60, 50, 6), scale=120), 0, 255).astype(np.uint8) * 2.5, None),
        ("int16 scaled by 0.37", lambda: _smooth((60, 50, 6)).astype(np.int16) * 0.37 + 5.0, 0.1),
        ("whole-number float32, bound below 1", lambda: np.round(_smooth((60, 50, 6))).astype(np.float32), 0.4),
        ("float32, bound below its precision", lambda: _smooth((60, 50, 6)).astype(np.float32), 1e-9),
    ],
)
def test_near_lossless_is_never_larger_than_lossless(name, make, bound):
    array = make()
    back, header, size = _round_trip(_volume(array), "near-lossless", bound)
    _, _, lossless = _round_trip(_volume(array))
    assert size <= lossless, (size, lossless)
    assert np.abs(back.array.astype(np.float64) - array.astype(np.float64)).max() <= header["max_error"]


def test_whole_number_floats_take_a_whole_bound_as_integers_do():
    array = np.round(_smooth((40, 30, 5))).astype(np.float32)
    back, header, size = _round_trip(_volume(array), "near-lossless", 3)
    _, _, lossless = _round_trip(_volume(array))
    error = np.abs(back.array - array)
    assert 0 < error.max() <= 3 and size < lossless and back.array.dtype == np.float32


def test_near_lossless_on_integers_rounds_a_fractional_bound_down():
    array = ARRAYS["int16 CT"]()
    back, header, _ = _round_trip(_volume(array), "near-lossless", 2.7)
    assert header["max_error"] == 2
    assert np.abs(back.array.astype(int) - array.astype(int)).max() <= 2


def test_near_lossless_default_bound_is_small_against_the_range():
    array = ARRAYS["int16 CT"]()
    back, header, _ = _round_trip(_volume(array), "near-lossless")
    lo, hi = np.percentile(array, [1, 99])
    assert 1 <= header["max_error"] <= 0.005 * (hi - lo)
    assert np.abs(back.array.astype(int) - array.astype(int)).max() <= header["max_error"]


def test_near_lossless_refuses_nan_and_says_what_to_use():
    with pytest.raises(InputError, match="NaN or infinite.*--mode lossless"):
        compress(_volume(ARRAYS["float32 with NaN and -0"]()), "near-lossless", 0.5)


def test_a_bound_beyond_reason_is_refused():
    with pytest.raises(InputError, match="finite number >= 0"):
        compress(_volume(ARRAYS["float64"]()), "near-lossless", -1.0)
    with pytest.raises(InputError, match="unknown compression mode"):
        compress(_volume(ARRAYS["float64"]()), "zip")


def test_patient_data_is_left_out_unless_asked():
    phi = {"patient_name": "Doe^Jane", "patient_id": "12345"}
    header, sections = compress(_volume(ARRAYS["uint8"](), phi=phi))
    assert "Doe" not in container.pack(header, sections).decode("latin-1")
    header, sections = compress(_volume(ARRAYS["uint8"](), phi=phi), keep_phi=True)
    assert decompress(header, sections).phi == phi


def _blob() -> bytes:
    return container.pack(*compress(_volume(ARRAYS["int16 CT"]())))


def test_a_cut_file_is_refused_with_advice():
    blob = _blob()
    for cut in (4, 14, len(blob) // 3, len(blob) - 1):
        with pytest.raises(InputError, match="cut short|copy it again"):
            container.unpack(blob[:cut], "study.mae")


def test_an_altered_byte_is_refused_not_decoded():
    blob = bytearray(_blob())
    blob[-10] ^= 0x40
    with pytest.raises(InputError, match="values section is damaged"):
        container.unpack(bytes(blob), "study.mae")


def test_a_text_mode_copy_and_other_files_are_named():
    blob = _blob()
    with pytest.raises(InputError, match="copied as text"):
        container.unpack(blob.replace(b"\r\n", b"\n", 1), "study.mae")
    with pytest.raises(InputError, match="first bytes were altered"):
        container.unpack(blob[:1] + b"m" + blob[2:], "study.mae")  # one damaged byte of the signature
    with pytest.raises(InputError, match="not a medae compressed study"):
        container.unpack(b"\x1f\x8b" + b"\0" * 100, "scan.nii.gz")
    with pytest.raises(InputError, match="unexpected bytes"):
        container.unpack(blob + b"extra", "study.mae")


def _edited(blob: bytes, old: bytes, new: bytes) -> bytes:
    """The file with its header text edited and the header checksum made to match (a deliberate edit)."""
    import hashlib
    import struct

    start = len(container.SIGNATURE)
    (size,) = struct.unpack("<Q", blob[start : start + 8])
    text = blob[start + 40 : start + 40 + size]
    assert old in text
    text = text.replace(old, new, 1)
    head = container.SIGNATURE + struct.pack("<Q", len(text)) + hashlib.sha256(text).digest()
    return head + text + blob[start + 40 + size :]


def test_a_newer_format_asks_for_a_newer_medae():
    blob = container.pack(*compress(_volume(ARRAYS["uint8"]())))
    with pytest.raises(InputError, match="newer medae"):
        container.unpack(_edited(blob, b'"version": 1', b'"version": 9'), "study.mae")


def test_a_damaged_header_is_refused_before_anything_is_decoded():
    blob = container.pack(*compress(_volume(ARRAYS["float64"]())))
    flipped = blob.replace(b'"<f8"', b'">f8"', 1)  # one bit: another byte order, every voxel wrong
    with pytest.raises(InputError, match="header is damaged"):
        container.unpack(flipped, "study.mae")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"shape"', b'"Shape"'),
        (b'"affine": [', b'"affine": [[1, 0, 0, 0], '),
        (b'"dtype": "<f8"', b'"dtype": "<U3"'),
        (b'"mode": "lossless"', b'"mode": "lossless2"'),
        (b'"kind": "raw"', b'"kind": 7'),
    ],
)
def test_a_header_edited_by_hand_is_refused_in_words(old, new):
    blob = _edited(container.pack(*compress(_volume(ARRAYS["float64"]()))), old, new)
    with pytest.raises(InputError, match="damaged|newer medae|unknown"):
        decompress(*container.unpack(blob, "study.mae"), source="study.mae")


def test_a_header_edit_of_grid_or_type_is_caught_by_the_voxels_checksum():
    array = ARRAYS["float64"]()
    blob = container.pack(*compress(_volume(array.reshape(6, 6, 6))))
    for old, new in [(b'"<f8"', b'">f8"')]:
        with pytest.raises(InputError, match="checksum|do not decode"):
            decompress(*container.unpack(_edited(blob, old, new)))


def test_integer_bounds_beyond_the_range_and_float_bounds_too_fine():
    array = ARRAYS["int16 CT"]()
    back, header, _ = _round_trip(_volume(array), "near-lossless", 1e20)
    span = int(array.max()) - int(array.min())
    assert header["max_error"] == span
    assert np.abs(back.array.astype(int) - array.astype(int)).max() <= span
    back, header, _ = _round_trip(_volume(array), "near-lossless", 300)  # beyond JPEG-LS's own 255
    assert np.abs(back.array.astype(int) - array.astype(int)).max() <= 300
    with pytest.raises(InputError, match="too fine.*--mode lossless"):
        compress(_volume(ARRAYS["float64"]() * 1e6), "near-lossless", 1e-20)


def test_without_keep_phi_the_description_holds_no_paths_and_no_original_uids():
    meta = {
        "series_uid": "1.2.3.4.5",
        "study_uid": "1.2.3.4",
        "frame_of_reference_uid": "1.2.3.9",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.4",
        "source_files": ["/data/Doe_Jane/IM0001.dcm"],
        "series_description": "T1 axial",
    }
    volume = Volume(ARRAYS["uint8"](), AFFINE, "MR", meta)
    header, sections = compress(volume)
    text = container.pack(header, sections).decode("latin-1")
    assert "Doe_Jane" not in text and '"1.2.3.4.5"' not in text and '"1.2.3.4"' not in text
    assert header["meta"]["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.4"  # a class, not a patient's
    assert "series_description" not in header["meta"]  # free text, often a file name: the basic profile removes it
    kept, _ = compress(volume, keep_phi=True)
    assert kept["meta"] == meta


def test_a_tampered_header_is_caught_by_the_values_checksum():
    header, sections = compress(_volume(ARRAYS["int16 CT"]()))
    header["values"]["offset"] += 1  # a header edit that every section's own checksum would miss
    with pytest.raises(InputError, match="checksum"):
        decompress(*container.unpack(container.pack(header, sections)))


def _flat_phantom() -> np.ndarray:
    """A noise-free, piecewise-constant volume whose slices repeat (synthetic data, masked exports)."""
    a = np.full((48, 40, 24), -1000, np.int16)
    a[8:40, 6:34, :] = 40
    a[20:30, 12:20, 5:15] = 300
    return a


@pytest.mark.parametrize("bound", [None, 2, 30, 300])
def test_repetitive_volumes_take_the_coder_that_wins_and_keep_their_bound(bound):
    array = _flat_phantom()
    mode = "lossless" if bound is None else "near-lossless"
    back, header, size = _round_trip(_volume(array), mode, bound)
    assert header["values"]["values"]["coding"] == "zstd-slices"
    assert size < array.nbytes / 50
    assert np.abs(back.array.astype(int) - array.astype(int)).max() <= (bound or 0)
    noisy = ARRAYS["int16 CT"]()
    _, header, _ = _round_trip(_volume(noisy), mode, bound)
    assert header["values"]["values"]["coding"] == "jpeg-ls" or bound == 300


@pytest.mark.parametrize("dtype", ["<f8", "<f4", ">f4", ">f8"])
def test_scaled_integers_are_coded_as_their_integers_and_come_back_bit_for_bit(dtype):
    # A header's slope and intercept (NIfTI scl_slope, DICOM Rescale Slope) make 16-bit values floats.
    stored = ARRAYS["int16 CT"]()
    array = (stored.astype(np.float64) * np.float32(0.37) + np.float32(-12.5)).astype(dtype)
    back, header, size = _round_trip(_volume(array))
    assert header["values"]["kind"] == "scaled"
    assert back.array.dtype == array.dtype and back.array.tobytes() == array.tobytes()
    _, _, as_integers = _round_trip(_volume(stored))
    assert size < 1.5 * as_integers  # about the size of the integers themselves, not of the floats


def test_a_cancel_during_the_check_of_the_coded_values_is_honoured(monkeypatch):
    """The decode that checks the coding takes seconds on a large scan; a cancel then stops before any file."""
    import threading

    from medae.codec import values
    from medae.errors import CancelledError

    cancel = threading.Event()
    decode = values.decode
    seen = []

    def decode_then_cancel(*args, **kwargs):
        cancel.set()  # pressed while the values are decoded again
        return decode(*args, **kwargs)

    monkeypatch.setattr(values, "decode", decode_then_cancel)
    with pytest.raises(CancelledError):
        compress(_volume(ARRAYS["int16 CT"]()), "lossless", cancel=cancel, progress=lambda f, m: seen.append(m))
    assert "Checking the compressed values" in seen


@pytest.mark.parametrize("edit", [{"max_error_from_acquired": "x"}, {"max_error_from_acquired": [1]}])
def test_a_header_edited_by_hand_is_described_in_words_not_a_traceback(edit):
    """`medae info` describes a study from its header alone: a bound that is no number must be named, not crash."""
    header, _ = compress(_volume(ARRAYS["uint8"]()), "near-lossless", 2)
    with pytest.raises(InputError, match="study.mae: the file's header is damaged"):
        describe(dict(header, **edit), source="study.mae")


def test_values_at_the_top_of_the_float_type_raise_no_python_warning():
    """A float32 scan holding its type's largest value (a saturated map) printed a numpy RuntimeWarning at the user."""
    import warnings

    array = ARRAYS["float64"]().astype(np.float32)
    array[0, 0, 0] = np.finfo(np.float32).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back, header, _ = _round_trip(_volume(array), "near-lossless", 1e37)
    assert np.abs(back.array.astype(np.float64) - array).max() <= header["max_error"]
