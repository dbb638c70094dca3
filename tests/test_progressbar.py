"""The terminal progress bar: one row however narrow the terminal, and out of the way of the lines printed."""

from __future__ import annotations

import io
import sys

from medae.cli import main
from medae.cli.progressbar import ProgressBar
from medae.io.nifti import save_nifti
from tests.gui.tiny_model import mr_with_lesion


class _Terminal(io.StringIO):
    """What a terminal receives, stdout and stderr together."""

    def isatty(self) -> bool:
        return True


def _screen(text: str) -> list[str]:
    """The rows a terminal wide enough shows: a carriage return goes back to the row's start, and overwrites."""
    rows, row, col = [], [], 0
    for ch in text:
        if ch == "\n":
            rows.append("".join(row).rstrip())
            row, col = [], 0
        elif ch == "\r":
            col = 0
        else:
            row[col : col + 1] = [ch]
            col += 1
    return [*rows, "".join(row).rstrip()]


def test_the_bar_never_outgrows_an_80_column_terminal_and_leaves_no_blank_line(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    term = _Terminal()
    with ProgressBar("load a-scan-with-a-long-name.nii.gz", stream=term) as bar:
        bar(0.0, "Preparing")
        bar(0.5, "Reconstructing on CPU (2 threads), which takes a while")
    # A row wider than the terminal wraps, and every redraw would leave a row behind.
    assert all(len(part) < 80 for part in term.getvalue().replace("\n", "\r").split("\r"))
    with ProgressBar("load", stream=(quiet := _Terminal())):
        pass  # a step that drew nothing
    assert quiet.getvalue() == ""


def test_each_series_line_of_a_batch_starts_its_own_row_on_a_terminal(tmp_path, tiny_model, monkeypatch):
    for name in ("a", "b"):
        save_nifti(mr_with_lesion(), tmp_path / "studies" / f"{name}.nii.gz")
    term = _Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    monkeypatch.setattr(sys, "stderr", term)
    argv = ["batch", str(tmp_path / "studies"), "--out", str(tmp_path / "out"), "--model", str(tiny_model)]
    assert main([*argv, "--device", "cpu", "--no-png"]) == 0
    rows = [r for r in _screen(term.getvalue()) if "finding(s)" in r]
    assert len(rows) == 2 and all(r.startswith(("[1/2] a:", "[2/2] b:")) for r in rows), rows


def test_a_command_started_without_stderr_still_writes_its_results(tmp_path, tiny_model, monkeypatch, capsys):
    save_nifti(mr_with_lesion(), tmp_path / "t1.nii.gz")
    monkeypatch.setattr(sys, "stderr", None)  # as Python sets it for `medae analyze ... 2>&-`, or a daemon's
    argv = ["analyze", str(tmp_path / "t1.nii.gz"), "--out", str(tmp_path / "out"), "--model", str(tiny_model)]
    assert main(argv) == 0
    assert (tmp_path / "out" / "report.json").is_file()
