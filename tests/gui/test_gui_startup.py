"""Cold start: the window appears fast because torch and MONAI are not imported until needed."""

import os
import subprocess
import sys
import time

SHOW = (
    "import sys\n"
    "from medae.gui.app import create_window\n"
    "app, w = create_window()\n"
    "app.processEvents()\n"
    "print('visible' if w.isVisible() else 'hidden', flush=True)\n"
    "print(','.join(m for m in ('torch', 'monai') if m in sys.modules), flush=True)\n"
)


def _env(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    return env


def test_importing_the_app_loads_neither_torch_nor_monai(tmp_path):
    code = "import sys, medae.gui.app, medae.gui.main_window; print([m for m in ('torch','monai') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(tmp_path), check=True)
    assert out.stdout.strip() == "[]"


def test_cold_start_to_visible_window_is_fast(tmp_path):
    # Warm the OS file cache once (as a second launch would), then time a fresh interpreter.
    subprocess.run([sys.executable, "-c", SHOW], capture_output=True, env=_env(tmp_path), timeout=60)
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", SHOW], capture_output=True, text=True, env=_env(tmp_path), timeout=60
        )
        best = min(best, time.perf_counter() - t0)
        lines = out.stdout.split()
        assert lines[0] == "visible", out.stderr
        assert len(lines) == 1, f"heavy modules imported at start: {lines[1:]}"
    assert best < 1.5, f"window took {best:.2f} s to appear"
