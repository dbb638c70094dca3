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
