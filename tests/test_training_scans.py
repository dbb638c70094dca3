"""Finding the training scans: a folder, or a text file that lists them."""

import pytest

from medae.errors import InputError
from medae.training.data import find_scans


def test_a_list_names_each_scan_once_and_skips_comments_however_indented(tmp_path, monkeypatch):
    # A scan listed twice (as ./a.nii.gz, or by its absolute path in a list given by a relative one) could be
    # drawn for training and for validation both, and so be calibrated on after being trained on; an indented
    # comment was taken for a scan's path.
    (tmp_path / "scans").mkdir()
    # Saved by Windows Notepad: a byte-order mark, then lines ending in CR LF.
    (tmp_path / "scans" / "healthy.txt").write_bytes(
        b"\xef\xbb\xbfb.nii.gz\r\n# healthy controls\r\n\r\n  # left out: c.nii.gz\r\na.nii.gz\r\n./a.nii.gz\r\n"
        + f"{tmp_path / 'scans' / 'b.nii.gz'}\n".encode()
    )
    monkeypatch.chdir(tmp_path)
    assert find_scans("scans/healthy.txt") == [("scans/b.nii.gz", None), ("scans/a.nii.gz", None)]


def test_a_list_that_is_not_utf8_text_is_one_line_not_a_traceback(tmp_path):
    listing = tmp_path / "healthy.txt"  # as Windows PowerShell 5 writes a redirected listing: UTF-16
    listing.write_bytes("a.nii.gz\r\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"healthy\.txt: the list of scans is not UTF-8 text"):
        find_scans(listing)


def test_a_list_under_another_name_is_said_to_need_one_of_the_list_names(tmp_path):
    listing = tmp_path / "healthy.csv"
    listing.write_text("a.nii.gz\nb.nii.gz\n")
    with pytest.raises(InputError, match=r"healthy\.csv: .* a list of scans is read from a text file named \*\.txt"):
        find_scans(listing)
    (tmp_path / "scan.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 damaged")  # not text: no word of lists
    with pytest.raises(InputError) as said:
        find_scans(tmp_path / "scan.nii.gz")
    assert "a list of scans" not in str(said.value)


def test_an_mr_scan_that_is_no_head_is_left_out_of_a_brain_model_training(tmp_path):
    # An abdomen among the healthy heads was aligned as well as it could be and trained on as a healthy brain;
    # the analysis refuses the same scan for matching the brain reference poorly. So was a segmentation beside
    # the scans (a BIDS folder's derivatives), which the analysis refuses before aligning it, and a T2 scan of the
    # same study, which it refuses for its inverted contrast.
    import numpy as np

    from medae.analysis.checks import check_contrast, check_input
    from medae.io.nifti import save_nifti
    from medae.training.config import load_config
    from medae.training.data import prepare_reference, preprocess_scans
    from medae.training.healthy import generate_healthy
    from medae.training.template import load_template
    from medae.training.train import card_from_config
    from medae.volume import Volume

    head = generate_healthy(load_template(), 1000)
    save_nifti(head.volume, tmp_path / "head.nii.gz")
    labels = (head.gm > 0.5) + 2 * (head.wm > 0.5) + 3 * (head.csf > 0.5)
    save_nifti(Volume(labels.astype(np.uint8), head.volume.affine, "MR"), tmp_path / "sub-01_dseg.nii.gz")
    t1 = np.asarray(head.volume.array, dtype=np.float32)  # a T2-like head: the tissue contrast inverted
    t2 = np.where(t1 > 0.1 * t1.max(), 1.1 * t1.max() - t1, t1)
    save_nifti(Volume(t2, head.volume.affine, "MR"), tmp_path / "sub-01_T2w.nii.gz")
    i, j, _ = np.indices((256, 200, 40), dtype=np.float32)
    x, y = (i - 128) * 1.5, (j - 100) * 1.5
    body = np.where((x / 170) ** 2 + (y / 120) ** 2 < 1, 300.0, 0.0)
    body[((x - 60) / 60) ** 2 + ((y + 10) / 50) ** 2 < 1] = 500
    body[((x + 50) / 30) ** 2 + ((y - 30) / 30) ** 2 < 1] = 150
    body += np.random.default_rng(0).normal(0, 20, body.shape)
    affine = np.diag([1.5, 1.5, 5.0, 1.0])
    affine[:3, 3] = [-192, -150, -100]
    save_nifti(Volume(np.clip(body, 0, None).astype(np.int16), affine, "MR"), tmp_path / "abdomen.nii.gz")
    cfg = load_config()
    names = ("head.nii.gz", "abdomen.nii.gz", "sub-01_dseg.nii.gz", "sub-01_T2w.nii.gz")
    scans = [(str(tmp_path / name), None) for name in names]
    card, reference = card_from_config(cfg), prepare_reference(cfg)
    images, _, skipped = preprocess_scans(scans, card, *reference, screen=check_input, screen_contrast=check_contrast)
    assert len(images) == 1 and len(skipped) == 3
    assert "abdomen.nii.gz: it matches the brain reference poorly (similarity 0.2" in skipped[0]
    assert "sub-01_dseg.nii.gz: " in skipped[1] and "looks like a mask or label map" in skipped[1]
    assert "sub-01_T2w.nii.gz: the scan's tissue contrast is inverted" in skipped[2]
    # The analysis's advice (choose another --model, or --force) is no option of the training.
    assert not any("--force" in said or "--model" in said for said in skipped)


def test_a_scan_left_out_is_named_once_in_its_message(tmp_path):
    from medae.training.config import load_config
    from medae.training.data import preprocess_scans
    from medae.training.train import card_from_config

    (tmp_path / "broken.nii.gz").write_bytes(b"not a scan")
    path = str(tmp_path / "broken.nii.gz")
    with pytest.raises(InputError) as said:  # the only scan: none could be used
        preprocess_scans([(path, None)], card_from_config(load_config()), None, None)
    assert str(said.value).count(path) == 1 and "not a NIfTI file" in str(said.value)


def test_a_4d_file_is_left_out_of_the_training_without_naming_an_option_it_does_not_have(tmp_path):
    # The loader's advice, --volume N, is the analysis's: medae train has no such option.
    import nibabel as nib
    import numpy as np

    from medae.training.config import load_config
    from medae.training.data import preprocess_scans
    from medae.training.train import card_from_config

    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.int16), np.eye(4)), path)
    with pytest.raises(InputError) as said:
        preprocess_scans([(str(path), None)], card_from_config(load_config()), None, None)
    assert "bold.nii.gz: a 4D file with 3 volumes" in str(said.value) and "the training takes 3D scans" in str(
        said.value
    )
    assert "--volume" not in str(said.value)


def test_a_dicom_series_left_out_is_named_by_its_own_folder_once(tmp_path):
    # A series of a DICOM folder was named by the data folder and then by its own ("data: data/s1: ..."), or by the
    # data folder alone (for another modality), which did not say which series it was.
    from medae.training.config import load_config
    from medae.training.data import find_scans, preprocess_scans
    from medae.training.train import card_from_config
    from tests.dicom_factory import axial_affine, phantom, write_series

    data = tmp_path / "data"
    write_series(data / "s1", phantom((8, 8, 4)), axial_affine(), modality="CT")
    scans = find_scans(data)
    with pytest.raises(InputError) as said:
        preprocess_scans(scans, card_from_config(load_config()), None, None)
    assert f"used: {data / 's1'}: a CT scan, and the model learns MR" in str(said.value)
    assert str(said.value).count(str(data)) == 1


def test_a_listed_folder_of_several_series_stands_for_each_of_them(tmp_path):
    # It was one scan, refused with the analysis's advice to choose one with --series, an option of no training.
    from medae.training.data import find_scans
    from tests.dicom_factory import axial_affine, phantom, write_series

    write_series(tmp_path / "study", phantom((8, 8, 4)), axial_affine(), series_number=1)
    write_series(tmp_path / "study", phantom((8, 8, 4), seed=1), axial_affine(), series_number=2, prefix="b")
    write_series(tmp_path / "one", phantom((8, 8, 4)), axial_affine())
    (tmp_path / "scans.txt").write_text("study\none\n")
    found = find_scans(tmp_path / "scans.txt")
    assert [path for path, _ in found] == [str(tmp_path / "study")] * 2 + [str(tmp_path / "one")]
    assert len({series for _, series in found[:2]}) == 2 and found[2][1] is None
