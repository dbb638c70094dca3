"""GUI test fixtures: a main window on an offscreen display, with settings kept in a temporary folder."""

from __future__ import annotations

import numpy as np
import pytest
import pytestqt  # noqa: F401  - a test dependency: missing, the GUI tests must fail, not be skipped
from PySide6.QtCore import QSettings

from medae.volume import Volume


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory):
    folder = tmp_path_factory.mktemp("settings")
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    yield


@pytest.fixture
def window(qtbot):
    from medae.gui.errors import install_excepthook
    from medae.gui.main_window import MainWindow
    from medae.gui.settings import Preferences

    install_excepthook()
    w = MainWindow(Preferences())
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.cancel_all_jobs()
    for job in list(w.jobs):
        job.wait(30_000)


def wait_idle(qtbot, w, timeout=60_000):
    """Waits until every worker of the window has finished and its results were handled."""
    qtbot.waitUntil(lambda: not w.busy and not w.jobs, timeout=timeout)


@pytest.fixture
def opened(window, qtbot, ct_file):
    """The window with the CT of ``ct_file`` on screen."""
    window.open_path(ct_file)
    wait_idle(qtbot, window)
    assert window.session.volume is not None
    return window


@pytest.fixture
def ct_file(tmp_path):
    from medae.io.nifti import save_nifti

    arr = np.full((48, 40, 24), -1000, np.int16)
    arr[8:40, 6:34, :] = 40
    arr[30:36, 18:24, 10:14] = 900  # bone-bright block on the patient's left
    aff = np.diag([-0.8, -0.8, 2.5, 1.0])
    path = tmp_path / "ct.nii.gz"
    save_nifti(Volume(arr, aff, "CT"), path)
    return path
