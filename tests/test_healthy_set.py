import json

import nibabel as nib
import numpy as np

from medae.cli import main


def test_make_healthy_draws_a_reproducible_variation_per_scan(tmp_path, capsys):
    out = tmp_path / "wide"
    assert main(["make-healthy", "--out", str(out), "--n", "2", "--seed", "4100", "--variation", "0.5", "1.5"]) == 0
    first = json.loads((out / "manifest.json").read_text())["scans"]
    v = [s["variation"] for s in first]
    assert all(0.5 <= x <= 1.5 for x in v) and v[0] != v[1]
    # Resuming keeps what is there and gives a new scan the variation its seed draws, whatever the folder holds.
    before = nib.load(out / "healthy_04100.nii.gz").get_fdata()
    assert main(["make-healthy", "--out", str(out), "--n", "3", "--seed", "4100", "--variation", "0.5", "1.5"]) == 0
    scans = json.loads((out / "manifest.json").read_text())["scans"]
    assert [s["variation"] for s in scans[:2]] == v and len(scans) == 3
    np.testing.assert_array_equal(nib.load(out / "healthy_04100.nii.gz").get_fdata(), before)
    alone = tmp_path / "alone"
    assert main(["make-healthy", "--out", str(alone), "--n", "1", "--seed", "4102", "--variation", "0.5", "1.5"]) == 0
    assert json.loads((alone / "manifest.json").read_text())["scans"][0]["variation"] == scans[2]["variation"]
    np.testing.assert_array_equal(
        nib.load(alone / "healthy_04102.nii.gz").get_fdata(), nib.load(out / "healthy_04102.nii.gz").get_fdata()
    )


def test_make_healthy_refuses_a_reversed_variation_range(tmp_path, capsys):
    assert main(["make-healthy", "--out", str(tmp_path / "x"), "--variation", "1.3", "0.8"]) == 2
    assert "LO <= HI" in capsys.readouterr().out
    assert not (tmp_path / "x").exists()


def test_make_healthy_into_a_folder_of_another_set_is_refused_and_keeps_it(tmp_path, capsys):
    # Made again with another --variation (or seed, or a smaller --n), the folder kept its old scans in silence
    # under the new command, and a training on it learnt the old variation.
    out = tmp_path / "set"
    assert main(["make-healthy", "--out", str(out), "--n", "1", "--seed", "4200"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for other in (["--variation", "0.8", "1.3"], ["--seed", "4300"]):
        capsys.readouterr()
        assert (
            main(
                ["make-healthy", "--out", str(out), "--n", "1", *(["--seed", "4200"] * ("--seed" not in other)), *other]
            )
            == 2
        )
        err = capsys.readouterr().err.strip()
        assert "holds 1 healthy scan of another set (seeds 4200-4200" in err and "Choose a new --out folder" in err
        assert err.count("\n") == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # The scan is listed before it is written: a run stopped between the two resumes with the same scan.
    assert json.loads((out / "manifest.json").read_text())["scans"][0]["file"] == "healthy_04200.nii.gz"


def test_make_healthy_into_a_folder_of_other_files_is_refused_and_leaves_them(tmp_path, capsys):
    # The set's NOTICE.txt and manifest.json replaced the user's files of those names, and the scans mixed with theirs.
    out = tmp_path / "mine"
    out.mkdir()
    (out / "NOTICE.txt").write_text("my notice")
    assert main(["make-healthy", "--out", str(out), "--n", "1"]) == 2
    assert "holds other files (NOTICE.txt) and no set of healthy scans" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["NOTICE.txt"] and (out / "NOTICE.txt").read_text() == "my notice"


def test_make_healthy_under_a_file_says_the_folder_cannot_be_made(tmp_path, capsys):
    # It said the manifest could not be read (or, for a folder it could not make, only the system's errno).
    (tmp_path / "a_file").write_text("x")
    assert main(["make-healthy", "--out", str(tmp_path / "a_file" / "set"), "--n", "1"]) == 2
    assert "set: the output folder cannot be made (Not a directory)" in capsys.readouterr().err
