"""Command-line values checked where they are typed, and file-system refusals as one line, not a traceback."""

from pathlib import Path

import pytest

from medae.cli import main
from medae.cli.args import user_path


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc"])
def test_a_threshold_that_is_not_a_finite_number_is_refused_up_front(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "scan.nii.gz", "--out", "out", "--threshold", value])
    assert exc.value.code == 2 and "--threshold" in capsys.readouterr().err


def test_a_count_below_one_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["make-healthy", "--out", "x", "--n", "-3"])
    assert exc.value.code == 2 and "not at least 1" in capsys.readouterr().err


def test_an_output_folder_that_is_a_file_is_one_line_not_a_traceback(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    assert main(["make-healthy", "--out", str(target), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("medae: error:") and "Traceback" not in err and err.count("\n") == 1


def test_a_tilde_in_an_output_path_is_the_home_folder():
    assert user_path("~/results") == Path.home() / "results"


def test_analyze_refuses_an_output_path_that_is_a_file_before_any_work(tmp_path, capsys):
    target = tmp_path / "results"
    target.write_text("")
    assert main(["analyze", str(tmp_path / "no-scan-needed.nii.gz"), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err  # said before the (missing) scan or the model is even looked at


def test_a_tilde_in_a_model_path_is_the_home_folder_as_in_an_output_path(tmp_path, tiny_model, monkeypatch, capsys):
    import shutil

    from medae.io.nifti import save_nifti
    from tests.gui.tiny_model import mr_with_lesion

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(tiny_model, tmp_path / "models" / "mine")
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    # As typed after `--model=`, where the shell leaves the ~ alone.
    assert main(["analyze", str(tmp_path / "t1.nii.gz"), "--out=~/out", "--model=~/models/mine"]) == 0, (
        capsys.readouterr()
    )
    assert (tmp_path / "out" / "report.json").is_file()


def test_help_lists_the_exit_statuses_the_commands_end_with():
    import medae.cli

    text = medae.cli.build_parser().format_help()
    for status in ("exit status: 0 done", "2 an error", "130 stopped by Ctrl+C", "143 stopped by SIGTERM", "141 the"):
        assert status in " ".join(text.split()), status


def test_sigterm_stops_commands_but_is_left_to_the_viewer(monkeypatch):
    """The viewer's Qt loop runs no Python while idle, so a Python handler would leave `kill` unheard."""
    import signal

    import medae.cli.analyze
    import medae.cli.demo
    import medae.cli.view
    from medae.cli import Terminated, main

    seen = {}

    def record(name):
        def run(args):
            seen[name] = signal.getsignal(signal.SIGTERM)
            return 0

        return run

    monkeypatch.setattr(medae.cli.view, "run", record("view"))
    monkeypatch.setattr(medae.cli.analyze, "run", record("analyze"))
    monkeypatch.setattr(medae.cli.demo, "run", record("demo"))  # its viewer is a child process
    before = signal.getsignal(signal.SIGTERM)
    assert main(["view"]) == 0 and main(["analyze", "x.nii", "--out", "o"]) == 0 and main(["demo"]) == 0
    assert seen["view"] is before and seen["analyze"] is not before and seen["demo"] is not before
    with pytest.raises(Terminated):
        seen["analyze"](signal.SIGTERM, None)
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_file_whose_name_starts_with_a_dash_is_taken_as_the_file(tmp_path, monkeypatch, capsys):
    import shutil

    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "ct_chest_synthetic.nii.gz"
    monkeypatch.chdir(tmp_path)
    shutil.copy(sample, tmp_path / "-v.nii.gz")
    assert main(["info", "-v.nii.gz"]) == 0
    assert "256x256x120" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # not a file: still read as an (unknown) option
        main(["info", "-q.nii.gz"])


def test_option_values_and_numbers_that_name_files_are_left_as_typed(tmp_path, monkeypatch):
    from medae.cli import _dashed_paths, build_parser

    monkeypatch.chdir(tmp_path)
    for name in ("-1.5", "-T1", "-v.nii.gz"):
        (tmp_path / name).write_bytes(b"x")
    parser = build_parser()
    argv = ["analyze", "-v.nii.gz", "--out", "o", "--threshold", "-1.5", "--series", "-T1"]
    assert _dashed_paths(argv, parser) == [
        "analyze",
        "./-v.nii.gz",
        "--out",
        "o",
        "--threshold",
        "-1.5",
        "--series",
        "-T1",
    ]
    assert _dashed_paths(["info", "-1.5"], parser) == ["info", "-1.5"]  # a number stays a number


def test_ctrl_c_while_the_command_line_starts_is_one_line(monkeypatch, capsys):
    import medae.cli

    def interrupted():
        raise KeyboardInterrupt  # as Ctrl+C lands while the subcommands are imported

    monkeypatch.setattr(medae.cli, "build_parser", interrupted)
    assert medae.cli.main(["info", "x"]) == 130
    assert capsys.readouterr().err == "medae: interrupted\n"


def test_importing_the_package_loads_no_numpy():
    import subprocess
    import sys

    code = "import sys, medae, medae.cli; print('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["make-healthy", "--out", "x", "--seed", "-1"], "a seed is a whole number of at least 0"),
        (["evaluate", "--out", "x", "--seed", "-5"], "a seed is a whole number of at least 0"),
        (["analyze", "scan.nii.gz", "--out", ""], "an empty path"),  # `--out "$UNSET"`: not the current folder
        (["analyze", "scan.nii.gz", "--out", "o", "--threshold", "-5"], "not a threshold"),  # the whole field
        (["batch", "in", "--out", "o", "--threshold", "1e39"], "not a threshold"),  # beyond float32
    ],
)
def test_arguments_that_cannot_be_meant_are_refused_before_anything_runs(argv, said, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and said in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "studies"],
        ["make-healthy"],
        ["demo", "--headless"],
        ["sample", "--model", "m"],
        ["evaluate"],
        ["train", "--data", "d"],
    ],
)
def test_an_output_folder_that_is_a_file_is_named_by_every_command(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("mine")
    assert main([*argv, "--out", "afile"]) == 2
    assert "afile is a file, not a folder: give --out a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_command_refused_for_its_input_leaves_no_empty_output_folder(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "no-such-studies"), "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "extra",
    [
        [],  # a typo in the scan's name
        ["--model", "no-such-model"],
    ],
)
def test_an_analysis_refused_before_writing_leaves_no_empty_output_folder(extra, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scan.nii.gz").write_bytes(b"")  # never read when the model is refused first
    scan = "no-such-scan.nii.gz" if not extra else "scan.nii.gz"
    assert main(["analyze", scan, "--out", "results/today", *extra]) == 2
    assert "medae: error:" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]  # neither results/today nor results


def test_a_batch_output_folder_that_cannot_be_made_is_said_before_the_studies_are_searched(
    tmp_path, monkeypatch, capsys
):
    def no_search(*args, **kwargs):
        raise AssertionError("the studies were searched for a run that cannot write its results")

    monkeypatch.setattr("medae.batch.find_items", no_search)
    (tmp_path / "studies").mkdir()
    (tmp_path / "a-file").write_text("")  # as a folder where the user may not write: the folder cannot be made
    assert main(["batch", str(tmp_path / "studies"), "--out", str(tmp_path / "a-file" / "results")]) == 2
    assert "the output folder cannot be made" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["info", "analyze", "compress"])
def test_a_scan_in_a_folder_that_may_not_be_opened_is_named_as_such(command, tmp_path, monkeypatch, capsys):
    import errno
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "t1.nii.gz").write_bytes(b"")
    stat = Path.stat

    def refused(self, *args, **kwargs):  # as for a user without the folder's x permission (tests may run as root)
        if str(self).startswith(str(locked) + os.sep):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", refused)
    out = {"analyze": ["--out", str(tmp_path / "out")], "compress": [str(tmp_path / "t1.mae")]}.get(command, [])
    assert main([command, str(locked / "t1.nii.gz"), *out]) == 2
    err = capsys.readouterr().err
    assert "no permission to reach it" in err and "free space" not in err and err.count("\n") == 1


def test_a_path_typed_with_backslashes_names_the_file_it_means(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "t1.nii.gz").write_bytes(b"")
    assert main(["info", "scans\\t1.nii.gz"]) == 2  # as copied from a Windows explorer
    assert "Folders are separated by / here: scans/t1.nii.gz" in capsys.readouterr().err


def test_the_series_of_a_folder_of_files_are_listed_without_stray_spaces_or_plurals(tmp_path, capsys):
    from medae.io.nifti import save_nifti
    from tests.gui.tiny_model import mr_with_lesion

    for name in ("a", "b"):
        save_nifti(mr_with_lesion(), tmp_path / "in" / f"{name}.nii.gz")
    assert main(["analyze", str(tmp_path / "in"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "a.nii.gz (a.nii.gz, 1 file);" in err and "( " not in err and "1 files" not in err


def test_a_folder_that_may_not_be_opened_is_named_once(tmp_path, monkeypatch, capsys):
    import errno

    import medae.io.walk

    def refused(root, failed):  # as listing a folder without its r permission (tests may run as root)
        failed(PermissionError(errno.EACCES, "Permission denied", str(root)))
        yield from ()

    monkeypatch.setattr(medae.io.walk, "_walk", refused)
    (tmp_path / "locked").mkdir()
    assert main(["info", str(tmp_path / "locked")]) == 2
    err = capsys.readouterr().err
    assert err.count(str(tmp_path / "locked")) == 1 and "Permission denied" in err


def test_an_analysis_keeps_an_output_folder_that_was_there(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    assert main(["analyze", str(tmp_path / "no-such-scan.nii.gz"), "--out", str(tmp_path / "out")]) == 2
    assert (tmp_path / "out").is_dir()


def test_the_viewer_without_a_display_is_one_line_that_says_what_to_do(monkeypatch, capsys):
    import sys

    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "brain_t1.nii.gz"
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert main(["view", str(sample)]) == 2  # Qt would abort the process with several lines of its own
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no display" in err and "medae demo --headless" in err


def test_training_into_a_folder_of_other_files_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "notes")]) == 2
    assert "holds other files (a.txt) and no model" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["a.txt"]


def test_settings_of_one_section_in_several_sets_are_all_kept(tmp_path, monkeypatch, capsys):
    # The second --set of a section replaced the first: this trained on the default grid at 1.5 mm.
    import medae.training.train

    seen = {}
    monkeypatch.setattr(medae.training.train, "train", lambda data, out, cfg, **k: seen.update(cfg) or out)
    space = ["--set", 'space={"shape": [128, 144, 128]}', "--set", 'space={"spacing": 1.5}']
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), *space]) == 0
    assert seen["space"]["shape"] == [128, 144, 128] and seen["space"]["spacing"] == 1.5
    # A dotted key, as the card names a setting that differed, is said how to be written.
    assert (
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--set", "architecture.skip=false"]) == 2
    )
    assert """--set 'architecture={"skip": false}'""" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--set", "steps"]) == 2
    assert "--set steps: give KEY=JSON" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("lr=Infinity", "training setting lr = inf: expected finite numbers"),
        ("val_fraction=0.99", "training setting val_fraction = 0.99: expected a number above 0 and at most 0.5"),
        ('postprocess={"smooth_sigma_vox": -1}', "postprocess.smooth_sigma_vox = -1: expected a number of at least 0"),
    ],
)
def test_a_setting_out_of_range_is_refused_in_one_line_before_any_scan_is_read(setting, said, tmp_path, capsys):
    # JSON as Python reads it takes Infinity and NaN; these settings were taken and failed (or not) mid-run.
    import medae.training.data

    data = tmp_path / "data"
    data.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(medae.training.data, "find_scans", lambda *a: pytest.fail("scans read"))
        assert main(["train", "--data", str(data), "--out", str(tmp_path / "m"), "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert said in err and err.count("\n") == 0
    assert not (tmp_path / "m").exists()


def test_the_training_leaves_out_what_the_analysis_refuses(tmp_path, monkeypatch):
    # A segmentation or one of medae's own heatmaps in the data folder was trained on as a healthy scan.
    import medae.training.train
    from medae.analysis.checks import check_contrast, check_input

    seen = {}
    monkeypatch.setattr(medae.training.train, "train", lambda data, out, cfg, **k: seen.update(k) or out)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m")]) == 0
    assert seen["screen"] is check_input and seen["screen_contrast"] is check_contrast


def test_a_second_training_into_a_model_folder_being_trained_is_refused(tmp_path, monkeypatch, capsys):
    # Started again while the first run still went on (to resume it, in another terminal), both trained and
    # wrote their checkpoints over each other's; the model was whichever finished last.
    import medae.training.train
    from medae.batch.lock import run_lock

    out = tmp_path / "m"
    out.mkdir()
    monkeypatch.setattr(medae.training.train, "train", lambda *a, **k: pytest.fail("trained"))
    with run_lock(out):
        assert main(["train", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert "another medae run" in capsys.readouterr().err
    # Under torchrun the processes other than the first write nothing there, and take no lock.
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(medae.training.train, "train", lambda data, out, cfg, **k: out)
    with run_lock(out):
        assert main(["train", "--data", str(tmp_path), "--out", str(out)]) == 0
    # A run refused for its data leaves no empty model folder behind.
    monkeypatch.delenv("RANK")

    def no_data(data, out, cfg, **k):
        from medae.errors import InputError

        assert out.is_dir()  # made to hold the lock
        raise InputError(f"{data}: no such folder or list of scans.")

    monkeypatch.setattr(medae.training.train, "train", no_data)
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()
    # Nor the folders made above it, as analyze, batch and demo leave none.
    assert main(["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "models" / "new")]) == 2
    assert not (tmp_path / "models").exists()


def test_a_sampling_temperature_that_is_no_number_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample", "--model", "m", "--out", "o", "--temperature", "nan"])
    assert exc.value.code == 2 and "not a finite number" in capsys.readouterr().err


def test_ctrl_c_during_training_says_how_to_resume(tmp_path, monkeypatch, capsys):
    import medae.training.train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(medae.training.train, "train", interrupted)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m")]) == 130
    assert "Run the same command again to resume from its last checkpoint" in capsys.readouterr().err


def test_ctrl_c_while_torch_is_imported_stops_after_the_import_not_inside_it():
    """Raised inside torch's C++ start-up, the interrupt aborted the process with a core dump."""
    import subprocess
    import sys

    script = (
        "import os, signal, sys\n"
        "class Finder:\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'torch':\n"
        "            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the import starts\n"
        "        return None\n"
        "sys.meta_path.insert(0, Finder())\n"
        "from medae.model.heavy_imports import import_network_libraries\n"
        "try:\n"
        "    import_network_libraries()\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted after the import:', hasattr(sys.modules.get('torch'), 'Tensor'))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "interrupted after the import: True", out.stdout + out.stderr
