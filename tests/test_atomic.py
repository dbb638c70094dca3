"""Atomic output: a failing write keeps the old file, leaves no temporary file and is a clear error."""

import errno
import os
import stat

import pytest

import medae.atomic
from medae.atomic import write_text
from medae.cli import main
from medae.errors import OutputError
from medae.io.nifti import save_nifti
from tests.gui.tiny_model import mr_with_lesion


def _full_disk_for(name, monkeypatch):
    real = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(medae.atomic.os, "replace", replace)


def test_a_full_disk_keeps_the_old_file_and_says_what_to_do(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old")
    _full_disk_for("report.json", monkeypatch)
    with pytest.raises(OutputError, match="No space left on device.*disk is full: free disk space"):
        write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_folder_that_cannot_be_made_is_named_with_its_own_advice(tmp_path):
    (tmp_path / "a_file").write_text("")  # a file where the output folder would have to be
    with pytest.raises(OutputError, match="folder .*a_file.sub is a file, not a folder") as info:
        write_text(tmp_path / "a_file" / "sub" / "report.json", "new")
    assert "disk" not in str(info.value)
    write_text(tmp_path / "new" / "sub" / "report.json", "made")  # a folder that can be made is made
    assert (tmp_path / "new" / "sub" / "report.json").read_text() == "made"


def test_analyze_ends_with_one_line_when_its_report_cannot_be_written(tmp_path, monkeypatch, capsys, tiny_model):
    scan = tmp_path / "t1.nii.gz"
    save_nifti(mr_with_lesion(), scan)
    _full_disk_for("report.json", monkeypatch)
    status = main(["analyze", str(scan), "--out", str(tmp_path / "out"), "--model", str(tiny_model), "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "report.json: cannot write (No space left on device)" in err.strip().splitlines()[-1]


def test_a_writer_that_wraps_the_system_error_still_gets_the_disk_full_advice(tmp_path):
    from medae.atomic import atomic_path

    def wrapped_write(path):
        # As pydicom does: the system's error becomes the cause of one whose text holds a traceback.
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            raise OSError("With tag (7FE0,0010) got exception: No space\nTraceback (most recent call last):") from exc

    with pytest.raises(OutputError) as err, atomic_path(tmp_path / "map.dcm") as tmp:
        wrapped_write(tmp)
    text = str(err.value)
    assert "No space left on device" in text and "disk is full" in text and "Traceback" not in text
    assert list(tmp_path.iterdir()) == []


def test_writes_in_progress_can_be_cleared_by_a_process_that_must_end_now(tmp_path):
    from medae.atomic import atomic_path, remove_in_flight

    with atomic_path(tmp_path / "heatmap.nii.gz") as tmp:
        tmp.write_bytes(b"half")
        remove_in_flight()  # the window closing with this write stuck in a worker
        assert not tmp.exists()
        tmp.write_bytes(b"whole")  # (the writer itself goes on here; in the real case the process ends)
    assert (tmp_path / "heatmap.nii.gz").read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heatmap.nii.gz"]


def test_every_name_the_file_system_takes_can_be_written_and_longer_ones_are_named(tmp_path, monkeypatch):
    from medae.atomic import remove_leftovers, write_bytes

    longest = "r" * (255 - len(".nii.gz")) + ".nii.gz"  # 255 bytes: the temporary name used to be 265
    seen = []
    real = os.replace

    def replace(src, dst):
        seen.append(os.path.basename(src))
        return real(src, dst)

    monkeypatch.setattr(medae.atomic.os, "replace", replace)
    write_bytes(tmp_path / longest, b"x")
    assert (tmp_path / longest).read_bytes() == b"x" and os.listdir(tmp_path) == [longest]
    with pytest.raises(OutputError, match="longer than the file system takes"):
        write_bytes(tmp_path / ("r" + longest), b"x")
    # What a kill during that write would have left is recognised and removed by a later run.
    (tmp_path / seen[0]).write_bytes(b"half")
    os.utime(tmp_path / seen[0], (0, 0))
    assert remove_leftovers(tmp_path, [longest]) == [tmp_path / seen[0]]


def test_a_link_is_written_through_and_a_pipe_or_device_is_refused_not_replaced(tmp_path):
    real = tmp_path / "data" / "result.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="not a regular file"):
        write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    null = tmp_path / "null.json"
    null.symlink_to("/dev/null")  # as `medae compress scan /dev/null` run by root would
    with pytest.raises(OutputError, match="not a regular file"):
        write_text(null, "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_killed_writers_temporary_file_goes_at_once_and_one_being_written_stays(tmp_path):
    from medae.atomic import atomic_path, remove_leftovers

    with atomic_path(tmp_path / "heatmap.nii.gz") as writing:
        writing.write_bytes(b"half")
        # A leftover of a process killed a moment ago: no lock on it, however young it is.
        left = tmp_path / f".heatmap.nii.{'k' * 8}.nii.gz"
        left.write_bytes(b"half")
        removed = remove_leftovers(tmp_path, ["heatmap.nii.gz"])
        assert removed == [left] and writing.exists()
    assert (tmp_path / "heatmap.nii.gz").read_bytes() == b"half"


def test_without_flock_the_temporary_file_is_not_held_open(tmp_path, monkeypatch):
    """Where there is no flock (Windows), an open file could be neither renamed nor removed."""
    monkeypatch.setattr(medae.atomic, "flock", lambda fd, exclusive=True, wait=False: None)
    closed = []
    real_close = os.close
    monkeypatch.setattr(medae.atomic.os, "close", lambda fd: closed.append(fd) or real_close(fd))
    with medae.atomic.atomic_path(tmp_path / "a.json") as tmp:
        assert closed  # closed before the writer gets the file
        tmp.write_text("x")
    assert (tmp_path / "a.json").read_text() == "x" and len(closed) == 1
