"""`medae info` on DICOM folders: one row per series, warnings below, the same in JSON."""

import json

import numpy as np

from medae.cli import main
from tests.dicom_factory import axial_affine, phantom, write_series


def _folder(tmp_path):
    write_series(
        tmp_path / "a", phantom((6, 5, 4)), axial_affine((0.7, 0.5, 2.0)), description="Head CT", series_number=2
    )
    write_series(
        tmp_path / "b",
        phantom((8, 7, 6)),
        axial_affine(),
        modality="MR",
        description="T2 axial",
        series_number=3,
        skip=[2],
    )
    return tmp_path


def test_info_table_lists_each_series_with_warnings(tmp_path, capsys):
    assert main(["info", str(_folder(tmp_path))]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "modality", "description", "dimensions"]
    ct = next(line for line in lines if "Head CT" in line)
    assert "CT" in ct and "6x5x4" in ct and "0.7x0.5x2" in ct and " LPS " in ct and " 4 " in ct
    mr = next(line for line in lines if "T2 axial" in line)
    assert "MR" in mr and "8x7x5" in mr and " 5 " in mr
    assert "warning:" in out and "missing slice" in out


def test_info_json(tmp_path, capsys):
    assert main(["info", str(_folder(tmp_path)), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    series = {s["description"]: s for s in data["series"]}
    ct, mr = series["Head CT"], series["T2 axial"]
    assert ct["modality"] == "CT" and ct["shape"] == [6, 5, 4] and ct["n_files"] == 4
    assert np.allclose(ct["spacing"], [0.7, 0.5, 2.0]) and ct["orientation"] == "LPS"
    assert ct["warnings"] == [] and ct["kind"] == "dicom"
    assert mr["shape"] == [8, 7, 5] and mr["n_files"] == 5 and any("missing slice" in w for w in mr["warnings"])
    assert ct["extra"]["series_number"] == 2 and ct["extra"]["study_uid"]
    assert ct["extra"]["loadable"] is True and mr["extra"]["loadable"] is False


def test_info_on_a_folder_without_scans_fails_cleanly(tmp_path, capsys):
    (tmp_path / "readme.txt").write_text("nothing here")
    assert main(["info", str(tmp_path)]) == 2
    assert "no scan found" in capsys.readouterr().err


def test_library_warnings_do_not_reach_the_console(tmp_path):
    import os
    import subprocess
    import sys

    write_series(
        tmp_path,
        phantom((8, 8, 4)),
        axial_affine(),
        edit=lambda ds, k: setattr(ds, "SpecificCharacterSet", "ISO_IR 999"),
    )
    env = dict(os.environ, PYTHONWARNINGS="default")
    run = subprocess.run(
        [sys.executable, "-m", "medae", "info", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0 and "synthetic" in run.stdout
    assert "UserWarning" not in run.stderr, run.stderr
