"""``medae analyze --all``: every series into its own folder, one bad series never stopping the rest."""

import json

import numpy as np

from medae.cli import main
from medae.io.nifti import save_nifti
from medae.volume import Volume
from tests.dicom_factory import axial_affine, write_series
from tests.gui.tiny_model import mr_with_lesion


def _analyze_all(folder, out, model):
    return main(["analyze", str(folder), "--all", "--out", str(out), "--model", str(model), "--device", "cpu"])


def test_a_series_that_cannot_be_loaded_does_not_stop_the_others(tmp_path, tiny_model, capsys):
    arr = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    kw = dict(modality="MR", study_uid="1.2.3.9")
    write_series(tmp_path / "in", arr, axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.3.9.1", skip=[12], **kw)
    write_series(tmp_path / "in", arr, axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.3.9.2", series_number=2, **kw)
    assert _analyze_all(tmp_path / "in", tmp_path / "out", tiny_model) == 2
    err = capsys.readouterr().err
    assert "error: 1.2.3.9.1" in err and "missing slice" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["1.2.3.9.2"]
    assert (tmp_path / "out" / "1.2.3.9.2" / "report.json").is_file()


def test_scans_whose_paths_end_alike_get_a_folder_each(tmp_path, tiny_model):
    long = "x" * 70
    vol = mr_with_lesion()
    for patient, array in (("a", vol.array), ("b", vol.array[::-1].copy())):
        (tmp_path / "in" / patient / long).mkdir(parents=True)
        save_nifti(Volume(array, vol.affine, "MR"), tmp_path / "in" / patient / long / "image.nii.gz")
    assert _analyze_all(tmp_path / "in", tmp_path / "out", tiny_model) == 0
    reports = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").rglob("report.json"))]
    assert len(reports) == 2 and reports[0]["score"] != reports[1]["score"]
