"""Takes the viewer screenshots in this folder, from a real window on an X display.

Run under a virtual X server from the repository root (it needs the brain sample and the shipped
model for the analysis shots; pass others with --brain / --model):

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots/make_screenshots.py

Shots: empty window, synthetic chest CT with the lung preset, brain MRI with heatmap and findings,
the same with the threshold lowered (the findings follow it), and compare mode (input | reconstruction
| residual).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _wait(app, cond, timeout: float = 600.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise TimeoutError("the viewer did not finish in time")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)


def _shot(app, window, name: str) -> None:
    _wait(app, lambda: True)
    screen = window.screen()
    pixmap = screen.grabWindow(window.winId()) if screen is not None else window.grab()
    if pixmap.isNull():
        pixmap = window.grab()
    pixmap.save(str(HERE / name))
    print(f"wrote {HERE / name}")


def main(argv: list[str] | None = None) -> int:
    """Opens the viewer, walks through the states, saves a PNG of each."""
    from medae.viewer.samples import BRAIN, CT, samples_dir

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brain", default=str(samples_dir() / BRAIN))
    p.add_argument("--ct", default=str(samples_dir() / CT))
    p.add_argument("--model", default=None)
    p.add_argument("--only", nargs="*", default=None, help="names of shots to take (default: all)")
    args = p.parse_args(argv)
    import tempfile

    from PySide6.QtCore import QSettings

    # Fresh settings, so the shots show defaults and no one's recent files.
    tmp = tempfile.mkdtemp()
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, tmp)
    from medae.gui.app import create_window

    app, w = create_window(model=args.model)
    w.resize(1500, 900)
    w.move(0, 0)
    want = set(args.only or ["empty", "ct", "brain", "lower", "compare"])
    if "empty" in want:
        _shot(app, w, "empty_window.png")
    if "ct" in want:
        w.open_path(args.ct)
        _wait(app, lambda: not w.busy and w.session.volume is not None)
        w.handle_key("4")  # lung
        w.session.set_cursor((150, 128, 78))
        _shot(app, w, "ct_lung_preset.png")
    if want & {"brain", "lower", "compare"}:
        w.open_path(args.brain)
        _wait(app, lambda: not w.busy and w.session.volume is not None and "brain" in (w.session.volume.source or ""))
        w.start_analysis()
        _wait(app, lambda: not w.busy)
        if w.session.result is None:
            print("analysis failed:", w.last_error.text() if w.last_error else "?", file=sys.stderr)
            return 1
        w.right_tabs.setCurrentWidget(w.findings_panel)
        if "brain" in want:
            _shot(app, w, "brain_heatmap_findings.png")
        if "lower" in want:
            result = w.session.result
            w.overlay_panel.threshold.setValue(6.0)
            _wait(app, lambda: not w.busy and w.session.result is not result)
            w.findings_panel.choose(0)
            _shot(app, w, "threshold_lowered.png")
            w.session.set_style(threshold=result.threshold)
            _wait(app, lambda: not w.busy and w.session.result.threshold == result.threshold)
        if "compare" in want:
            w.session.single_plane = "axial"
            w.session.compare = True
            _shot(app, w, "compare_mode.png")
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
