"""Atomic file output: write to a temporary file in the target folder, then rename.

A kill at any moment leaves either the old file or the complete new one, never half a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from medae.errors import OutputError

#: Temporary files being written now (any thread), so that a process that must end at once can remove them.
_IN_FLIGHT: set[Path] = set()


def remove_in_flight() -> None:
    """Removes the temporary files of writes still in progress (before a process ends without finishing them)."""
    for path in list(_IN_FLIGHT):
        with contextlib.suppress(OSError):
            path.unlink()
        _IN_FLIGHT.discard(path)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path beside ``target``; renames it onto ``target`` if the block succeeds.

    Args:
        target: The final file path.
        suffix: Suffix for the temporary file; defaults to the target's full suffix so that writers
            that pick a format from the name (``.nii.gz``) still do the right thing.
    """
    target = _regular_target(Path(target))
    prefix, default_suffix = _temp_affixes(target)
    suffix = default_suffix if suffix is None else suffix
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    except OSError as exc:
        raise OutputError(_cannot_write(target, exc)) from exc
    # Held while the file is written: a leftover whose lock can be taken was left by a process that ended.
    # Without flock (Windows) the file is not kept open: an open file there can be neither renamed nor removed.
    if flock(fd, wait=True) is None:
        os.close(fd)
        fd = None
    tmp_path = Path(tmp)
    _IN_FLIGHT.add(tmp_path)
    try:
        # mkstemp creates 0600; a result file should get the permissions any new file gets.
        os.chmod(tmp_path, 0o666 & ~_umask())
        yield tmp_path
        _fsync(tmp_path)
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(exc, OSError):  # a full disk or a read-only folder is the user's to fix, not a crash
            raise OutputError(_cannot_write(target, exc)) from exc
        raise
    finally:
        _IN_FLIGHT.discard(tmp_path)
        if fd is not None:
            os.close(fd)  # and with it the lock


def flock(fd: int, exclusive: bool = True, wait: bool = False) -> bool | None:
    """An advisory lock on ``fd``: True when taken, False when another process holds one.

    None where the system (Windows) or the file system has no flock: callers then go by other signs (a
    file's age, a lock file's process number).
    """
    try:
        import fcntl
    except ImportError:
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _abandoned(path: Path, older_than_s: float) -> bool:
    """Whether no process is writing the temporary file ``path`` any more.

    Its writer holds a lock on it while it writes; the system drops that lock when the writer ends, however
    it ends. Where there are no such locks, only a file untouched for ``older_than_s`` counts as abandoned.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        free = flock(fd)
        if free is None:
            return time.time() - os.fstat(fd).st_mtime > older_than_s
        return free
    finally:
        os.close(fd)


def _regular_target(target: Path) -> Path:
    """The file a write to ``target`` replaces: a link's own file, never a device or a pipe.

    The rename would put a new file in place of whatever the name stands for: a link to a scan would
    become a file beside the scan's folder, and a device (``/dev/null``) or a pipe a plain file, which a
    process running with the rights to do so would leave in place of the system's own.

    Raises:
        OutputError: ``target`` is a device, a pipe or a socket.
    """
    import stat

    try:
        if target.is_symlink():
            target = Path(os.path.realpath(target))
        mode = target.stat().st_mode
    except OSError:
        return target  # nothing there yet, or a name the writing itself will refuse with its own words
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # a folder fails at the rename with its own words
        raise OutputError(
            f"{target}: not a regular file (a device, pipe or socket); medae writes whole files by replacing "
            "them. Choose a file name for the output."
        )
    return target


def remove_leftovers(folder: str | os.PathLike, names: Iterable[str], older_than_s: float = 60.0) -> list[Path]:
    """Removes the temporary files ``atomic_path`` left in ``folder`` for ``names`` when a process was killed.

    A write in progress in another process is left alone: its writer holds a lock on the file. Where the
    system has no such locks, only files older than ``older_than_s`` go.

    Returns:
        The files removed.
    """
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    removed = []
    for name in names:
        prefix, suffix = _temp_affixes(Path(folder) / name)
        for path in entries:
            n = path.name
            if not (n.startswith(prefix) and n.endswith(suffix) and len(n) == len(prefix) + _RANDOM + len(suffix)):
                continue
            with contextlib.suppress(OSError):
                if _abandoned(path, older_than_s):
                    path.unlink()
                    removed.append(path)
    return removed


#: The longest file name most file systems take, in bytes.
NAME_MAX = 255
_RANDOM = 8  # the length of mkstemp's random part


def _temp_affixes(target: Path) -> tuple[str, str]:
    """Prefix and suffix of ``target``'s temporary file (between them, mkstemp puts eight random characters).

    The name is a dot, the stem, a dot, the random part and the target's suffixes. The stem is cut where
    the whole name would exceed ``NAME_MAX`` bytes, so that every name the file system takes can be
    written (the temporary name is 10 bytes longer than the final one).
    """
    suffix = "".join(target.suffixes) or ".tmp"
    stem = target.stem.encode("utf-8", "surrogateescape")
    room = NAME_MAX - len(suffix.encode("utf-8", "surrogateescape")) - _RANDOM - 2
    if len(stem) > room:
        stem = stem[: max(room, 1)]
        # Back to a character boundary: a cut character's bytes would not decode to the same name again.
        while stem and stem[-1] & 0xC0 == 0x80:
            stem = stem[:-1]
        if stem and stem[-1] >= 0xC0:
            stem = stem[:-1]
    return f".{stem.decode('utf-8', 'surrogateescape')}.", suffix


def _cannot_write(target: Path, exc: OSError) -> str:
    # A writer that wraps the system's error in its own (pydicom puts the tag and a traceback in the text)
    # keeps the real one as its cause: that one has the errno and the words for the reader.
    cause: BaseException | None = exc
    while cause is not None and not (isinstance(cause, OSError) and cause.errno is not None):
        cause = cause.__cause__ or cause.__context__
    exc = cause if isinstance(cause, OSError) else exc
    # The advice follows the cause: a missing folder, no permission and a full disk each need their own.
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        advice = f"Part of the folder {target.parent} is a file, not a folder: choose another output folder."
    elif exc.errno == errno.ENOENT:
        advice = f"The folder {target.parent} does not exist and cannot be made there: choose another output folder."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = "You may not write there: choose an output folder you may write to."
    elif exc.errno == errno.ENAMETOOLONG:
        advice = f"The name is longer than the file system takes (at most {NAME_MAX} bytes): choose a shorter one."
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "The disk is full: free disk space, or choose an output folder on another disk."
    else:
        advice = "Free disk space, or choose an output folder you may write to."
    why = exc.strerror or " ".join(str(exc).split("Traceback")[0].split()) or type(exc).__name__
    return f"{target}: cannot write ({why}). {advice}"


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Writes UTF-8 ``text`` to ``target`` atomically.

    File names that are not UTF-8 on disk (Latin-1 names from old shares) reach Python as lone surrogates;
    they are written back as the name's own bytes, so a table lists the file as it is, instead of failing.
    """
    write_bytes(target, text.encode("utf-8", "surrogateescape"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
