"""Opening a compressed study (.mae) in the viewer: decoded in a worker, whatever its name; damage said plainly."""

from pathlib import Path

import numpy as np

from medae.codec import compress, write_study
from medae.io import load
from tests.gui.conftest import wait_idle


def test_a_compressed_study_opens_like_a_scan(window, qtbot, ct_file, tmp_path):
    source = load(ct_file)
    path = write_study(tmp_path / "study from the archive.bin", *compress(source, "lossless"))
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.last_error is None
    v = window.session.volume
    np.testing.assert_array_equal(v.array, source.array)
    np.testing.assert_array_equal(v.affine, source.affine)
    assert v.modality == "CT" and window.session.window.width == 400  # opens as the CT it holds


def test_a_damaged_compressed_study_is_refused_in_words(window, qtbot, ct_file, tmp_path):
    path = write_study(tmp_path / "study.mae", *compress(load(ct_file), "lossless"))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.session.volume is None
    text = window.last_error.text()
    assert "damaged" in text and "Traceback" not in text


def test_the_scan_on_screen_exports_as_a_lossless_study_without_an_analysis(window, qtbot, ct_file, tmp_path):
    from medae.codec import read_study
    from medae.gui import exports

    window.open_path(ct_file)
    wait_idle(qtbot, window)
    assert window.session.result is None
    assert window.actions_by_name["export_study"].isEnabled()
    assert not window.actions_by_name["export_heatmap_nifti"].isEnabled()
    exports.export(window, "study", tmp_path / "archive")
    wait_idle(qtbot, window)
    assert window.last_error is None
    back = read_study(tmp_path / "archive.mae")
    np.testing.assert_array_equal(back.array, window.session.volume.array)
    np.testing.assert_array_equal(back.affine, window.session.volume.affine)
    window.open_path(tmp_path / "archive.mae")
    wait_idle(qtbot, window)
    exports.export(window, "study", tmp_path / "archive.mae")  # never over the scan's own file
    wait_idle(qtbot, window)
    assert "never overwrites" in window.last_error.text()


def test_a_latent_preview_opens_with_its_label_and_is_not_analysed(window, qtbot, tmp_path):
    from medae.model import load_model
    from medae.model.store import default_codec_dir

    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "brain_t1.nii.gz"
    codec = load_model(default_codec_dir(), device="cpu")
    path = write_study(tmp_path / "preview.mae", *compress(load(sample), "latent", model=codec))
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.last_error is None
    v = window.session.volume
    assert v.shape == (174, 229, 121)
    assert any("never for diagnosis" in w for w in v.warnings)
    window.start_analysis()
    wait_idle(qtbot, window)
    assert window.session.result is None
    assert "latent reconstruction" in window.last_error.text()


def test_a_compressed_study_with_damaged_first_bytes_is_named_as_one(window, qtbot, ct_file, tmp_path):
    path = write_study(tmp_path / "study.mae", *compress(load(ct_file), "lossless"))
    data = bytearray(path.read_bytes())
    data[1] ^= 0x20  # "MAE" -> "mAE": the file no longer starts like a study, but its name says it is one
    path.write_bytes(bytes(data))
    window.open_path(path)
    wait_idle(qtbot, window)
    assert window.session.volume is None
    assert "first bytes were altered" in window.last_error.text()
