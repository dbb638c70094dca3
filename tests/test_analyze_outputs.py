"""``medae analyze`` output folders: --all gives every series its own, one bad series never stops the rest,
and a folder used again holds only the new run's files."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from medae.cli import main
from medae.io.nifti import save_nifti
from medae.volume import Volume
from tests.dicom_factory import axial_affine, phantom, write_series
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
    assert err.count("error: ") == 1


def test_series_folders_under_all_carry_the_pseudonym_unless_asked(tmp_path, tiny_model):
    arr = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    uids = [f"1.2.826.0.1.3680043.8.498.1111222233334444555566667777888{k}" for k in (1, 2)]
    for k, uid in enumerate(uids):
        write_series(tmp_path / "in", arr, axial_affine(), series_uid=uid, series_number=k + 1, modality="MR")
    assert _analyze_all(tmp_path / "in", tmp_path / "out", tiny_model) == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    reported = sorted(
        json.loads((tmp_path / "out" / f / "report.json").read_text())["input"]["series_uid"] for f in folders
    )
    assert folders == reported and not set(folders) & set(uids)
    assert (
        main(
            [
                "analyze",
                str(tmp_path / "in"),
                "--all",
                "--keep-phi",
                "--out",
                str(tmp_path / "phi"),
                "--model",
                str(tiny_model),
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "phi").iterdir()) == uids


def test_a_file_that_fails_under_all_is_named_once(tmp_path, tiny_model, capsys):
    import nibabel as nib

    (tmp_path / "in").mkdir()
    four_d = tmp_path / "in" / "fmri.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 2), np.int16), np.eye(4)), four_d)
    save_nifti(mr_with_lesion(), tmp_path / "in" / "t1.nii.gz")
    assert _analyze_all(tmp_path / "in", tmp_path / "out", tiny_model) == 2
    err = capsys.readouterr().err
    assert f"error: {four_d}: a 4D file with 2 volumes" in err and err.count(str(four_d)) == 1
    assert len(list((tmp_path / "out").rglob("report.json"))) == 1


def test_scans_whose_paths_end_alike_get_a_folder_each(tmp_path, tiny_model):
    long = "x" * 70
    vol = mr_with_lesion()
    for patient, array in (("a", vol.array), ("b", vol.array[::-1].copy())):
        (tmp_path / "in" / patient / long).mkdir(parents=True)
        save_nifti(Volume(array, vol.affine, "MR"), tmp_path / "in" / patient / long / "image.nii.gz")
    assert _analyze_all(tmp_path / "in", tmp_path / "out", tiny_model) == 0
    reports = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").rglob("report.json"))]
    assert len(reports) == 2 and reports[0]["score"] != reports[1]["score"]


def test_a_folder_used_again_holds_only_the_new_runs_outputs(tmp_path, tiny_model, capsys):
    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    out = tmp_path / "out"
    base = ["analyze", str(scan), "--out", str(out), "--model", str(tiny_model), "--device", "cpu"]
    assert main([*base, "--dicom", "--reconstruction"]) == 0
    first = {p.name for p in out.iterdir()}
    assert {"findings_seg.dcm", "summary.png", "reconstruction.nii.gz"} <= first
    # Now above every voxel: no findings, so no Segmentation; and no picture or reconstruction asked for.
    assert main([*base, "--threshold", "1000"]) == 0
    assert {p.name for p in out.iterdir()} == {"heatmap.nii.gz", "findings.nii.gz", "report.json"}
    assert "removed findings_seg.dcm of an earlier run" in capsys.readouterr().err
    (out / "notes.txt").write_text("mine")  # files that are not medae's are never touched
    assert main(base) == 0 and (out / "notes.txt").read_text() == "mine"


def test_a_run_stopped_while_writing_never_leaves_one_scans_maps_beside_anothers_report(
    tmp_path, tiny_model, monkeypatch
):
    from medae.analysis import outputs

    first, second = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    save_nifti(mr_with_lesion(), first)
    vol = mr_with_lesion()
    save_nifti(Volume(vol.array[::-1].copy(), vol.affine, "MR"), second)
    out = tmp_path / "out"
    base = ["--out", str(out), "--model", str(tiny_model), "--device", "cpu"]
    assert main(["analyze", str(first), *base]) == 0
    real = outputs.save_nifti

    def stopped(volume, path, **kw):  # Ctrl-C once the new heatmap is written, before the findings
        if Path(path).name == "findings.nii.gz":
            raise KeyboardInterrupt
        return real(volume, path, **kw)

    monkeypatch.setattr(outputs, "save_nifti", stopped)
    assert main(["analyze", str(second), *base]) == 130
    assert {p.name for p in out.iterdir() if not p.name.startswith(".")} == {"heatmap.nii.gz", "report.json"}
    # The report says the run did not finish and lists what it wrote, so the heatmap is known as a result.
    report = json.loads((out / "report.json").read_text())
    assert report["status"].startswith("incomplete") and "score" not in report
    assert "heatmap.nii.gz" in report["files"].values()


def test_a_run_killed_while_writing_into_its_scans_folder_is_run_again_as_it_was(tmp_path, tiny_model, monkeypatch):
    """Its leftover maps must not count as more scans in the folder (a rerun asked which series to take)."""
    from medae.analysis import outputs

    folder = tmp_path / "patient"
    save_nifti(mr_with_lesion(), folder / "t1.nii.gz")
    base = ["analyze", str(folder), "--out", str(folder), "--model", str(tiny_model), "--device", "cpu"]
    real = outputs.save_nifti

    def killed(volume, path, **kw):
        if Path(path).name == "findings.nii.gz":
            raise KeyboardInterrupt
        return real(volume, path, **kw)

    monkeypatch.setattr(outputs, "save_nifti", killed)
    assert main(base) == 130
    monkeypatch.setattr(outputs, "save_nifti", real)
    assert main(base) == 0
    report = json.loads((folder / "report.json").read_text())
    assert "score" in report and "not for diagnostic use" in report["intended_use"]


def test_files_of_an_outputs_name_that_no_medae_report_lists_are_never_replaced(tmp_path, tiny_model, capsys):
    """A scan called reconstruction.nii.gz or a picture called summary.png is the user's: the run is refused."""
    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    out = tmp_path / "out"
    save_nifti(mr_with_lesion(), out / "reconstruction.nii.gz")
    (out / "summary.png").write_bytes(b"a picture of mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    base = ["analyze", str(scan), "--out", str(out), "--model", str(tiny_model), "--device", "cpu"]
    assert main([*base, "--png", "--reconstruction"]) == 2
    assert "reconstruction.nii.gz, summary.png, which medae would write over" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # Files the run does not write are left alone (and not said to be removed), and a report of someone
    # else's is not replaced.
    capsys.readouterr()
    assert main(base) == 0 and {p.name: p.read_bytes() for p in out.iterdir() if p.name in before} == before
    assert "removed" not in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "report.json").write_text('{"my": "notes"}')
    assert main([base[0], base[1], "--out", str(other), *base[4:]]) == 2
    assert (other / "report.json").read_text() == '{"my": "notes"}'


def test_a_second_analysis_into_a_folder_being_written_is_refused(tmp_path, tiny_model, capsys):
    from medae.batch.lock import run_lock

    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    out = tmp_path / "out"
    out.mkdir()
    with run_lock(out):  # another run writing there
        code = main(["analyze", str(scan), "--out", str(out), "--model", str(tiny_model), "--device", "cpu"])
    assert code == 2 and "another medae run" in capsys.readouterr().err
    assert not (out / "report.json").exists()


def _anonymised_series(tmp_path):
    """An MR series exported by an anonymiser: no Frame of Reference, no Type 2 patient and study fields."""

    def strip(ds, _k):
        for keyword in ("FrameOfReferenceUID", "StudyTime", "StudyDate", "StudyID", "PatientID", "PatientSex"):
            if keyword in ds:
                delattr(ds, keyword)

    arr = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    write_series(tmp_path / "in", arr, axial_affine((1.0, 1.0, 1.25)), modality="MR", edit=strip)
    return tmp_path / "in"


def test_dicom_results_of_an_anonymised_series_are_written_with_or_without_phi(tmp_path, tiny_model):
    import highdicom as hd
    import pydicom

    folder = _anonymised_series(tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for keep in ([], ["--keep-phi"]):
        out = tmp_path / f"out{len(keep)}"
        cmd = ["analyze", str(folder), "--out", str(out), "--model", str(tiny_model), "--device", "cpu", "--dicom"]
        assert main([*cmd, *keep]) == 0
        pm = pydicom.dcmread(out / "heatmap_pmap.dcm")
        seg = hd.seg.segread(out / "findings_seg.dcm")
        # One frame of reference shared by the results, made up once for the series that had none.
        assert pm.FrameOfReferenceUID == seg.FrameOfReferenceUID and pm.FrameOfReferenceUID
        assert "StudyTime" in pm and pm.StudyTime in ("", None)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the source is never touched


def test_a_failed_dicom_export_keeps_the_analysis(tmp_path, tiny_model, capsys, monkeypatch):
    import medae.io.dicom_export
    from medae.errors import OutputError

    def refuse(*_args, **_kwargs):
        raise OutputError("heatmap_pmap.dcm: the source cannot carry a Parametric Map.")

    monkeypatch.setattr(medae.io.dicom_export, "write_parametric_map", refuse)
    monkeypatch.setattr(medae.io.dicom_export, "write_secondary_capture", refuse)
    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    out = tmp_path / "out"
    status = main(["analyze", str(scan), "--out", str(out), "--model", str(tiny_model), "--device", "cpu", "--dicom"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "DICOM export failed" in err.strip().splitlines()[-1] and "report.json" in err.strip().splitlines()[-1]
    report = json.loads((out / "report.json").read_text())
    assert "score" in report and any("DICOM export failed" in w for w in report["warnings"])
    assert (out / "heatmap.nii.gz").is_file() and not (out / "heatmap_pmap.dcm").exists()
    # The picture was written before its DICOM copy failed: it stays, and is no "output of an earlier run".
    assert (out / "summary.png").is_file() and "earlier run" not in err
    assert any("summary_sc.dcm" in w for w in report["warnings"])
    assert sum("DICOM export failed" in line for line in err.splitlines()) == 1  # said once


def test_report_json_of_analyze_names_a_dicom_series_by_its_pseudonym_unless_keep_phi(tmp_path, tiny_model):
    write_series(tmp_path / "in", phantom((20, 18, 12)), axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.3.9.7")
    args = ["analyze", str(tmp_path / "in"), "--model", str(tiny_model), "--force"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    text = (tmp_path / "a" / "report.json").read_text()
    assert "1.2.3.9.7" not in text and json.loads(text)["input"]["series_uid"].startswith("2.25.")
    assert main([*args, "--out", str(tmp_path / "b"), "--keep-phi"]) == 0
    assert json.loads((tmp_path / "b" / "report.json").read_text())["input"]["series_uid"] == "1.2.3.9.7"


def test_a_source_folder_named_by_its_uid_is_named_by_the_pseudonym(tmp_path, tiny_model):
    folder = tmp_path / "1.2.840.99999.7.7.7.7.7"  # archives often name a series' folder by its UID
    write_series(folder, phantom((20, 18, 12)), axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.840.99999.7.7.7.7.7")
    args = ["analyze", str(folder), "--model", str(tiny_model), "--force", "--out", str(tmp_path / "a")]
    assert main(args) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert "1.2.840.99999" not in json.dumps(report)
    # A series' folder is named for its patient as often as by its UID: it is left out, and the series'
    # pseudonymous UID says which series it was.
    assert "source" not in report["input"] and report["input"]["series_uid"].startswith("2.25.")
    named = tmp_path / "DOE_JOHN_PID12345"
    write_series(named, phantom((20, 18, 12)), axial_affine((1.0, 1.0, 1.25)))
    assert main(["analyze", str(named), "--model", str(tiny_model), "--force", "--out", str(tmp_path / "b")]) == 0
    assert "PID12345" not in (tmp_path / "b" / "report.json").read_text()


def test_a_site_key_makes_every_pseudonym_and_they_still_agree(tmp_path, tiny_model, monkeypatch):
    import pydicom

    from medae.io.deid import Deidentification

    write_series(tmp_path / "in", phantom((20, 18, 12)), axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.3.9.7")
    args = ["analyze", str(tmp_path / "in"), "--model", str(tiny_model), "--force", "--dicom"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    monkeypatch.setenv("MEDAE_PSEUDONYM_KEY", "the site's secret")
    assert main([*args, "--out", str(tmp_path / "keyed")]) == 0
    keyed = Deidentification(pseudonym_key=b"the site's secret")
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())["input"]["series_uid"]
    uid = json.loads((tmp_path / "keyed" / "report.json").read_text())["input"]["series_uid"]
    assert uid == keyed.uid("1.2.3.9.7") != plain
    pmap = pydicom.dcmread(tmp_path / "keyed" / "heatmap_pmap.dcm")
    assert pmap.ReferencedSeriesSequence[0].SeriesInstanceUID == uid
    assert pmap.PatientID == keyed.pseudonym(str(pydicom.dcmread(next((tmp_path / "in").iterdir())).PatientID))[1]
    assert pmap.PatientID != pydicom.dcmread(tmp_path / "plain" / "heatmap_pmap.dcm").PatientID


def test_results_are_never_written_over_the_scan(tmp_path, tiny_model, capsys):
    scan = save_nifti(mr_with_lesion(), tmp_path / "reconstruction.nii.gz")  # a name the results use
    before = scan.read_bytes()
    base = ["analyze", str(scan), "--model", str(tiny_model), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path)]) == 2
    assert "never overwrites a source" in capsys.readouterr().err and scan.read_bytes() == before
    assert main([*base, "--out", str(tmp_path / "out")]) == 0 and scan.read_bytes() == before


def test_maps_of_a_forced_analysis_say_so_in_their_own_header(tmp_path, tiny_model):
    rng = np.random.default_rng(0)
    arr = np.full((48, 40, 24), -1000, np.int16)
    arr[8:40, 6:34, :] = 40 + rng.normal(0, 15, (32, 28, 24)).astype(np.int16)  # a CT, which the MR model refuses
    arr[30:36, 18:24, 10:14] = 900
    save_nifti(Volume(arr, np.diag([-0.8, -0.8, 2.5, 1.0]), "CT"), tmp_path / "ct.nii.gz")
    base = ["analyze", str(tmp_path / "ct.nii.gz"), "--model", str(tiny_model), "--device", "cpu"]
    assert main([*base, "--out", str(tmp_path / "refused")]) == 2
    assert main([*base, "--out", str(tmp_path / "forced"), "--force"]) == 0
    for name in ("heatmap.nii.gz", "findings.nii.gz"):
        descrip = nib.load(tmp_path / "forced" / name).header["descrip"].item().decode()
        assert "FORCED" in descrip and "report.json" in descrip
    report = json.loads((tmp_path / "forced" / "report.json").read_text())
    assert report["forced"] and "left and right cannot be told" in report["side_basis"]
    assert not any("noisy" in w or "air" in w for w in report["warnings"])  # a CT's air is not MR's noise


def test_a_series_is_chosen_by_the_number_info_lists_it_under(tmp_path, tiny_model, capsys):
    """A 64-character UID is no thing to type: the # of `medae info` picks the series too."""
    arr = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    kw = dict(modality="MR", study_uid="1.2.3.9")
    write_series(tmp_path / "in", arr, axial_affine((1.0, 1.0, 1.25)), series_uid="1.2.3.9.1", **kw)
    write_series(tmp_path / "in", arr[::-1].copy(), axial_affine(), series_uid="1.2.3.9.2", series_number=2, **kw)
    base = ["analyze", str(tmp_path / "in"), "--model", str(tiny_model), "--device", "cpu", "--keep-phi"]
    assert main([*base, "--out", str(tmp_path / "none")]) == 2
    assert "#2 1.2.3.9.2" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "in")]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()[2:] if line[:1].isdigit()]
    number = next(row[0] for row in listed if row[-1] == "1.2.3.9.2")
    assert main([*base, "--out", str(tmp_path / "two"), "--series", number]) == 0
    assert json.loads((tmp_path / "two" / "report.json").read_text())["input"]["series_uid"] == "1.2.3.9.2"


def test_a_run_killed_while_its_summary_is_written_is_run_again_as_it_was(tmp_path, tiny_model, monkeypatch):
    """The picture is written after the maps: until the report is, the incomplete one must list it."""
    import medae.viewer.figure as figure

    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    out = tmp_path / "out"
    base = ["analyze", str(scan), "--out", str(out), "--model", str(tiny_model), "--device", "cpu", "--png"]
    real = figure.write_result_summary

    def killed(result, folder, **kw):
        real(result, folder, **kw)
        raise KeyboardInterrupt  # once the picture is on disk, before the report lists it

    monkeypatch.setattr(figure, "write_result_summary", killed)
    assert main(base) == 130
    assert "summary.png" in json.loads((out / "report.json").read_text())["files"].values()
    monkeypatch.setattr(figure, "write_result_summary", real)
    assert main(base) == 0
    report = json.loads((out / "report.json").read_text())
    assert "score" in report and "summary.png" in report["files"].values()


def test_a_map_medae_wrote_is_not_analysed_as_a_scan(tmp_path, tiny_model, capsys):
    """Opened again, a heatmap read as an MR scan and was refused as 'contrast inverted, T2 or FLAIR'."""
    import shutil

    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    base = ["--model", str(tiny_model), "--device", "cpu"]
    assert main(["analyze", str(scan), "--out", str(tmp_path / "a"), *base]) == 0
    for name, said in (("heatmap.nii.gz", "a heatmap"), ("findings.nii.gz", "a findings label map")):
        copy = tmp_path / f"copy_{name}"  # away from its report, as a user might pass it on
        shutil.copy(tmp_path / "a" / name, copy)
        capsys.readouterr()
        assert main(["analyze", str(copy), "--out", str(tmp_path / "b"), *base, "--force"]) == 2
        assert f"this is {said} that medae wrote, not a scan" in capsys.readouterr().err


def test_a_diffusion_series_is_refused_by_its_header_or_its_name(tmp_path, tiny_model, capsys):
    """b=500 and b=1000 images correlate with a T1 enough to pass its contrast check, and got findings."""
    arr = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)

    def diffusion(ds, _k):
        ds.ImageType = ["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE"]
        ds.DiffusionBValue = 1000

    write_series(tmp_path / "dwi", arr, axial_affine((1.0, 1.0, 1.25)), modality="MR", description="T1", edit=diffusion)
    save_nifti(mr_with_lesion(), tmp_path / "sub-01_dwi.nii.gz")
    base = ["--model", str(tiny_model), "--device", "cpu"]
    for source, said in ((tmp_path / "dwi", "b = 1000"), (tmp_path / "sub-01_dwi.nii.gz", "named 'sub-01_dwi.nii.gz'")):
        capsys.readouterr()
        assert main(["analyze", str(source), "--out", str(tmp_path / "out"), *base]) == 2
        err = capsys.readouterr().err
        assert "diffusion" in err and said in err and "--force" in err


def test_the_summary_line_of_an_uncalibrated_model_prints_no_nan(tmp_path, tiny_model, capsys):
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")  # the tiny model has no healthy scores to rank against
    assert (
        main(["analyze", str(tmp_path / "t1.nii.gz"), "--out", str(tmp_path / "out"), "--model", str(tiny_model)]) == 0
    )
    out = capsys.readouterr().out
    assert "nan" not in out and "no percentile: the model is not calibrated" in out
