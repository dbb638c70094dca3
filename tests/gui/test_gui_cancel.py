"""Cancel stops an analysis at whatever stage it is in, the last one included."""

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
