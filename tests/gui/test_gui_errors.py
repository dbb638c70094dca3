"""Errors no caller caught: the viewer keeps running and says so once, even when painting itself fails."""

import os
import subprocess
import sys

# A slice view whose painting fails on every repaint. Before, Qt crashed the whole process (the failed
# handler's painter was still active when the paint event ended), so this runs in its own interpreter.
BROKEN_PAINT = """
import sys, time
from PySide6.QtCore import QEventLoop, QTimer
import medae.gui.slice_view as slice_view
from medae.gui.app import create_window

def wait(ms):  # the event loop as the running viewer has it
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()

app, w = create_window(sys.argv[1])
deadline = time.time() + 30
while w.session.volume is None and time.time() < deadline:
    wait(20)

def broken(view, p):
    raise RuntimeError("measurement painter broke")

slice_view.paint_measurements = broken
views = w.findChildren(slice_view.SliceView)
for _ in range(5):  # each repaint fails again
    for v in views:
        v.repaint()
    wait(200)
boxes = [b for b in app.topLevelWidgets() if b.objectName() == "errorBox" and b.isVisible()]
print("boxes", len(boxes))
print("text", boxes[0].text() if boxes else "")
image = views[0].grab().toImage()
print("centre", image.pixelColor(image.width() // 2, 5).getRgb()[:3])
w.close()
wait(50)
print("closed", flush=True)
"""


def test_a_view_whose_painting_fails_shows_one_error_and_a_plain_view_instead_of_crashing(tmp_path, ct_file):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path), HOME=str(tmp_path))
    env["XDG_STATE_HOME"] = str(tmp_path)  # the viewer's log file
    out = subprocess.run(
        [sys.executable, "-c", BROKEN_PAINT, str(ct_file)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, f"viewer died ({out.returncode}): {out.stderr[-2000:]}"
    lines = dict(line.partition(" ")[::2] for line in out.stdout.splitlines())
    assert lines["boxes"] == "1"  # one box for an error repeated on every repaint
    assert "measurement painter broke" in lines["text"]
    assert lines["centre"] == "(48, 48, 52)"  # the neutral notice, not a half-painted scan
    assert "closed" in lines


def _raised(message):
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def test_uncaught_errors_are_shown_after_the_event_once_and_never_over_another_box(window, qtbot):
    from PySide6.QtWidgets import QApplication

    def boxes():
        return [b for b in QApplication.topLevelWidgets() if b.objectName() == "errorBox" and b.isVisible()]

    first = _raised("slider broke")
    for _ in range(3):  # the same error again, as from a handler that runs on every mouse move
        sys.excepthook(type(first), first, first.__traceback__)
    assert boxes() == []  # not inside the handler that raised: the event has to finish first
    qtbot.waitUntil(lambda: len(boxes()) == 1)
    second = _raised("another handler broke")
    sys.excepthook(type(second), second, second.__traceback__)
    qtbot.wait(50)
    shown = boxes()
    assert len(shown) == 1 and "slider broke" in shown[0].text()
    shown[0].close()
