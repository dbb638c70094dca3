"""Requests that overlap: the scan asked for last is the one shown, and analysis follows the scan on screen."""

import threading
import time

import medae.analysis
import medae.io
from medae.io.nifti import save_nifti
from medae.volume import Volume
from tests.gui.conftest import wait_idle
from tests.gui.tiny_model import mr_with_lesion


def _two_scans(tmp_path) -> tuple:
    """Two different MR scans on disk (the second is the first upside down)."""
    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    vol = mr_with_lesion()
    save_nifti(vol, a)
    save_nifti(Volume(vol.array[::-1].copy(), vol.affine, "MR"), b)
    return a, b


def _first_analysis_runs_until_cancelled(monkeypatch, stopping_s: float = 0.0) -> list:
    """Replaces ``analyze`` so that its first call runs until cancelled; returns the volumes it was called with.

    ``stopping_s``: how long the first call takes to stop once cancelled (a worker inside a long step).
    """
    calls = []
    real_analyze = medae.analysis.analyze

    def analyze(volume, model, force=False, progress=None, cancel=None):
        calls.append(volume)
        if len(calls) == 1 and cancel.wait(30):
            from medae.errors import CancelledError

            time.sleep(stopping_s)
            raise CancelledError()
        return real_analyze(volume, model, force=force, progress=progress, cancel=cancel)

    monkeypatch.setattr(medae.analysis, "analyze", analyze)
    return calls


def test_a_load_that_ends_late_does_not_replace_the_scan_asked_for_since(window, qtbot, ct_file, tmp_path, monkeypatch):
    first = tmp_path / "first.nii.gz"
    save_nifti(mr_with_lesion(), first)
    release = threading.Event()
    real_load = medae.io.load

    def load(path, *args, **kwargs):
        if str(path) == str(first):
            release.wait(30)  # a slow reader that does not look at cancel: it still returns, late
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(medae.io, "load", load)
    window.open_path(first)
    qtbot.waitUntil(lambda: any(j.name == "load" for j in window.jobs), timeout=30_000)
    window.open_path(ct_file)
    qtbot.waitUntil(lambda: window.session.volume is not None, timeout=30_000)
    assert window.session.volume.modality == "CT"
    release.set()
    wait_idle(qtbot, window)
    assert window.session.volume.modality == "CT" and window.last_error is None


def test_opening_another_scan_stops_the_analysis_and_analyze_waits_for_it(
    window, qtbot, tmp_path, monkeypatch, tiny_model
):
    model = tiny_model
    a, b = _two_scans(tmp_path)
    calls = _first_analysis_runs_until_cancelled(monkeypatch)
    window.prefs.model, window.prefs.device = str(model), "cpu"
    window.open_path(a)
    wait_idle(qtbot, window)
    window.start_analysis()
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=60_000)
    window.open_path(b)
    qtbot.waitUntil(lambda: window.session.volume is not None and window.session.volume.source.endswith("b.nii.gz"))
    window.start_analysis()  # the old analysis may still be stopping: this one must follow, not vanish
    wait_idle(qtbot, window, timeout=120_000)
    qtbot.waitUntil(lambda: window.session.result is not None and not window.busy, timeout=120_000)
    assert window.last_error is None, window.last_error and window.last_error.text()
    assert window.session.result.volume is window.session.volume and calls[-1] is window.session.volume
    assert len(calls) == 2


def test_analyze_asked_for_while_a_scan_is_opening_analyses_that_scan(window, qtbot, tmp_path, monkeypatch, tiny_model):
    a, b = _two_scans(tmp_path)
    calls = _first_analysis_runs_until_cancelled(monkeypatch)
    real_load = medae.io.load
    release = threading.Event()

    def load(path, *args, **kwargs):
        if str(path) == str(b):
            release.wait(30)  # b is still loading when Analyze is pressed
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(medae.io, "load", load)
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(a)
    wait_idle(qtbot, window)
    window.start_analysis()
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=60_000)
    window.open_path(b)
    qtbot.waitUntil(lambda: any(j.name == "load" for j in window.jobs), timeout=30_000)
    assert window.start_analysis() is None  # b is not on screen yet: its analysis waits for it
    assert "being opened" in window.statusBar().currentMessage()
    release.set()
    qtbot.waitUntil(lambda: window.session.result is not None and not window.busy, timeout=120_000)
    assert window.last_error is None, window.last_error and window.last_error.text()
    assert window.session.volume.source.endswith("b.nii.gz")
    assert window.session.result.volume is window.session.volume and len(calls) == 2


def _analysing_a(window, qtbot, tmp_path, monkeypatch, tiny_model, stopping_s: float) -> tuple:
    """Scan a on screen, its analysis running; once cancelled it takes ``stopping_s`` to stop.

    Returns:
        The volumes the analysis was called with, and scan b.
    """
    a, b = _two_scans(tmp_path)
    calls = _first_analysis_runs_until_cancelled(monkeypatch, stopping_s=stopping_s)
    window.prefs.model, window.prefs.device = str(tiny_model), "cpu"
    window.open_path(a)
    wait_idle(qtbot, window)
    window.start_analysis()
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=60_000)
    return calls, b


def test_analyze_right_after_cancel_runs_once_the_cancelled_one_stops(window, qtbot, tmp_path, monkeypatch, tiny_model):
    calls, _b = _analysing_a(window, qtbot, tmp_path, monkeypatch, tiny_model, stopping_s=0.5)
    window.cancel_jobs()
    window.start_analysis()  # at once: the cancelled job is still stopping
    qtbot.waitUntil(lambda: window.session.result is not None and not window.busy, timeout=120_000)
    assert len(calls) == 2 and window.session.result.volume is window.session.volume


def _queued_for_b_then_c_opened(window, qtbot, tmp_path, monkeypatch, tiny_model) -> list:
    """a is analysed; b is opened (a's analysis takes 3 s to stop) and Analyze pressed; then c is opened."""
    calls, b = _analysing_a(window, qtbot, tmp_path, monkeypatch, tiny_model, stopping_s=3.0)
    c = tmp_path / "c.nii.gz"
    save_nifti(mr_with_lesion(), c)
    window.open_path(b)  # stops a's analysis, which takes a while
    qtbot.waitUntil(lambda: window.session.volume is not None and window.session.volume.source.endswith("b.nii.gz"))
    window.start_analysis()  # queued for b
    window.open_path(c)  # the reader moves on before it ran
    qtbot.waitUntil(lambda: window.session.volume.source.endswith("c.nii.gz"), timeout=30_000)
    assert any(j.name == "analyze" for j in window.jobs)  # a's analysis is still stopping
    return calls


def test_an_analysis_queued_for_one_scan_does_not_run_on_the_next_one(window, qtbot, tmp_path, monkeypatch, tiny_model):
    calls = _queued_for_b_then_c_opened(window, qtbot, tmp_path, monkeypatch, tiny_model)
    qtbot.waitUntil(lambda: not window.busy, timeout=60_000)
    wait_idle(qtbot, window)
    assert window.session.result is None and len(calls) == 1  # c was never asked to be analysed


def test_a_later_analyze_replaces_the_queued_one(window, qtbot, tmp_path, monkeypatch, tiny_model):
    calls = _queued_for_b_then_c_opened(window, qtbot, tmp_path, monkeypatch, tiny_model)
    window.start_analysis()  # now for c: it replaces the request for b
    qtbot.waitUntil(lambda: window.session.result is not None and not window.busy, timeout=120_000)
    assert calls[-1] is window.session.volume and window.session.volume.source.endswith("c.nii.gz")
