"""The DICOM pixel pass: stored values of every frame, in k order, into one preallocated array.

Uncompressed little- or big-endian frames are read with ``readinto`` straight into their slice of
the output, from the pixel data offset the header pass found (checked again here), so an
uncompressed series costs one read per file and no copies. Compressed frames are decoded by
pydicom's pixel plugins (pylibjpeg-openjpeg, pylibjpeg-rle, python-gdcm, ...) on a small thread
pool, which overlaps file reads with decoding. A transfer syntax no installed
plugin can decode raises ``MissingCodecError`` naming it and the package to install.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

from medae.errors import InputError, MedaeError, MissingCodecError
from medae.io import dicom_jpeg_extended as jpeg_extended
from medae.io.dicom_header import FileHeader, Frame
from medae.io.dicom_source import open_dicom
from medae.progress import ProgressFn, check_cancel, report

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE = {IMPLICIT_LE, EXPLICIT_LE, EXPLICIT_BE}
_PIXEL_DATA_TAG = {True: b"\xe0\x7f\x10\x00", False: b"\x7f\xe0\x00\x10"}
_LONG_VRS = {b"OB", b"OW", b"OD", b"OF", b"OL", b"OV", b"UN"}


def storage_dtype(h: FileHeader) -> np.dtype:
    """The numpy dtype of stored pixel values (before any modality LUT)."""
    if h.pixel_tag == 0x7FE00008:
        return np.dtype(np.float32)
    if h.pixel_tag == 0x7FE00009:
        return np.dtype(np.float64)
    bits = {1: 8, 8: 8, 16: 16, 32: 32, 64: 64}.get(h.bits_allocated, 16)
    return np.dtype(f"{'i' if h.pixel_representation == 1 else 'u'}{bits // 8}")


def read_frames(
    frames: list[Frame],
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Stored pixel values of ``frames`` as one (K, rows, cols) array in the storage dtype.

    Raises:
        MissingCodecError: a compressed transfer syntax that no installed plugin decodes.
        InputError: a file that vanished, shrank or whose pixel data cannot be decoded.
        CancelledError: ``cancel`` was set (checked between files).
    """
    first = frames[0].header
    out = np.empty((len(frames), first.rows, first.cols), dtype=storage_dtype(first))
    by_file: dict[str, list[tuple[int, Frame]]] = defaultdict(list)
    for k, fr in enumerate(frames):
        by_file[fr.header.path].append((k, fr))
    fast, slow = [], []
    for path, items in by_file.items():
        h = items[0][1].header
        native = h.transfer_syntax in _NATIVE and h.pixel_tag == 0x7FE00010 and h.bits_allocated in (8, 16, 32)
        (fast if native and h.pixel_offset is not None else slow).append((path, items))
    for h in {items[0][1].header.transfer_syntax: items[0][1].header for _p, items in slow}.values():
        check_decoder(h)
    total = len(by_file)
    done = 0
    for path, items in fast:
        if done % 8 == 0:
            check_cancel(cancel)
            report(progress, done / total, f"Reading pixels ({done}/{total} files)")
        if not _read_native(path, items, out):
            slow.append((path, items))
            continue
        done += 1
    if slow:
        _decode_all(slow, out, progress, cancel, done, total, workers)
    report(progress, 1.0, "Pixels read")
    return out


def check_decoder(h: FileHeader) -> None:
    """Raises ``MissingCodecError`` when no installed plugin decodes the file's transfer syntax."""
    if h.transfer_syntax in _NATIVE or jpeg_extended.handles(h.transfer_syntax, h.bits_stored):
        return
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid = UID(h.transfer_syntax)
    name = uid.name if uid.is_valid and uid.name != str(uid) else "an unknown transfer syntax"
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as exc:
        raise MissingCodecError(
            f"{h.path}: pixel data in {name} (transfer syntax {uid}) cannot be decoded: no pixel data "
            "decoder supports it. Convert the series to an uncompressed or standard compressed transfer "
            "syntax (e.g. with dcmtk's dcmdjpeg or gdcmconv) and load it again."
        ) from exc
    if uid == jpeg_extended.JPEG_EXTENDED and h.bits_stored > 8 and "pylibjpeg" not in decoder.available_plugins:
        # Pillow and GDCM (as pydicom drives them) read only 8-bit JPEG Extended; imagecodecs was not usable.
        raise MissingCodecError(
            f"{h.path}: pixel data in {name} with {h.bits_stored}-bit samples: the installed decoders read only "
            "8-bit samples of this syntax. Install imagecodecs 2024 or later (`pip install -U imagecodecs`, which "
            "brings libjpeg-turbo 3), or convert the series to an uncompressed transfer syntax (e.g. with dcmtk's "
            "dcmdjpeg or gdcmconv) and load it again."
        )
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies) or "a pixel data plugin for it"
        raise MissingCodecError(
            f"{h.path}: pixel data in {name} (transfer syntax {uid}) needs a decoder that is not installed. "
            f"Install one of: {needs} (e.g. `pip install pylibjpeg pylibjpeg-openjpeg pylibjpeg-rle "
            "python-gdcm`) and load it again."
        )


def _read_native(path: str, items: list[tuple[int, Frame]], out: np.ndarray) -> bool:
    """Reads uncompressed frames of one file into ``out``; False when pydicom must do it."""
    h = items[0][1].header
    little = h.transfer_syntax != EXPLICIT_BE
    implicit = h.transfer_syntax == IMPLICIT_LE
    nbytes = h.frame_bytes
    if out[0].nbytes != nbytes:
        return False
    try:
        fh, _size, _gzipped = open_dicom(path)
        with fh:
            fh.seek(h.pixel_offset)
            head = fh.read(12)
            if head[:4] != _PIXEL_DATA_TAG[little]:
                return False  # the file changed since the header pass, or an unusual layout
            if implicit:
                length, start = int.from_bytes(head[4:8], "little"), h.pixel_offset + 8
            elif head[4:6] in _LONG_VRS:
                length, start = int.from_bytes(head[8:12], "little" if little else "big"), h.pixel_offset + 12
            else:
                return False
            if length == 0xFFFFFFFF or length < h.n_frames * nbytes:
                return False
            for k, fr in items:
                fh.seek(start + (fr.index or 0) * nbytes)
                got = fh.readinto(memoryview(out[k]).cast("B"))
                if got != nbytes:
                    raise InputError(
                        f"{path}: the pixel data is truncated ({got} of {nbytes} bytes of "
                        f"{fr.name}). Copy the file again or remove it from the folder."
                    )
                if not little and out.dtype.itemsize > 1:
                    out[k].byteswap(inplace=True)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: the file disappeared after the folder was scanned. Scan it again.") from exc
    except OSError as exc:
        why = exc.strerror or exc
        raise InputError(f"{path}: cannot be read ({why}). Check the file and its access rights.") from exc
    except ValueError as exc:  # a gzipped file damaged since the header pass
        raise InputError(f"{path}: cannot be read ({exc}). Copy the file again or remove it from the folder.") from exc
    return True


def _decode_all(
    slow: list[tuple[str, list[tuple[int, Frame]]]],
    out: np.ndarray,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    done: int,
    total: int,
    workers: int | None,
) -> None:
    n_frames = sum(len(items) for _p, items in slow)
    if workers is None:
        # Threads overlap one file's read (which releases the GIL) with another's decoding; decoders
        # that release the GIL also decode in parallel. pylibjpeg-openjpeg holds it, so on two cores
        # the gain measured for JPEG 2000 is small; uncompressed data never comes here.
        workers = min(4, os.cpu_count() or 1) if n_frames >= 8 else 1
    if workers <= 1 or len(slow) == 1:
        for path, items in slow:
            check_cancel(cancel)
            report(progress, done / total, f"Decoding pixels ({done}/{total} files)")
            _decode_file(path, items, out, cancel)
            done += 1
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_decode_file, path, items, out, cancel) for path, items in slow]
        try:
            for fut in futures:
                fut.result()
                done += 1
                report(progress, done / total, f"Decoding pixels ({done}/{total} files)")
                check_cancel(cancel)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise


def _decode_file(path: str, items: list[tuple[int, Frame]], out: np.ndarray, cancel: threading.Event | None) -> None:
    check_cancel(cancel)
    h = items[0][1].header
    order = sorted(items, key=lambda kf: kf[1].index or 0)
    indices = [fr.index or 0 for _k, fr in order]
    failure: BaseException | None = None
    own = jpeg_extended.handles(h.transfer_syntax, h.bits_stored)
    for plugin in [OWN_JPEG_EXTENDED] if own else decoding_plugins(h.transfer_syntax):
        try:
            decoded = 0
            for (k, fr), arr in zip(order, _frames(path, indices, h, plugin), strict=False):
                decoded += 1
                if arr.shape != out.shape[1:]:
                    raise InputError(
                        f"{path}: {fr.name} decodes to {arr.shape[-1]}x{arr.shape[0]} pixels where the header says "
                        f"{h.cols}x{h.rows}. The file is inconsistent; re-export the series."
                    )
                np.copyto(out[k], arr, casting="unsafe")
            if decoded < len(order):
                raise InputError(
                    f"{path}: holds {decoded} decodable frame(s) where {len(order)} were expected. The file may be "
                    "truncated; copy it again or remove it from the folder."
                )
            return
        except (MedaeError, KeyboardInterrupt, SystemExit):
            raise
        except FileNotFoundError as exc:
            raise InputError(f"{path}: the file disappeared after the folder was scanned. Scan it again.") from exc
        except BaseException as exc:  # decoders raise many types on damaged data; Rust panics are BaseException
            failure = exc
    why = " ".join(str(failure).split())  # one line: some decoders list each plugin's failure on its own line
    raise InputError(
        f"{path}: the pixel data cannot be decoded ({type(failure).__name__}: {why}). The file may be damaged "
        "or truncated; copy it again or remove it from the folder."
    ) from failure


# Plugins in the order we trust them with damaged data. python-gdcm comes last and is used only when
# nothing else decodes the syntax: on some damaged JPEG 2000 streams it aborts the whole process.
_PLUGIN_ORDER = ("pylibjpeg", "pyjpegls", "pydicom", "pillow", "gdcm")


def decoding_plugins(transfer_syntax: str) -> list[str]:
    """The pydicom decoding plugins to try, in order, for a compressed transfer syntax."""
    from pydicom.pixels import get_decoder

    available = set(get_decoder(transfer_syntax).available_plugins)
    chosen = [p for p in _PLUGIN_ORDER if p in available]
    if len(chosen) > 1 and "gdcm" in chosen:
        chosen.remove("gdcm")
    chosen.extend(sorted(available - set(_PLUGIN_ORDER) - {"gdcm"}))
    return chosen or [""]


#: The plugin name under which ``_frames`` decodes 12-bit JPEG Extended itself.
OWN_JPEG_EXTENDED = "imagecodecs"


def _frames(path: str, indices: list[int], h: FileHeader, plugin: str) -> Iterator[np.ndarray]:
    from pydicom.pixels import iter_pixels

    n_frames = h.n_frames
    src = _source(path)
    if plugin == OWN_JPEG_EXTENDED:
        yield from jpeg_extended.frames(src, indices, n_frames, h.bits_stored, h.pixel_representation == 1)
        return
    try:
        stream = iter_pixels(src, indices=indices if n_frames > 1 else None, raw=True, decoding_plugin=plugin)
        with warnings.catch_warnings():
            # On a deflated file the streaming reader misreads the encoding and says so before failing.
            warnings.simplefilter("ignore", UserWarning)
            first = next(stream)
    except (ValueError, TypeError, AttributeError):
        # Some decoders fix signedness in place on read-only buffers when streaming frames, and the
        # streaming reader does not inflate deflated data sets (it finds no pixel data); the whole-dataset
        # path copies first and reads through pydicom's full reader, so it handles those files.
        yield from _whole_file_frames(_source(path), indices, n_frames, plugin)
        return
    yield first
    yield from stream


def _source(path: str) -> str | BinaryIO:
    """The path itself, or an in-memory copy of a gzipped file's content."""
    fh, _size, gzipped = open_dicom(path)
    if not gzipped:
        fh.close()
        return path
    return fh


def _whole_file_frames(path: str | BinaryIO, indices: list[int], n_frames: int, plugin: str) -> Iterator[np.ndarray]:
    import pydicom
    from pydicom.pixels import pixel_array

    arr = pixel_array(pydicom.dcmread(path), raw=True, decoding_plugin=plugin)
    if n_frames == 1:
        yield arr
        return
    for i in indices:
        yield arr[i]
