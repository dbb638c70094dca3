"""Walking a folder of studies: every file once, through linked folders, without hidden entries."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator


def walk_files(root: str | os.PathLike, unreadable: list[tuple[str, str]] | None = None) -> Iterator[str]:
    """The files under ``root``, in a stable order (sorted within each folder).

    Linked folders are followed, as studies are often linked into place, each real folder once so that a
    link loop ends. Names starting with a dot are skipped: hidden folders, macOS ``._`` companions and
    ``.Trashes`` hold no studies.

    Args:
        root: The folder.
        unreadable: If given, folders that cannot be listed are appended as (path, reason), so a caller can
            name them instead of passing over them in silence.
    """

    def failed(exc: OSError) -> None:
        if unreadable is not None:
            unreadable.append((str(exc.filename), exc.strerror or str(exc)))

    for dirpath, filenames in _walk(root, failed):
        for name in sorted(filenames):
            if not name.startswith("."):
                path = os.path.join(dirpath, name)
                if not _special(path):
                    yield path


def walk_folders(root: str | os.PathLike) -> Iterator[str]:
    """``root`` and the folders under it, as :func:`walk_files` walks them (through links, each real one once)."""
    for dirpath, _files in _walk(root, None):
        yield dirpath


def _walk(root: str | os.PathLike, failed) -> Iterator[tuple[str, list[str]]]:
    """(folder, its file names) through linked folders, each real folder once, hidden folders left out."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=failed):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield dirpath, filenames


def _special(path: str) -> bool:
    """True for a FIFO, socket or device: opening one to read its header would block or read forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False  # a broken link or a vanished file: the readers name it
    return not stat.S_ISREG(mode)
