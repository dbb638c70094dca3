"""Finding the training scans: a folder, or a text file that lists them."""

import pytest

from medae.errors import InputError
from medae.training.data import find_scans


def test_a_list_names_each_scan_once_and_skips_comments_however_indented(tmp_path):
    # A scan listed twice (here once as ./a.nii.gz) could be drawn for training and for validation both, and
    # so be calibrated on after being trained on; an indented comment was taken for a scan's path.
    (tmp_path / "scans").mkdir()
    listing = tmp_path / "scans" / "healthy.txt"
    # Saved by Windows Notepad: a byte-order mark, then lines ending in CR LF.
    listing.write_bytes(
        b"\xef\xbb\xbfb.nii.gz\r\n# healthy controls\r\n\r\n  # left out: c.nii.gz\r\na.nii.gz\r\n./a.nii.gz\r\n"
    )
    folder = tmp_path / "scans"
    assert find_scans(listing) == [(str(folder / "b.nii.gz"), None), (str(folder / "a.nii.gz"), None)]


def test_a_list_under_another_name_is_said_to_need_one_of_the_list_names(tmp_path):
    listing = tmp_path / "healthy.csv"
    listing.write_text("a.nii.gz\nb.nii.gz\n")
    with pytest.raises(InputError, match=r"healthy\.csv: .* a list of scans is read from a text file named \*\.txt"):
        find_scans(listing)
    (tmp_path / "scan.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 damaged")  # not text: no word of lists
    with pytest.raises(InputError) as said:
        find_scans(tmp_path / "scan.nii.gz")
    assert "a list of scans" not in str(said.value)
