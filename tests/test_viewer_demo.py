"""``medae demo`` and ``medae view``: display detection, the headless run, and the viewer's arguments."""

import numpy as np
import pytest

from medae.cli import main
from medae.cli.view import gui_argv
from medae.io.nifti import save_nifti
from medae.viewer.png import read_png
from medae.viewer.screen import display_available


def test_display_detection():
    assert not display_available({}, "linux")
    assert display_available({"DISPLAY": ":0"}, "linux")
    assert display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert display_available({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert display_available({}, "darwin") and display_available({}, "win32")


def test_gui_arguments(tmp_path):
    assert gui_argv(None) == []
    assert gui_argv(str(tmp_path), analyze=True, model="m", device="cpu") == [
        str(tmp_path),
        "--model",
        "m",
        "--device",
        "cpu",
        "--analyze",
    ]


def test_view_of_a_missing_path_is_one_line(tmp_path, capsys):
    assert main(["view", str(tmp_path / "nope.nii.gz")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_headless_demo_without_display(tmp_path, monkeypatch, capsys):
    from tests.gui.tiny_model import make_tiny_model, mr_with_lesion

    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    model = make_tiny_model(tmp_path / "model")
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    out = tmp_path / "demo"
    code = main(
        ["demo", "--scan", str(tmp_path / "t1.nii.gz"), "--model", str(model), "--device", "cpu", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "no display found" in printed and "running headless" in printed
    assert (out / "heatmap.nii.gz").is_file() and (out / "report.json").is_file()
    png = read_png(out / "overlay.png")
    assert png.ndim == 3 and png.shape[1] > 900
    # The overlay is drawn: warm heat colours appear in the picture.
    r, g, b = (png[..., c].astype(int) for c in range(3))
    assert np.count_nonzero((r > 200) & (b < 80) & (r - g > 60)) > 20
    # The picture is listed as medae's, so the next demo replaces it; a picture of the user's is never replaced.
    again = ["demo", "--scan", str(tmp_path / "t1.nii.gz"), "--model", str(model), "--device", "cpu"]
    assert main([*again, "--out", str(out)]) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "overlay.png").write_bytes(b"my picture")
    assert main([*again, "--out", str(mine)]) == 2
    assert (mine / "overlay.png").read_bytes() == b"my picture" and "overlay.png" in capsys.readouterr().err


def test_a_demo_folder_that_cannot_be_made_is_said_before_the_analysis(tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded for a run that cannot write its results")

    monkeypatch.setattr("medae.model.load_model", no_work)
    (tmp_path / "a-file").write_text("")  # as a folder where the user may not write: the folder cannot be made
    assert main(["demo", "--headless", "--out", str(tmp_path / "a-file" / "demo")]) == 2
    err = capsys.readouterr().err
    assert "the output folder cannot be made" in err and err.count("\n") == 1


def test_demo_on_a_missing_scan_is_an_error(tmp_path, capsys):
    assert main(["demo", "--headless", "--scan", str(tmp_path / "nope.nii.gz")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["ct_chest_synthetic.nii.gz"])
def test_bundled_ct_sample_is_int16_hu_with_lungs_and_bone(name):
    from medae.io import load
    from medae.viewer.samples import sample

    v = load(sample(name))
    assert v.array.dtype == np.int16 and v.modality == "CT"
    assert v.shape == (256, 256, 120) and np.allclose(v.spacing, (0.8, 0.8, 2.5))
    assert v.orientation == "LPS"
    a = v.array
    assert np.count_nonzero((a > -900) & (a < -800)) > 100_000  # lungs
    assert np.count_nonzero(a > 600) > 10_000  # bone
    assert sample(name).stat().st_size < 3_000_000


def test_demo_falls_back_to_headless_when_the_viewer_cannot_start(tmp_path, monkeypatch, capsys):
    from tests.gui.tiny_model import make_tiny_model, mr_with_lesion

    # A display that does not exist: Qt's xcb plugin cannot connect and the viewer process fails.
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr("sys.platform", "linux")
    model = make_tiny_model(tmp_path / "model")
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    out = tmp_path / "demo"
    assert main(["demo", "--scan", str(tmp_path / "t1.nii.gz"), "--model", str(model), "--out", str(out)]) == 0
    assert "running headless instead" in capsys.readouterr().out
    assert (out / "overlay.png").is_file()


def test_demo_defaults_find_the_sample_lesion(tmp_path, capsys):
    """`medae demo --headless`: the bundled brain sample with the shipped model, end to end."""
    import json

    from medae.viewer.samples import samples_dir

    out = tmp_path / "demo"
    assert main(["demo", "--headless", "--device", "cpu", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    lesion = json.loads((samples_dir() / "brain_t1.json").read_text())["lesion"]
    best = report["findings"][0]
    assert np.linalg.norm(np.subtract(best["centroid_world_mm"], lesion["centre_world_mm"])) < lesion["radius_mm"]
    assert read_png(out / "overlay.png").shape[2] == 3
    assert "model brain-t1-dae" in capsys.readouterr().out


def test_medae_gui_without_a_display_says_so_in_one_line_before_qt(monkeypatch, capsys):
    import sys

    from medae.gui.app import main as gui_main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert gui_main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medae-gui: error: no display") and err.count("\n") == 1


def test_the_ct_sample_without_a_ct_model_is_opened_not_analysed(tmp_path, monkeypatch, capsys):
    import subprocess

    monkeypatch.setattr("sys.platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert main(["demo", "--sample", "ct", "--out", str(tmp_path / "d")]) == 2
    assert "no CT model ships" in capsys.readouterr().err and not (tmp_path / "d").exists()
    started = []

    class Viewer:
        def __init__(self, argv):
            started.append(argv)

        def wait(self):
            return 0

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(subprocess, "Popen", Viewer)
    assert main(["demo", "--sample", "ct"]) == 0
    assert "--analyze" not in started[0] and started[0][-1].endswith("ct_chest_synthetic.nii.gz")
