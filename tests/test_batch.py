"""``medae batch``: every series of a folder, errors recorded without stopping, resume, the run's table."""

from __future__ import annotations

import csv
import hashlib
import json
import threading

import nibabel as nib
import numpy as np
import pytest

from medae.cli import main
from medae.io.nifti import save_nifti
from medae.volume import Volume
from tests.dicom_factory import axial_affine, write_series
from tests.gui.tiny_model import mr_with_lesion


@pytest.fixture
def studies(tmp_path):
    """Two patients: NIfTI files, a DICOM series, an unreadable file, a CT scan and a 4D file."""
    root = tmp_path / "studies"
    (root / "patient_a").mkdir(parents=True)
    (root / "patient_b").mkdir()
    vol = mr_with_lesion()
    save_nifti(vol, root / "patient_a" / "t1.nii.gz")
    save_nifti(
        Volume(vol.array[::-1].copy(), vol.affine @ np.diag([1, 1, 1, 1.0]), "MR"), root / "patient_a" / "t1b.nii"
    )
    write_series(
        root / "patient_b" / "dicom",
        np.clip(vol.array, 0, 1000).astype(np.int16),
        axial_affine((1.0, 1.0, 1.25)),
        modality="MR",
        description="T1 axial",
        series_number=3,
    )
    (root / "patient_b" / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    ct = np.full((48, 40, 24), -1000, np.int16)
    ct[8:40, 6:34, :] = 40
    ct[30:36, 18:24, 10:14] = 900
    save_nifti(Volume(ct, np.diag([-0.8, -0.8, 2.5, 1.0]), "CT"), root / "chest_ct.nii.gz")
    nib.save(nib.Nifti1Image(np.stack([vol.array] * 2, -1), np.diag([1.0, 1, 1, 1])), root / "series4d.nii.gz")
    return root


def _digest(folder):
    return {
        p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _rows(out):
    with open(out / "results.csv", newline="") as fh:
        return {r["folder"]: r for r in csv.DictReader(fh)}


def _batch(studies, out, model, *more):
    return main(["batch", str(studies), "--out", str(out), "--model", str(model), "--device", "cpu", *more])


def test_every_series_is_analysed_and_each_bad_one_is_recorded_without_stopping(studies, tiny_model, tmp_path, capsys):
    before = _digest(studies)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model) == 2  # some series failed: not a clean exit
    rows = _rows(out)
    assert set(rows) == {
        "chest_ct",
        "patient_a__t1",
        "patient_a__t1b",
        "patient_b__broken",
        "patient_b__dicom__3_T1_axial",
        "series4d",
    }
    ok = {k for k, r in rows.items() if r["status"] == "ok"}
    assert ok == {"patient_a__t1", "patient_a__t1b", "patient_b__dicom__3_T1_axial"}
    assert "trained on MR" in rows["chest_ct"]["error"] and "--force" in rows["chest_ct"]["error"]
    # Another kind of scan than the model's is refused, expected in an export, not an error of the run.
    assert rows["chest_ct"]["status"] == "refused" and rows["series4d"]["status"] == "error"
    assert json.loads((out / "chest_ct" / "error.json").read_text())["refused"] is True
    assert "4D" in rows["series4d"]["error"] and "--volume" in rows["series4d"]["error"]
    assert "broken.nii.gz" in rows["patient_b__broken"]["error"]
    for name in ok:  # each result lies on its own input's grid, with its report and picture
        report = json.loads((out / name / "report.json").read_text())
        heat = nib.load(out / name / "heatmap.nii.gz")
        assert list(heat.shape) == report["input"]["shape"]
        np.testing.assert_allclose(heat.affine, report["input"]["affine"], atol=1e-5)
        assert float(rows[name]["score"]) == pytest.approx(report["score"], abs=1e-3)
        assert (out / name / "summary.png").is_file()
        assert int(rows[name]["findings"]) == len(report["findings"])
    assert rows["patient_b__dicom__3_T1_axial"]["series_uid"] and rows["patient_a__t1"]["modality"] == "MR"
    assert json.loads((out / "chest_ct" / "error.json").read_text())["error"] == rows["chest_ct"]["error"]
    page = (out / "report.html").read_text()
    assert all(f'href="{name}/"' in page for name in rows) and "<script" not in page
    assert "Research software, not a medical device: not for diagnostic use." in page
    # Those with findings first, each group most abnormal first, then the errors.
    order = [name for name in sorted(rows, key=lambda n: page.index(f'href="{n}/"'))]
    ranks = [(int(rows[n]["findings"]) == 0, -float(rows[n]["score"])) for n in order[:3]]
    assert ranks == sorted(ranks) and set(order[3:]) == set(rows) - ok
    assert _digest(studies) == before  # the studies are never written to
    assert "3 of 6 series analysed" in capsys.readouterr().out


def test_a_scan_replaced_with_the_same_size_and_time_is_analysed_again(studies, tiny_model, tmp_path):
    import os

    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    path = studies / "patient_a" / "t1b.nii"  # uncompressed: another scan of the same grid has the same size
    st = path.stat()
    vol = mr_with_lesion()
    save_nifti(Volume((vol.array * 0.5).astype(vol.array.dtype), vol.affine, "MR"), path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # a copy that keeps times
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert rows["patient_a__t1b"]["status"] == "ok"  # the key alone would have kept the old result
    assert rows["patient_a__t1"]["status"] == "done earlier"
    assert rows["patient_b__dicom__3_T1_axial"]["status"] == "done earlier"


def test_a_second_run_keeps_what_is_done_and_redoes_what_changed(studies, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    first = _rows(out)
    kept = (out / "patient_a__t1" / "heatmap.nii.gz").stat().st_mtime_ns
    refused = (out / "chest_ct" / "error.json").stat().st_mtime_ns
    vol = mr_with_lesion()
    save_nifti(Volume(vol.array * 0.5, vol.affine, "MR"), studies / "patient_a" / "t1b.nii")  # the scan changed
    (out / "patient_b__dicom__3_T1_axial" / "report.json").unlink()  # a run killed before its report
    capsys.readouterr()
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert (
        rows["patient_a__t1"]["status"] == "done earlier"
        and rows["patient_a__t1"]["score"] == first["patient_a__t1"]["score"]
    )
    assert (out / "patient_a__t1" / "heatmap.nii.gz").stat().st_mtime_ns == kept
    # The refused CT is refused again from its record, not read and aligned again.
    assert rows["chest_ct"]["status"] == "refused" and rows["chest_ct"]["error"] == first["chest_ct"]["error"]
    assert (out / "chest_ct" / "error.json").stat().st_mtime_ns == refused
    assert rows["patient_a__t1b"]["status"] == "ok" and rows["patient_b__dicom__3_T1_axial"]["status"] == "ok"
    assert "[done earlier]" in capsys.readouterr().out
    # Another threshold is another result: nothing is kept.
    _batch(studies, out, tiny_model, "--no-png", "--threshold", "0.7")
    assert {r["status"] for r in _rows(out).values()} == {"ok", "error", "refused"}


def test_results_pseudonymised_under_another_site_key_are_made_again(studies, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    monkeypatch.setenv("MEDAE_PSEUDONYM_KEY", "a new secret")
    _batch(studies, out, tiny_model, "--no-png")
    assert {r["status"] for r in _rows(out).values()} == {"ok", "error", "refused"}
    _batch(studies, out, tiny_model, "--no-png")
    assert {r["status"] for r in _rows(out).values()} == {"done earlier", "error", "refused"}
    _batch(studies, out, tiny_model, "--no-png", "--keep-phi")  # no pseudonyms: the key plays no part
    monkeypatch.setenv("MEDAE_PSEUDONYM_KEY", "another secret")
    _batch(studies, out, tiny_model, "--no-png", "--keep-phi")
    assert {r["status"] for r in _rows(out).values()} == {"done earlier", "error", "refused"}


def test_a_series_whose_dicom_export_failed_keeps_its_score_and_is_tried_again(
    studies, tiny_model, tmp_path, monkeypatch
):
    import medae.io.dicom_export
    from medae.errors import OutputError

    def refuse(*_args, **_kwargs):
        raise OutputError("the share holding the outputs went away.")

    monkeypatch.setattr(medae.io.dicom_export, "write_parametric_map", refuse)
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png", "--dicom")
    row = _rows(out)["patient_a__t1"]
    assert row["status"] == "ok" and row["score"] and "DICOM export failed" in row["warnings"]
    monkeypatch.undo()
    _batch(studies, out, tiny_model, "--no-png", "--dicom")
    assert _rows(out)["patient_a__t1"]["status"] == "ok"  # not "done earlier": its DICOM was missing
    assert (out / "patient_a__t1" / "heatmap_pmap.dcm").is_file()


def test_an_output_folder_inside_the_studies_is_never_taken_for_a_study(studies, tiny_model):
    out = studies / "results"
    _batch(studies, out, tiny_model, "--no-png", "--dicom")
    n = len(_rows(out))
    _batch(studies, out, tiny_model, "--no-png", "--dicom")
    assert len(_rows(out)) == n == 6


def test_a_cancelled_run_leaves_a_table_of_what_was_done_and_resumes(studies, tiny_model, tmp_path):
    from medae.batch import find_items, run_batch
    from medae.errors import CancelledError
    from medae.model import load_model

    model = load_model(tiny_model, device="cpu")
    items = find_items(studies)
    out = tmp_path / "out"
    cancel = threading.Event()
    with pytest.raises(CancelledError):
        run_batch(items, model, out, cancel=cancel, on_row=lambda row: cancel.set())
    statuses = [r["status"] for r in _rows(out).values()]
    assert statuses.count("not run") == len(items) - 1
    rows = run_batch(items, model, out)
    assert "not run" not in {r.status for r in rows}


def test_an_unexpected_failure_in_one_series_is_recorded_and_logged(studies, tiny_model, tmp_path, monkeypatch):
    import medae.analysis

    real = medae.analysis.analyze

    def analyze(volume, model, **kw):
        if "t1b" in str(volume.source):
            raise RuntimeError("simulated fault")
        return real(volume, model, **kw)

    monkeypatch.setattr(medae.analysis, "analyze", analyze)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    assert "unexpected error (RuntimeError: simulated fault)" in rows["patient_a__t1b"]["error"]
    assert rows["patient_a__t1"]["status"] == "ok"
    assert "simulated fault" in (out / "batch.log").read_text() and "Traceback" in (out / "batch.log").read_text()


def test_a_file_instead_of_a_folder_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "one.nii.gz"
    save_nifti(mr_with_lesion(), path)
    assert main(["batch", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "medae analyze" in capsys.readouterr().err


def test_a_dicomdir_is_read_as_the_media_it_indexes(tiny_model, tmp_path):
    import pydicom
    from pydicom.fileset import FileSet

    arr = mr_with_lesion().array.astype(np.int16)
    fs = FileSet()
    for p in write_series(tmp_path / "src", arr, axial_affine(), modality="MR"):
        fs.add(pydicom.dcmread(p))
    media = tmp_path / "cd"
    fs.write(media)
    out = tmp_path / "out"
    assert _batch(media / "DICOMDIR", out, tiny_model, "--no-png") == 0
    (row,) = _rows(out).values()
    assert row["status"] == "ok" and (out / row["folder"] / "heatmap.nii.gz").is_file()


def test_a_dicom_series_report_names_its_own_folder_not_the_archive(tiny_model, tmp_path):
    studies = tmp_path / "archive"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "patient_a" / "t1", arr, axial_affine(), modality="MR")
    write_series(studies / "patient_b" / "t1", arr, axial_affine(), modality="MR")
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png", "--keep-phi") == 0
    sources = sorted(
        json.loads((out / r["folder"] / "report.json").read_text())["input"]["source"] for r in _rows(out).values()
    )
    assert sources == [str(studies / "patient_a" / "t1"), str(studies / "patient_b" / "t1")]


def test_what_a_result_was_made_with_decides_whether_it_is_kept(studies, tiny_model, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    out = tmp_path / "out"
    _batch(studies, out, model, "--no-png")
    _batch(studies, out, model)  # now with the summary images: a result without one is not what was asked
    assert _rows(out)["patient_a__t1"]["status"] == "ok" and (out / "patient_a__t1" / "summary.png").is_file()
    _batch(studies, out, model)
    assert _rows(out)["patient_a__t1"]["status"] == "done earlier"
    card = json.loads((model / "card.json").read_text())
    card["calibration"]["threshold"] = 0.6  # recalibrated: same weights, other findings
    (model / "card.json").write_text(json.dumps(card))
    _batch(studies, out, model)
    assert _rows(out)["patient_a__t1"]["status"] == "ok"


def test_a_series_that_fails_now_keeps_no_results_of_an_earlier_run(studies, tiny_model, tmp_path):
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    (studies / "patient_a" / "t1b.nii").write_bytes(b"not a scan any more")
    report = out / "patient_a__t1" / "report.json"
    report.write_text(json.dumps({**json.loads(report.read_text()), "batch": None}))  # damaged: redone, no crash
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    assert sorted(p.name for p in (out / "patient_a__t1b").iterdir()) == ["error.json"]
    assert _rows(out)["patient_a__t1"]["status"] == "ok"


def test_a_table_that_cannot_be_written_for_a_while_does_not_end_the_run(studies, tiny_model, tmp_path, monkeypatch):
    import medae.batch.runner as runner
    from medae.errors import OutputError

    real, calls = runner.write_tables, []

    def busy(out, rows, info):
        calls.append(1)
        if len(calls) <= 2:  # open in a spreadsheet for a while
            raise OutputError(f"{out / 'results.csv'}: cannot write (Permission denied).")
        return real(out, rows, info)

    monkeypatch.setattr(runner, "write_tables", busy)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    assert len(_rows(out)) == 6 and "Permission denied" in (out / "batch.log").read_text()


def test_table_cells_a_spreadsheet_would_run_are_quoted(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    studies.mkdir()
    save_nifti(mr_with_lesion(), studies / "=HYPERLINK(1).nii.gz")
    _batch(studies, tmp_path / "out", tiny_model, "--no-png")
    (row,) = _rows(tmp_path / "out").values()
    assert row["input"] == "'=HYPERLINK(1).nii.gz" and row["status"] == "ok"
    from medae.batch.table import _cell

    # medae's own numbers stay numbers: a left-hemisphere centroid begins with a minus.
    assert _cell("-33.5 14.2 19.6") == "-33.5 14.2 19.6" and _cell("-2.5") == "-2.5"
    assert _cell("-cmd") == "'-cmd" and _cell("+1 2") == "'+1 2"


def test_linked_unreadable_hidden_and_earlier_result_folders(studies, tiny_model, tmp_path, monkeypatch):
    import os

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    save_nifti(mr_with_lesion(), elsewhere / "linked.nii.gz")
    (studies / "patient_c").symlink_to(elsewhere, target_is_directory=True)  # a study linked into place
    (elsewhere / "loop").symlink_to(studies, target_is_directory=True)  # and a link loop: the walk must end
    (studies / "patient_a" / "._t1.nii.gz").write_bytes(b"macOS companion")  # hidden: not a study
    (studies / ".Trashes").mkdir()
    save_nifti(mr_with_lesion(), studies / ".Trashes" / "old.nii.gz")
    _batch(studies, studies / "results_v1", tiny_model, "--no-png", "--dicom")  # results among the studies
    locked = studies / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.realpath(path) == str(locked.resolve()):  # as a folder without read permission
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    assert (
        rows["patient_c__linked"]["status"] == "ok" and rows["patient_c__linked"]["input"] == "patient_c/linked.nii.gz"
    )
    assert "Permission denied" in rows["locked"]["error"] and "nothing in it was analysed" in rows["locked"]["error"]
    assert not [name for name in rows if "results_v1" in name or "Trashes" in name or name.startswith("_")]
    assert len(rows) == 8  # the six of the fixture, the linked study and the locked folder


def test_names_keep_their_letters_and_the_output_folder_must_not_hold_the_studies(tmp_path, tiny_model, capsys):
    studies = tmp_path / "studies"
    for name in ("Möller", "Müller"):
        (studies / name).mkdir(parents=True)
        save_nifti(mr_with_lesion(), studies / name / "t1.nii.gz")
    _batch(studies, tmp_path / "out", tiny_model, "--no-png")
    assert set(_rows(tmp_path / "out")) == {"Möller__t1", "Müller__t1"}
    assert _batch(studies, tmp_path, tiny_model) == 2
    assert "holds it" in capsys.readouterr().err


def test_temporary_files_of_a_killed_run_are_cleared(studies, tiny_model, tmp_path):
    import os
    import time

    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    old = time.time() - 3600
    leftovers = [out / ".results.ab12cd34.csv", out / "patient_a__t1" / ".heatmap.nii.zz99yy88.nii.gz"]
    for path in leftovers:
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    fresh = out / "patient_a__t1b" / ".findings.nii.qq11ww22.nii.gz"  # left seconds ago, in a series done
    fresh.write_bytes(b"half")
    (studies / "patient_a" / "t1.nii.gz").touch()  # changed: redone
    _batch(studies, out, tiny_model, "--no-png")
    # The run holds the folder's lock, so no other process can be writing: every leftover goes, however
    # fresh, also in series that were done earlier and not redone.
    assert not any(p.exists() for p in leftovers) and not fresh.exists()


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_runs(tmp_path, capsys):
    import json
    import os
    import socket

    from medae.batch.lock import LOCK_NAME, run_lock
    from medae.errors import OutputError

    out = tmp_path / "out"
    out.mkdir()
    with run_lock(out):
        assert (out / LOCK_NAME).exists()
        with pytest.raises(OutputError, match="another medae run"):
            with run_lock(out):
                pass
    assert not (out / LOCK_NAME).exists()
    # A lock left by a run that was killed (its process is gone) is taken over.
    (out / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    with run_lock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    # ... also when this process has its number (a container restarted after its run was killed: PID 1 again).
    (out / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": 1}))
    with run_lock(out):
        assert json.loads((out / LOCK_NAME).read_text())["started"] != 1
    # A lock file made a moment ago, not yet locked and named by the run making it, is that run's.
    import fcntl
    import threading

    (out / LOCK_NAME).write_text("")

    def taken():  # the other run finishes taking it
        fd = os.open(out / LOCK_NAME, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        held.append(fd)

    held: list[int] = []
    threading.Timer(0.3, taken).start()
    with pytest.raises(OutputError, match="another medae run"):
        with run_lock(out):
            pass
    os.close(held[0])


def test_without_flock_a_live_run_is_known_by_its_process_and_start_time(tmp_path, monkeypatch):
    import json
    import os
    import socket

    from medae.batch import lock

    monkeypatch.setattr(lock, "flock", lambda fd, exclusive=True, wait=False: None)  # a file system without flock
    path = tmp_path / lock.LOCK_NAME
    parent = {"pid": os.getppid(), "host": socket.gethostname(), "started": lock._start_time(os.getppid())}
    path.write_text(json.dumps(parent))
    assert lock._held(path, parent)  # a live process, the one that wrote the lock
    gone = dict(parent, started=(parent["started"] or 0) + 1)
    assert not lock._held(path, gone)  # its number now belongs to another process


def test_progress_says_which_series_of_how_many(studies, tiny_model, tmp_path):
    from medae.batch import find_items, run_batch
    from medae.model import load_model

    messages = []
    items = find_items(studies)
    run_batch(items, load_model(tiny_model, device="cpu"), tmp_path / "out", progress=lambda f, m: messages.append(m))
    ok = next(it for it in items if it.name == "patient_a__t1")
    n = items.index(ok) + 1
    steps = [m for m in messages if m.startswith(f"{n}/{len(items)} {ok.name}: ")]
    assert len(steps) > 2 and messages[-1] == "Done"
    # A series' own last step is its writing, not the analysis's "Done" while results are still written.
    assert steps[-1].endswith(": Writing results"), steps[-3:]


def test_a_changed_data_file_beside_its_header_is_analysed_again(tmp_path, tiny_model):
    import os

    import SimpleITK as sitk

    studies = tmp_path / "studies"
    studies.mkdir()
    vol = mr_with_lesion()
    img = sitk.GetImageFromArray(np.ascontiguousarray(vol.array.transpose(2, 1, 0)).astype(np.float32))
    img.SetSpacing(tuple(float(v) for v in vol.spacing))
    sitk.WriteImage(img, str(studies / "scan.mhd"))  # the header, and the voxels in scan.raw
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    assert _rows(out)["scan"]["status"] == "ok"
    _batch(studies, out, tiny_model, "--no-png")
    assert _rows(out)["scan"]["status"] == "done earlier"
    raw = next(p for p in studies.iterdir() if p.suffix in (".raw", ".zraw"))
    st = raw.stat()
    with open(raw, "r+b") as fh:  # the voxels were rewritten (the same size and time); the header was not
        fh.seek(st.st_size // 2)
        fh.write(b"\x00\x00\x80\x3f" * 64)
    os.utime(raw, ns=(st.st_atime_ns, st.st_mtime_ns))
    _batch(studies, out, tiny_model, "--no-png")
    assert _rows(out)["scan"]["status"] == "ok"


def test_a_name_that_is_not_utf8_on_disk_and_a_fifo_do_not_stop_the_run(tmp_path, tiny_model):
    import os

    studies = tmp_path / "studies"
    studies.mkdir()
    latin1 = os.fsdecode(b"M\xfcller.nii.gz")  # as copied from an old Windows share
    save_nifti(mr_with_lesion(), studies / latin1)
    save_nifti(mr_with_lesion(), studies / "z.nii.gz")
    os.mkfifo(studies / "pipe.nii.gz")  # opening it to read a header would wait forever
    done = []
    run = threading.Thread(target=lambda: done.append(_batch(studies, tmp_path / "out", tiny_model, "--no-png")))
    run.start()
    run.join(timeout=300)
    assert done == [0], "the run hung or failed"
    raw = (tmp_path / "out" / "results.csv").read_bytes()
    assert b"M\xfcller" in raw and b"z.nii.gz" in raw  # the name as it is on disk, and the run went on


def test_without_keep_phi_the_series_uid_is_the_pseudonymous_one_everywhere(studies, tiny_model, tmp_path):
    import pydicom

    from medae.io.deid import Deidentification

    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    dicom = next(p for p in (studies / "patient_b" / "dicom").iterdir())
    original = str(pydicom.dcmread(dicom, stop_before_pixels=True).SeriesInstanceUID)
    mapped = Deidentification().uid(original)
    row = next(r for name, r in _rows(out).items() if name.startswith("patient_b__dicom"))
    assert row["series_uid"] == mapped
    (report,) = (out / row["folder"]).glob("report.json")
    text = report.read_text()
    assert original not in text and json.loads(text)["input"]["series_uid"] == mapped
    assert original not in (out / "results.csv").read_text() + (out / "report.html").read_text()


def test_a_result_whose_files_went_missing_is_made_again(studies, tiny_model, tmp_path):
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    (out / "patient_a__t1" / "heatmap.nii.gz").unlink()
    (out / "patient_a__t1b" / "findings.nii.gz").write_bytes(b"")
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert rows["patient_a__t1"]["status"] == "ok" and rows["patient_a__t1b"]["status"] == "ok"  # redone
    assert rows["chest_ct"]["status"] == "refused"
    assert nib.load(out / "patient_a__t1" / "heatmap.nii.gz").shape


def test_a_terminated_run_says_so_keeps_its_table_and_resumes(studies, tiny_model, tmp_path, capsys, monkeypatch):
    import os
    import signal

    import medae.batch

    real = medae.batch.run_batch
    before = signal.getsignal(signal.SIGTERM)

    def killed_after_first(items, model, out, options, **kw):
        on_row = kw["on_row"]

        def then_kill(row):
            on_row(row)
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a scheduler's stop would

        return real(items, model, out, options, **{**kw, "on_row": then_kill})

    monkeypatch.setattr(medae.batch, "run_batch", killed_after_first)
    out = tmp_path / "out"
    assert main(["batch", str(studies), "--out", str(out), "--model", str(tiny_model), "--no-png"]) == 143
    err = capsys.readouterr().err
    assert "Stopped after 1 of 6 series" in err and "again to resume" in err
    assert "termination signal" in err
    statuses = [r["status"] for r in _rows(out).values()]
    assert statuses.count("not run") == 5
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back
    monkeypatch.setattr(medae.batch, "run_batch", real)
    assert main(["batch", str(studies), "--out", str(out), "--model", str(tiny_model), "--no-png"]) == 2
    assert "not run" not in {r["status"] for r in _rows(out).values()}


def test_a_new_scan_of_the_same_name_does_not_take_an_earlier_result_folder(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    studies.mkdir()
    vol = mr_with_lesion()
    save_nifti(vol, studies / "t1.nii.gz")
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    assert set(_rows(out)) == {"t1"}
    report = (out / "t1" / "report.json").read_bytes()
    # A second file that sorts first and makes the same name ("t1"), as an uncompressed copy would.
    save_nifti(Volume(vol.array * 0.5, vol.affine, "MR"), studies / "t1.nii")
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert rows["t1"]["status"] == "done earlier" and (out / "t1" / "report.json").read_bytes() == report
    assert rows["t1_2"]["status"] == "ok"
    # Without --keep-phi the series' own report names its input by a keyed token of the path (folder names
    # often name the patient); the run's table keeps the path, to find the input by.
    from medae.io.deid import path_token

    assert json.loads((out / "t1_2" / "report.json").read_text())["batch"]["input"] == path_token("t1.nii")
    assert rows["t1_2"]["input"] == "t1.nii"


def test_a_renamed_study_folder_keeps_its_results(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    vol = mr_with_lesion()
    series = np.clip(vol.array, 0, 1000).astype(np.int16)
    write_series(studies / "a", series, axial_affine((1.0, 1.0, 1.25)), modality="MR", description="T1")
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    (name,) = _rows(out)
    (studies / "a").rename(studies / "c")  # the same files under another name: found by the series itself
    write_series(studies / "b", series, axial_affine((1.0, 1.0, 1.25)), modality="MR", description="T1")
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert rows[name]["status"] == "done earlier" and len(rows) == 2
    assert [r["status"] for n, r in rows.items() if n != name] == ["ok"]


def test_a_scan_with_a_finding_is_listed_before_a_higher_score_without_one():
    from medae.batch.table import Row, render_html

    def row(folder, score, findings, status="ok"):
        top = {"top_volume_ml": 1.0, "top_peak": 10.0} if findings else {}
        return Row(folder, folder, "", "MR", "T1", status, score=score, findings=findings, **top)

    rows = [row("healthy_high", 9.5, 0), row("small_lesion", 7.0, 1), row("healthy_low", 4.0, 0)]
    rows += [row("broken", None, None, "error"), row("lesion", 12.0, 2)]
    page = render_html(rows, {})
    order = sorted((r.folder for r in rows), key=lambda n: page.index(f'href="{n}/"'))
    assert order == ["lesion", "small_lesion", "healthy_high", "healthy_low", "broken"]


def test_names_not_valid_utf8_are_listed_and_analysed(tiny_model, tmp_path):
    import os
    import subprocess
    import sys

    studies = tmp_path / "in"
    studies.mkdir()
    name = os.fsdecode(b"M\xfcller_T1.nii.gz")  # a Latin-1 name from an old CD: surrogates in Python
    save_nifti(mr_with_lesion(), studies / name)
    write_series(
        studies / os.fsdecode(b"Sch\xe4del"), mr_with_lesion().array.astype(np.int16), axial_affine(), modality="MR"
    )
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8", errors="surrogateescape")))
    assert [r["status"] for r in rows] == ["ok", "ok"] and name in {r["input"] for r in rows}
    # A console that takes only valid UTF-8 (a desktop terminal) still gets the listing, the name as its bytes.
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    run = subprocess.run([sys.executable, "-m", "medae", "info", str(studies)], capture_output=True, env=env)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert b"M\xfcller_T1.nii.gz" in run.stdout and b"Traceback" not in run.stderr


@pytest.mark.parametrize("damage", ["[]", "null", '{"warnings": null}'])
def test_a_damaged_earlier_report_is_analysed_again_not_the_end_of_the_run(tiny_model, tmp_path, damage):
    studies = tmp_path / "in"
    (studies / "a").mkdir(parents=True)
    save_nifti(mr_with_lesion(), studies / "a" / "t1.nii.gz")
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    report = out / "a__t1" / "report.json"
    if damage.startswith("{"):
        data = json.loads(report.read_text())
        data["warnings"] = None
        report.write_text(json.dumps(data))
    else:
        report.write_text(damage)
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    assert _rows(out)["a__t1"]["status"] == "ok"


def test_errors_name_a_series_by_its_pseudonymous_uid_unless_asked(tiny_model, tmp_path):
    studies = tmp_path / "in"
    uid = "1.2.826.0.1.3680043.8.498.123456789012345678"
    write_series(
        studies / "s", mr_with_lesion().array.astype(np.int16), axial_affine(), modality="MR", series_uid=uid, skip=[10]
    )
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2  # a missing slice: an error that names the series
    texts = [(out / "results.csv").read_text(), (out / "report.html").read_text()]
    texts += [p.read_text() for p in out.rglob("error.json")]
    assert all(uid not in t for t in texts) and "missing slice" in texts[0]
    assert _batch(studies, tmp_path / "phi", tiny_model, "--no-png", "--keep-phi") == 2
    assert uid in (tmp_path / "phi" / "results.csv").read_text()


def test_broken_links_are_rows_and_an_output_folder_in_a_study_keeps_its_scan(tiny_model, tmp_path):
    studies = tmp_path / "in"
    (studies / "a").mkdir(parents=True)
    save_nifti(mr_with_lesion(), studies / "a" / "t1.nii.gz")
    (studies / "a" / "gone.nii.gz").symlink_to(studies / "a" / "nowhere.nii.gz")
    (studies / "a" / "loop.nii.gz").symlink_to(studies / "a" / "loop.nii.gz")
    assert _batch(studies, studies / "a", tiny_model, "--no-png") == 2  # results written into a study's folder
    rows = _rows(studies / "a")
    assert rows["a__t1"]["status"] == "ok"  # its scan is still a study, not taken for output
    assert {rows[k]["status"] for k in ("a__gone", "a__loop")} == {"error"}
    assert "link to a file that does not exist" in rows["a__loop"]["error"]


def test_a_damaged_dicom_file_is_its_own_row_and_not_named_in_another_patients_series(tiny_model, tmp_path):
    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "Smith" / "t1", arr, axial_affine(), modality="MR")
    other = write_series(studies / "Jones", arr[:, :, :1], axial_affine(), modality="MR")[0]
    other.write_bytes(other.read_bytes()[:-500])  # cut short: the pixel data is incomplete
    extra = studies / "Smith" / "t1" / "extra.dcm"  # a damaged file beside Smith's series: named there, no row
    extra.write_bytes(other.read_bytes())
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    (smith,) = [r for k, r in rows.items() if k.startswith("Smith")]
    (jones,) = [r for k, r in rows.items() if k.startswith("Jones")]
    assert smith["status"] == "ok" and other.name not in smith["warnings"] and "extra.dcm" in smith["warnings"]
    assert jones["status"] == "error" and "cannot be read" in jones["error"] and len(rows) == 2


def test_an_image_series_whose_every_file_is_refused_is_a_row_with_its_reason(tiny_model, tmp_path):
    import pydicom

    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "Smith", arr, axial_affine(), modality="MR")
    for path in write_series(studies / "Jones", arr, axial_affine(), modality="MR"):
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [1, 0, 0, 0.2, 1, 0]  # rows and columns not perpendicular
        ds.save_as(path, enforce_file_format=True)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    (jones,) = [r for k, r in rows.items() if k.startswith("Jones")]
    assert (
        jones["status"] == "error" and "not perpendicular" in jones["error"] and "Export the series" in jones["error"]
    )
    assert [r["status"] for k, r in rows.items() if k.startswith("Smith")] == ["ok"]


def test_a_file_cut_short_in_one_patients_series_is_not_a_warning_on_anothers(tiny_model, tmp_path):
    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "Smith", arr, axial_affine(), modality="MR")
    cut = write_series(studies / "Jones", arr, axial_affine(), modality="MR")[5]
    cut.write_bytes(cut.read_bytes()[:-500])  # its header, naming Jones' series, is whole
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    (smith,) = [r for k, r in rows.items() if k.startswith("Smith")]
    (jones,) = [r for k, r in rows.items() if k.startswith("Jones")]
    assert smith["status"] == "ok" and "could not be read" not in smith["warnings"], smith["warnings"]
    assert cut.name in jones["warnings"] + jones["error"]


def test_a_slice_still_being_copied_is_named_not_dropped_silently(tiny_model, tmp_path):
    studies = tmp_path / "in"
    paths = write_series(studies / "s", mr_with_lesion().array.astype(np.int16), axial_affine(), modality="MR")
    last = paths[-1]
    import pydicom

    ds = pydicom.dcmread(last)
    del ds.PixelData  # the header arrived, the pixels not yet
    ds.save_as(last, enforce_file_format=True)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    (row,) = _rows(out).values()
    assert (
        "left out 1 file(s) of this series that hold no pixel data" in row["warnings"] and last.name in row["warnings"]
    )


def test_uids_in_report_warnings_are_pseudonymised_once():
    from medae.analysis.outputs import deidentify_report
    from medae.io.deid import Deidentification, without_uids

    uid = "1.2.826.0.1.3680043.8.498.99604935208586372500745180387823115460"
    report = {
        "input": {"series_uid": uid, "series_description": "Doe^Jane T1"},  # typed at the console
        "warnings": [f"part 1 of series {uid}, which was split", "spacing 1.1.2"],
    }
    deidentify_report(report, keep_phi=False)
    assert "series_description" not in report["input"]
    pseudonym = Deidentification().uid(uid)
    assert report["warnings"] == [f"part 1 of series {pseudonym}, which was split", "spacing 1.1.2"]
    assert report["input"]["series_uid"] == pseudonym and without_uids("no uid here 3.5 mm") == "no uid here 3.5 mm"
    uuid_uid = "2.25.123456789012345678901234567890"  # a UUID-derived UID: three groups only
    text = without_uids(f"series {uid}. Files MR.{uid}.dcm and {uuid_uid} on 2024.01.02")
    assert uid not in text and uuid_uid not in text and text.endswith(" on 2024.01.02")
    assert f"series {pseudonym}. Files MR.{pseudonym}.dcm" in text
    # The standard's own UIDs name no patient and stay readable (a SOP class, a transfer syntax).
    sr, jpeg = "1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.1.2.4.70"
    assert (
        without_uids(f"a structured report (SOP class {sr}) in {jpeg}")
        == f"a structured report (SOP class {sr}) in {jpeg}"
    )


def test_a_vendors_transfer_syntax_stays_readable_without_keep_phi(tiny_model, tmp_path):
    import pydicom

    from medae.io.deid import Deidentification

    private = "1.2.840.113619.5.2"  # GE's implicit little-endian with big-endian pixels: a vendor's own syntax
    studies = tmp_path / "in"
    arr = (mr_with_lesion().array[:, :, :8] * 100).astype(np.int16)
    for p in write_series(studies / "ge", arr, axial_affine(), modality="MR"):
        ds = pydicom.dcmread(p)
        ds.file_meta.TransferSyntaxUID = private
        ds.save_as(p, enforce_file_format=True, implicit_vr=False, little_endian=True)
    series = str(ds.SeriesInstanceUID)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    (row,) = _rows(out).values()
    # The reader must see which syntax to convert from; the series' own UID stays pseudonymous.
    assert f"transfer syntax {private}" in row["error"] and Deidentification().uid(private) not in row["error"]
    assert series not in (out / "results.csv").read_text()


def test_folder_names_never_take_the_runs_own_files_nor_exceed_the_file_systems_limit(tiny_model, tmp_path):
    from medae.batch.items import _name, unique_names

    assert unique_names(["results.csv", "Report.html", "a"]) == ["results.csv_2", "Report.html_2", "a"]
    long = "脳" * 90 + "/" + "画像" * 30 + ".nii.gz"  # 150 characters of CJK: 450 bytes in UTF-8
    assert len(_name(long).encode("utf-8")) <= 200
    studies = tmp_path / "in"
    studies.mkdir()
    save_nifti(mr_with_lesion(), studies / "results.csv.nii.gz")  # a scan named like the run's table
    (studies / ("脳" * 80)).mkdir()
    save_nifti(mr_with_lesion(), studies / ("脳" * 80) / ("画像" * 30 + ".nii.gz"))
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    assert {r["status"] for r in _rows(out).values()} == {"ok"} and (out / "report.html").is_file()


def test_a_split_series_keeps_one_pseudonym_in_the_table_and_its_report(tiny_model, tmp_path):
    studies = tmp_path / "in"
    uid = "1.2.826.0.1.3680043.8.498.555666777888999000111"
    arr = mr_with_lesion().array.astype(np.int16)

    def echo(n):
        def edit(ds, k):
            ds.EchoNumbers, ds.EchoTime = n, 10.0 * n

        return edit

    write_series(studies / "s", arr, axial_affine(), modality="MR", series_uid=uid, edit=echo(1))
    write_series(studies / "s", arr, axial_affine(), modality="MR", series_uid=uid, prefix="b", edit=echo(2))
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    from medae.io.deid import Deidentification

    pseudonym = Deidentification().uid(uid)
    rows = list(_rows(out).values())
    assert sorted(r["series_uid"] for r in rows) == [pseudonym + ".1", pseudonym + ".2"]
    for report in out.rglob("report.json"):
        data = json.loads(report.read_text())
        assert data["input"]["series_uid"] == pseudonym and uid not in report.read_text()


def test_a_resumed_run_marks_every_series_not_run_before_it_touches_a_folder(
    studies, tiny_model, tmp_path, monkeypatch
):
    # A kill during the first series must not leave the earlier run's table describing replaced results.
    from medae.batch import runner

    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    seen = []
    real = runner._run_item

    def first(item, *args, **kwargs):
        if not seen:
            seen.append({r["status"] for r in _rows(out).values()})
            html = (out / "report.html").read_text(encoding="utf-8")
            seen.append("not run yet" in html and "Run the same command" in html)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(runner, "_run_item", first)
    _batch(studies, out, tiny_model, "--no-png", "--threshold", "10")
    assert seen == [{"not run"}, True]
    assert "Findings are regions above 10 z" in (out / "report.html").read_text(encoding="utf-8")


def test_empty_and_fake_dicom_files_are_rows_not_passed_over(tiny_model, tmp_path):
    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "Smith", arr, axial_affine(), modality="MR")
    (studies / "Jones").mkdir()
    (studies / "Jones" / "IM0001").write_bytes(b"")  # a copy that failed
    (studies / "Brown").mkdir()
    (studies / "Brown" / "IM0001.dcm").write_text("<html>Session expired</html>" * 10)  # a web page saved as .dcm
    (studies / "Smith" / "notes.txt").write_text("")  # an empty file that claims to be no scan stays unlisted
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    (jones,) = [r for k, r in rows.items() if k.startswith("Jones")]
    (brown,) = [r for k, r in rows.items() if k.startswith("Brown")]
    assert "empty (0 bytes)" in jones["error"] and "named as DICOM, but its content is another kind" in brown["error"]
    (smith,) = [r for k, r in rows.items() if k.startswith("Smith")]
    assert smith["status"] == "ok" and "notes.txt" not in smith["warnings"]


def test_folder_names_stay_out_of_each_series_outputs_without_keep_phi(tiny_model, tmp_path, monkeypatch):
    import pydicom

    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    paths = write_series(studies / "DOE^JOHN_PID77123" / "T1", arr, axial_affine(), modality="MR")
    (studies / "resent").mkdir()
    for p in paths:  # the study sent twice: the copies' warning names both folders
        (studies / "resent" / p.name).write_bytes(p.read_bytes())
    save_nifti(mr_with_lesion(), studies / "DOE^JOHN_PID77123" / "t1.nii.gz")
    (studies / "DOE^JOHN_PID77123" / "broken.nii.gz").write_bytes(b"not a scan")
    for keep, out in ((False, tmp_path / "deid"), (True, tmp_path / "phi")):
        _batch(studies, out, tiny_model, "--dicom", *(["--keep-phi"] if keep else []))
        for f in out.rglob("*"):
            if f.is_file() and f.parent != out and f.suffix in (".json", ".dcm", ".png"):
                held = b"PID77123" in f.read_bytes()
                assert held == (keep and f.name in ("report.json", "error.json")), (keep, f)
        for capture in out.rglob("summary_sc.dcm"):
            assert pydicom.dcmread(capture).BurnedInAnnotation == "NO"
        rows = _rows(out)
        assert any("second cop" in r["warnings"] for r in rows.values())
    # A run resumed keeps what it made, tokens and all.
    assert _batch(studies, tmp_path / "deid", tiny_model, "--dicom") == 2
    assert {r["status"] for r in _rows(tmp_path / "deid").values()} == {"done earlier", "error"}
    # The same studies given by a relative path, and a patient's folder reached through a link.
    linked = tmp_path / "linked"
    (linked / "SMITH^ANN_PID5678").mkdir(parents=True)
    save_nifti(mr_with_lesion(), linked / "SMITH^ANN_PID5678" / "t1.nii.gz")
    (linked / "SMITH^ANN_PID5678" / "broken.nii.gz").write_bytes(b"not a scan")
    (studies / "more").symlink_to(linked, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert main(["batch", "in", "--out", "rel", "--model", str(tiny_model), "--device", "cpu", "--no-png"]) == 2
    for f in (tmp_path / "rel").rglob("*.json"):
        text = f.read_text(encoding="utf-8")
        assert "PID77123" not in text and "PID5678" not in text, f


def test_a_colour_map_in_an_mr_study_is_no_failed_series(tiny_model, tmp_path):
    import pydicom

    studies = tmp_path / "in"
    arr = mr_with_lesion().array.astype(np.int16)
    write_series(studies / "Smith" / "t1", arr, axial_affine(), modality="MR")
    for path in write_series(studies / "Smith" / "fa", arr[:8, :8, :3], axial_affine(), modality="MR"):
        ds = pydicom.dcmread(path)  # a DTI colour FA map: RGB pixels in an MR series
        rgb = np.repeat(np.zeros((ds.Rows, ds.Columns), np.uint8)[..., None], 3, axis=2)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit, ds.PixelRepresentation = 7, 0
        ds.PixelData = rgb.tobytes()
        ds.save_as(path, enforce_file_format=True)
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    assert [r["status"] for r in _rows(out).values()] == ["ok"]


def test_a_scan_named_like_an_output_beside_a_medae_report_is_still_a_study(tmp_path):
    """Only the files the report lists are results; a scan of the user's called reconstruction.nii.gz is a scan."""
    from medae.batch import find_items
    from medae.volume import Volume

    folder = tmp_path / "studies" / "p1"
    vol = Volume(np.random.default_rng(0).random((20, 20, 12)).astype(np.float32), np.eye(4), "MR")
    for name in ("t1.nii.gz", "heatmap.nii.gz", "reconstruction.nii.gz"):
        save_nifti(vol, folder / name)
    (folder / "report.json").write_text(json.dumps({"score": 1.0, "files": {"heatmap": "heatmap.nii.gz"}}))
    names = sorted(item.where for item in find_items(tmp_path / "studies"))
    assert names == ["p1/reconstruction.nii.gz", "p1/t1.nii.gz"]


def test_a_zipped_study_is_a_row_that_says_to_unpack_it(tmp_path, tiny_model):
    import zipfile

    studies = tmp_path / "studies"
    save_nifti(mr_with_lesion(), studies / "p1" / "t1.nii.gz")
    with zipfile.ZipFile(studies / "p2_export.zip", "w") as z:
        z.writestr("IMG0001", b"DICM")
    assert _batch(studies, tmp_path / "out", tiny_model, "--no-png") == 2
    rows = _rows(tmp_path / "out")
    (row,) = [r for r in rows.values() if r["status"] == "error"]
    assert "an archive" in row["error"] and "Unpack it" in row["error"]


def test_long_paths_are_shortened_so_that_one_patients_series_still_begin_alike():
    from medae.batch.items import _name

    patient = "PAT_Papadopoulou-Theodora-Evangelia_LONGID-" + "1234567890" * 5
    names = [_name(f"{patient}/STUDY_1/{series}") for series in ("SER_0003_T1_MPRAGE_sagittal_1mm", "SER_7_DWI")]
    assert all(len(n) <= 100 and n.startswith("PAT_Papadopoulou-Theodora") for n in names)
    assert names[0].endswith("SER_0003_T1_MPRAGE_sagittal_1mm") and names[1].endswith("STUDY_1__SER_7_DWI")
    assert len(_name("山田" * 80 + "/x").encode()) <= 200
    deep = _name("/".join(["PATIENT_0042", *(f"level{i:02d}" for i in range(60)), "deep.nii.gz"]))
    assert len(deep) <= 100 and deep.startswith("PATIENT_0042__") and deep.endswith("__level59__deep")


def test_a_series_moved_or_copied_elsewhere_keeps_its_one_folder(tmp_path, tiny_model):
    import shutil

    studies = tmp_path / "studies"
    vol = mr_with_lesion()
    series = np.clip(vol.array, 0, 1000).astype(np.int16)
    write_series(studies / "p1" / "a", series, axial_affine((1.0, 1.0, 1.25)), modality="MR", description="T1")
    save_nifti(vol, studies / "p2" / "t1.nii.gz")
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    first = _rows(out)
    before = _digest(out / "p1__a__1_T1"), _digest(out / "p2__t1")
    # The series copied elsewhere (its files get new times) and the original deleted; the file moved into
    # another patient's folder (its path is its identity).
    shutil.copytree(studies / "p1", studies / "p1 copy", copy_function=shutil.copy)
    shutil.rmtree(studies / "p1")
    (studies / "p3").mkdir()
    (studies / "p2" / "t1.nii.gz").rename(studies / "p3" / "t1.nii.gz")
    for _run in range(2):  # and again: still the same folders
        assert _batch(studies, out, tiny_model, "--no-png") == 0
        rows = _rows(out)
        assert {n: (r["input"], r["status"]) for n, r in rows.items()} == {
            "p1__a__1_T1": ("p1 copy/a", "done earlier"),
            "p2__t1": ("p3/t1.nii.gz", "done earlier"),
        }
        assert rows["p2__t1"]["score"] == first["p2__t1"]["score"]
        assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["p1__a__1_T1", "p2__t1"]
        assert (_digest(out / "p1__a__1_T1"), _digest(out / "p2__t1")) == before


def test_an_earlier_result_whose_input_is_gone_is_listed_and_kept(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    studies.mkdir()
    vol = mr_with_lesion()
    save_nifti(vol, studies / "t1.nii.gz")
    save_nifti(Volume(vol.array[::-1].copy(), vol.affine, "MR"), studies / "t2.nii.gz")
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    kept = _digest(out / "t1")
    (studies / "t1.nii.gz").unlink()
    # Another scan whose folder name would be the deleted one's: it must not replace that result.
    save_nifti(Volume(vol.array * 0.5, vol.affine, "MR"), studies / "t1.nii")
    assert _batch(studies, out, tiny_model, "--no-png") == 0
    rows = _rows(out)
    assert {n: r["status"] for n, r in rows.items()} == {"t1": "input not found", "t1_2": "ok", "t2": "done earlier"}
    assert "no longer found" in rows["t1"]["error"] and rows["t1"]["input"] == "" and rows["t1"]["score"] == ""
    assert _digest(out / "t1") == kept
    page = (out / "report.html").read_text()
    assert "1 earlier result folder(s) of inputs no longer found" in page and 'href="t1/"' in page


def test_a_series_deleted_beside_another_of_the_same_name_is_listed_not_left_unexplained(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    series = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    for prefix, array in (("a_", series), ("b_", series[::-1].copy())):  # one folder, the same number and name
        write_series(studies / "mixed", array, axial_affine((1.0, 1.0, 1.25)), modality="MR", prefix=prefix)
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    names = sorted(_rows(out))
    assert len(names) == 2
    first = {n: json.loads((out / n / "report.json").read_text())["batch"]["content_sha256"] for n in names}
    for f in (studies / "mixed").glob("a_*"):
        f.unlink()
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert sorted(rows) == names and sorted(r["status"] for r in rows.values()) == ["done earlier", "input not found"]
    gone = next(n for n, r in rows.items() if r["status"] == "input not found")
    assert json.loads((out / gone / "report.json").read_text())["batch"]["content_sha256"] == first[gone]


def test_a_folder_of_unreadable_dicom_files_is_one_row_and_a_gone_error_leaves_no_folder(tiny_model, tmp_path):
    studies = tmp_path / "in"
    save_nifti(mr_with_lesion(), studies / "ok.nii.gz")
    (studies / "locked").mkdir()
    for i in range(5):  # a series whose every slice fails (here cut to nothing), not a row per slice
        (studies / "locked" / f"IM{i:04d}.dcm").write_bytes(b"")
    (studies / "locked" / "notes.dcm").write_text("<html>Session expired</html>" * 10)  # failing otherwise
    (studies / "one").mkdir()
    (studies / "one" / "IM0001.dcm").write_bytes(b"")
    (studies / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    out = tmp_path / "out"
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    rows = _rows(out)
    assert sorted(rows) == ["broken", "locked", "locked__notes.dcm", "ok", "one__IM0001.dcm"]
    said = rows["locked"]["error"]
    assert "5 files in this folder cannot be read" in said and "IM0000.dcm" in said and "2 more" in said
    # The broken file deleted: its error record, of no use now, goes with its folder; a result would stay.
    (studies / "broken.nii.gz").unlink()
    assert _batch(studies, out, tiny_model, "--no-png") == 2
    assert sorted(_rows(out)) == ["locked", "locked__notes.dcm", "ok", "one__IM0001.dcm"]
    assert not (out / "broken").exists()


def test_a_series_moved_and_completed_meanwhile_is_analysed_again_in_its_folder(tmp_path, tiny_model):
    studies = tmp_path / "studies"
    series = np.clip(mr_with_lesion().array, 0, 1000).astype(np.int16)
    paths = write_series(studies / "incoming", series, axial_affine((1.0, 1.0, 1.25)), modality="MR", prefix="a_")
    late = paths[-1].read_bytes()
    paths[-1].unlink()  # the last slice had not arrived at the first run
    out = tmp_path / "out"
    _batch(studies, out, tiny_model, "--no-png")
    (name,) = _rows(out)
    (studies / "incoming").rename(studies / "archive")
    (studies / "archive" / paths[-1].name).write_bytes(late)
    _batch(studies, out, tiny_model, "--no-png")
    rows = _rows(out)
    assert list(rows) == [name] and rows[name]["status"] == "ok" and rows[name]["input"] == "archive"
