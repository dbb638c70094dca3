"""Opening a DICOM file for reading, including gzip-compressed files (``.dcm.gz``).

Archives and some research exports keep each DICOM file gzipped. Such a file is recognised by the
gzip magic bytes, not by its name, and read through an in-memory copy of its decompressed bytes:
the header and pixel passes seek freely, which a gzip stream only emulates by decompressing again.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"

# A single DICOM image larger than this decompressed is refused rather than filling memory; a
# multi-frame series of 2 GiB is larger than any scan medae analyses.
MAX_DECOMPRESSED = 2 << 30


class GzipNotDicom(Exception):
    """A gzip file whose content does not start like DICOM."""


def open_dicom(path: str | os.PathLike, sniff: Callable[[bytes], bool] | None = None) -> tuple[BinaryIO, int, bool]:
    """Opens a DICOM file, decompressing it first when it is gzipped.

    Args:
        path: The file.
        sniff: For gzip files, a function of the first 132 decompressed bytes that says whether they
            look like DICOM; only then is the rest decompressed (so a folder's ``.nii.gz`` files are
            not decompressed just to be skipped).

    Returns:
        (file object positioned at 0, size in bytes of the DICOM content, whether it was gzipped).
        The caller closes the file object.

    Raises:
        OSError: the file cannot be opened or read.
        GzipNotDicom: gzipped, but ``sniff`` says the content is not DICOM.
        ValueError: a damaged or over-large gzip file (the message says which).
    """
    fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        if fh.read(2) != GZIP_MAGIC:
            fh.seek(0)
            return fh, os.fstat(fh.fileno()).st_size, False
        fh.seek(0)
        data = _decompress(fh, sniff)
    except BaseException:
        fh.close()
        raise
    fh.close()
    return io.BytesIO(data), len(data), True


def _decompress(fh: BinaryIO, sniff: Callable[[bytes], bool] | None) -> bytes:
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            head = gz.read(132)
            if sniff is not None and not sniff(head):
                raise GzipNotDicom("gzip content is not DICOM")
            rest = gz.read(MAX_DECOMPRESSED + 1 - len(head))
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ValueError(f"damaged gzip compression ({exc or type(exc).__name__})") from exc
    if len(head) + len(rest) > MAX_DECOMPRESSED:
        raise ValueError(f"decompresses to more than {MAX_DECOMPRESSED >> 30} GiB")
    return head + rest
