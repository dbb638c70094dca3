"""Analysis > Analyze a folder of studies: the batch run from the window, in a worker, with its summary."""

import csv

from medae.io.nifti import save_nifti
from medae.volume import Volume
from tests.gui.conftest import wait_idle
from tests.gui.tiny_model import mr_with_lesion


def test_a_folder_run_from_the_window_writes_the_report_and_says_what_it_did(window, qtbot, tiny_model, tmp_path):
    studies = tmp_path / "studies"
    (studies / "p1").mkdir(parents=True)
    vol = mr_with_lesion()
    save_nifti(vol, studies / "p1" / "t1.nii.gz")
    save_nifti(Volume(vol.array[::-1].copy(), vol.affine, "MR"), studies / "t1_other.nii.gz")
    (studies / "p1" / "broken.nii.gz").write_bytes(b"\x1f\x8b damaged")
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    out = tmp_path / "results"
    window.run_batch(studies, out)
    assert window.busy and window.cancel_button.isVisible()  # a worker with progress and cancel
    wait_idle(qtbot, window, timeout=120_000)
    assert window.last_error is None, window.last_error and window.last_error.text()
    with open(out / "results.csv", newline="") as fh:
        rows = {r["folder"]: r["status"] for r in csv.DictReader(fh)}
    assert rows == {"p1__broken": "error", "p1__t1": "ok", "t1_other": "ok"}
    box = window.batch_summary
    assert box.isVisible() and "2 of 3 series analysed" in box.text() and "p1__broken" in box.detailedText()
    assert (out / "p1__t1" / "summary.png").is_file() and box.report == out / "report.html"
    assert window.model is not None  # kept for the next analysis


def test_one_folder_run_at_a_time_and_cancel_stops_the_newest_job_first(window, qtbot, tmp_path, monkeypatch):
    import threading

    import medae.batch

    started, release = threading.Event(), threading.Event()

    def slow_find(folder, exclude=None, progress=None, cancel=None):
        started.set()
        while not release.wait(0.02):
            if cancel.is_set():
                from medae.errors import CancelledError

                raise CancelledError()
        return []

    monkeypatch.setattr(medae.batch, "find_items", slow_find)
    first = window.run_batch(tmp_path, tmp_path / "out")
    assert started.wait(10)
    assert window.run_batch(tmp_path, tmp_path / "out2") is None
    assert "being analysed already" in window.statusBar().currentMessage()
    later = window.run_job("later", lambda progress, cancel: cancel.wait(30), lambda _r: None, "waiting")
    window.cancel_jobs()  # Esc: the newest job stops, the folder run goes on
    qtbot.waitUntil(lambda: not later.running, timeout=10_000)
    assert first.running and not first.cancel_event.is_set()
    window.cancel_jobs()
    wait_idle(qtbot, window)
    assert window.last_error is None and window.batch_summary is None


def test_closing_the_window_stops_its_jobs_at_once(window, qtbot):
    import time

    job = window.run_job("slow", lambda progress, cancel: cancel.wait(60), lambda _r: None, "waiting")
    qtbot.waitUntil(lambda: job.running)
    start = time.monotonic()
    window.close()
    assert time.monotonic() - start < 5  # the worker ends its own thread; before, close waited 10 s
    qtbot.waitUntil(lambda: not job.running, timeout=2000)


def test_the_bar_returns_to_the_job_still_running_and_names_it_while_two_run(window, qtbot):
    import threading

    go = threading.Event()

    def long(progress, cancel):
        progress(0.5, "Aligning")
        cancel.wait(60)

    first = window.run_job("first", long, lambda _r: None, "analysing the folder studies")
    qtbot.waitUntil(lambda: first.message == "Aligning")
    second = window.run_job("second", lambda progress, cancel: go.wait(10), lambda _r: None, "loading t1.nii.gz")
    assert window.progress_label.text().startswith("Loading t1.nii.gz")
    go.set()
    qtbot.waitUntil(lambda: not second.running)
    qtbot.waitUntil(lambda: window.progress_label.text().startswith("Aligning"))  # no longer "Loading ..."
    window.cancel_jobs()
    wait_idle(qtbot, window)


def test_a_report_no_browser_can_open_says_where_it_is(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from medae.batch.table import Row
    from medae.gui.dialogs import BatchDoneBox

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    row = Row(
        "p1__t1",
        "p1/t1.nii.gz",
        "",
        "MR",
        "t1",
        "error",
        error="the scan is CT ... (--model), or pass --force to analyse anyway.",
    )
    box = BatchDoneBox([row], tmp_path / "report.html", window)
    assert "--force" not in box.detailedText() and "File > Preferences" in box.detailedText()
    assert not box.open_report()
    assert str(tmp_path / "report.html") in box.no_browser.text()


def test_a_folder_without_scans_is_said_without_a_report_or_an_output_folder(window, qtbot, tiny_model, tmp_path):
    (tmp_path / "empty").mkdir()
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.run_batch(tmp_path / "empty", tmp_path / "out")
    wait_idle(qtbot, window)
    box = window.batch_summary
    assert box.isVisible() and box.windowTitle() == "No scans found" and "No scans were found" in box.text()
    assert box.open_button is None and "report.html" not in box.informativeText()
    assert not (tmp_path / "out").exists()


def test_a_cancelled_folder_run_says_where_its_results_are_and_how_to_go_on(
    window, qtbot, tiny_model, tmp_path, monkeypatch
):
    import medae.batch.runner

    studies = tmp_path / "studies"
    studies.mkdir()
    vol = mr_with_lesion()
    for n in range(3):
        save_nifti(Volume(vol.array * (1 + n / 10), vol.affine, "MR"), studies / f"t{n}.nii.gz")
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    real = medae.batch.runner._analyze

    def analyze_then_cancel(item, model, options, progress, cancel):
        out = real(item, model, options, progress, cancel)
        cancel.set()  # Cancel pressed while the first series is written
        return out

    monkeypatch.setattr(medae.batch.runner, "_analyze", analyze_then_cancel)
    window.run_batch(studies, tmp_path / "out")
    wait_idle(qtbot, window, timeout=120_000)
    box = window.batch_summary
    assert box is not None and box.isVisible() and box.windowTitle() == "Folder run stopped"
    assert "run the same folders again" in box.text() and box.open_button is not None
    assert (tmp_path / "out" / "report.html").is_file()


def test_a_job_the_closing_cancelled_opens_no_box_after_the_window_is_gone(window, qtbot, tmp_path, monkeypatch):
    # A box opened after the window closed kept the process alive with no window, even once dismissed.
    from PySide6.QtWidgets import QApplication

    import medae.batch
    from medae.errors import CancelledError

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.html").write_text("<html></html>")  # a run's report, as a cancelled run leaves

    def until_cancelled(folder, exclude=None, progress=None, cancel=None):
        cancel.wait(30)
        raise CancelledError()

    monkeypatch.setattr(medae.batch, "find_items", until_cancelled)
    job = window.run_batch(tmp_path, tmp_path / "out")
    qtbot.waitUntil(lambda: job.running)
    window.close()
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    qtbot.wait(200)  # the job's queued signals arrive
    assert window.batch_summary is None and window.last_error is None
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not window]


def test_the_bar_keeps_a_file_names_case_and_does_not_say_a_job_twice(window, qtbot):
    import threading

    go = threading.Event()
    first = window.run_job("first", lambda progress, cancel: cancel.wait(30), lambda _r: None, "analysing the scan")
    assert window.progress_label.text() == "Analysing the scan..."

    def loading(progress, cancel):
        progress(0.1, "Loading BrainA.nii.gz...")
        go.wait(10)

    second = window.run_job("second", loading, lambda _r: None, "loading BrainA.nii.gz")
    qtbot.waitUntil(lambda: second.message.startswith("Loading"))
    qtbot.waitUntil(lambda: window.progress_label.text().startswith("Loading BrainA.nii.gz..."))
    assert window.progress_label.text().count("BrainA") == 1
    go.set()
    window.cancel_jobs()
    window.cancel_jobs()
    wait_idle(qtbot, window)
    assert not first.running
