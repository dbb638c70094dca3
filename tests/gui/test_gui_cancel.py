"""Cancel stops an analysis at whatever stage it is in, the last one included."""

from PySide6.QtCore import Qt

from medae.io.nifti import save_nifti
from tests.gui.conftest import wait_idle
from tests.gui.tiny_model import mr_with_lesion


def test_cancel_while_the_display_is_prepared_shows_no_heatmap(window, qtbot, tiny_model, tmp_path, monkeypatch):
    import medae.viewer.session as session_module

    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(tmp_path / "t1.nii.gz")
    wait_idle(qtbot, window)
    real = session_module.prepare_result

    def prepare(result, *args, **kwargs):
        layers = real(result, *args, **kwargs)
        # Cancel pressed in the last stage ("Preparing the display"), past the worker's last check.
        next(j for j in window.jobs if j.name == "analyze").cancel()
        return layers

    monkeypatch.setattr(session_module, "prepare_result", prepare)
    window.start_analysis()
    wait_idle(qtbot, window, timeout=120_000)
    # Before, the heatmap appeared with "Cancelling..." still in the status bar.
    assert window.session.result is None and window.last_error is None
    assert "Cancelled" in window.statusBar().currentMessage()


def test_a_scan_opened_while_the_last_one_is_analysed_is_not_said_to_be_analysed(
    window, qtbot, tmp_path, monkeypatch, tiny_model
):
    import threading

    import medae.analysis
    from medae.errors import CancelledError
    from medae.volume import Volume

    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    vol = mr_with_lesion()
    save_nifti(vol, a)
    save_nifti(Volume(vol.array[::-1].copy(), vol.affine, "MR"), b)
    started, stop = threading.Event(), threading.Event()

    def analyze(volume, model, force=False, progress=None, cancel=None):
        started.set()
        cancel.wait(30)
        stop.wait(30)  # inside a long step of the model: it stops a while after it was asked to
        raise CancelledError()

    monkeypatch.setattr(medae.analysis, "analyze", analyze)
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(a)
    wait_idle(qtbot, window)
    window.start_analysis()
    qtbot.waitUntil(started.is_set, timeout=60_000)
    assert "Analysing the scan" in window.overlay_panel.summary.text()
    window.open_path(b)
    qtbot.waitUntil(lambda: window.session.volume is not None and window.session.volume.source.endswith("b.nii.gz"))
    # Before, b was said to be analysed ("the heatmap appears here when it is done") until a's analysis stopped.
    assert "Run Analyze" in window.overlay_panel.summary.text()
    stop.set()
    wait_idle(qtbot, window)
    assert "Run Analyze" in window.overlay_panel.summary.text()


def test_analyze_pressed_as_a_scan_appears_is_not_lost_while_its_loading_thread_ends(
    window, qtbot, tmp_path, tiny_model
):
    from medae.gui.workers import Job

    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(tmp_path / "t1.nii.gz")
    wait_idle(qtbot, window)
    # The scan is on screen; the thread that loaded it has not ended yet (it ends just after handing the scan
    # over). Before, Analyze then said "will be analysed as soon as it is on screen" and never ran.
    ending = Job("load", lambda progress, cancel: None, window)
    window.jobs.append(ending)
    try:
        assert window.start_analysis() is not None
    finally:
        window.jobs.remove(ending)
    wait_idle(qtbot, window, timeout=120_000)
    assert window.session.result is not None and window.last_error is None


def test_cancel_replaces_the_time_left_at_once(window, qtbot):
    import threading
    import time

    asked, go_on = threading.Event(), threading.Event()

    def work(progress, cancel):
        progress(0.5, "Analysing on cpu")
        asked.set()
        cancel.wait(30)
        go_on.wait(30)
        progress(0.6, "Analysing on cpu")  # a step that was under way ends before the stop is noticed
        return None

    job = window.run_job("analyze", work, lambda _r: None, "analysing the scan")
    job.started_at = time.monotonic() - 10  # far enough in for a time estimate
    qtbot.waitUntil(lambda: "left" in window.progress_label.text())
    qtbot.mouseClick(window.cancel_button, Qt.MouseButton.LeftButton)
    # Before, "about 10 s left" stayed until the worker next reported, seconds later.
    assert window.progress_label.text() == "Analysing the scan: stopping..."
    go_on.set()
    qtbot.waitUntil(lambda: job.fraction == 0.6)
    assert window.progress_label.text() == "Analysing the scan: stopping..."
    wait_idle(qtbot, window)
