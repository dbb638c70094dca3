"""A fast reader for the common DICOM header: Part-10 files in little-endian transfer syntaxes.

Scanning a folder reads hundreds of headers, and building pydicom datasets and converting their
values costs milliseconds per file. This reader walks the elements of the byte stream once, keeps
the raw values of the few tags the header pass needs, decodes them by VR, and stops at the pixel
data, whose offset it reports. It reads in chunks, so big private blocks before the pixels cost a
read, not a parse.

Anything unusual raises ``Fallback`` and the caller reads the file with pydicom instead: no
preamble, big-endian or deflated datasets, a character set other than ASCII/Latin-1/UTF-8, the
functional-group or LUT sequences the enhanced reader needs, or any structural surprise.
"""

from __future__ import annotations

from struct import unpack_from
from typing import Any, BinaryIO

_CHUNK = 32768
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UT", "UC", "UR"}
_BINARY = {"US": ("H", 2), "SS": ("h", 2), "UL": ("I", 4), "SL": ("i", 4), "FL": ("f", 4), "FD": ("d", 8)}
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_IMPLICIT_LE, _EXPLICIT_BE, _DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"


class Fallback(Exception):
    """The file needs pydicom's full reader."""


class RawHeader:
    """The tags read, with the small part of pydicom's Dataset interface the header pass uses."""

    def __init__(self, values: dict[str, Any], meta: dict[str, Any], implicit: bool) -> None:
        self._values = values
        self.file_meta = meta
        self.original_encoding = (implicit, True)

    def get(self, keyword: str, default: Any = None) -> Any:
        """The decoded value of ``keyword``, or ``default``."""
        return self._values.get(keyword, default)

    def __contains__(self, keyword: str) -> bool:
        return keyword in self._values

    def __getattr__(self, keyword: str) -> Any:
        try:
            return self._values[keyword]
        except KeyError:
            raise AttributeError(keyword) from None

    def __len__(self) -> int:
        return len(self._values)


class _Stream:
    """A growing buffer over a file opened for reading."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.buf = fh.read(_CHUNK)
        self.eof = len(self.buf) < _CHUNK

    def ensure(self, end: int) -> bool:
        """Reads until ``end`` bytes are buffered; False at end of file."""
        while len(self.buf) < end and not self.eof:
            more = self.fh.read(max(_CHUNK, end - len(self.buf)))
            self.eof = len(more) == 0
            self.buf += more
        return len(self.buf) >= end


def read_raw_header(
    fh: BinaryIO, wanted: dict[int, tuple[str, str]], needs_pydicom: set[int]
) -> tuple[RawHeader, int | None, int]:
    """Reads the header of a Part-10 file.

    Args:
        fh: The file, positioned at its start.
        wanted: Tag -> (keyword, VR from the dictionary) of the values to keep.
        needs_pydicom: Tags whose presence means the full reader is needed (e.g. sequences).

    Returns:
        The header, the offset of the pixel data element (None if absent) and the pixel tag.

    Raises:
        Fallback: anything this reader does not handle.
    """
    s = _Stream(fh)
    if len(s.buf) < 144 or s.buf[128:132] != b"DICM":
        raise Fallback("no preamble")
    pos, meta = _read_meta(s)
    ts = str(meta.get("TransferSyntaxUID", ""))
    if not ts or ts in (_EXPLICIT_BE, _DEFLATED):
        raise Fallback(f"transfer syntax {ts!r}")
    implicit = ts == _IMPLICIT_LE
    values: dict[str, Any] = {}
    raw: dict[int, tuple[str, bytes]] = {}
    while True:
        if not s.ensure(pos + 8):
            if pos != len(s.buf):
                raise Fallback("trailing bytes")
            return _decoded(raw, wanted, values, meta, implicit), None, 0
        group, elem = unpack_from("<HH", s.buf, pos)
        tag = group << 16 | elem
        if tag in _PIXEL_TAGS:
            return _decoded(raw, wanted, values, meta, implicit), pos, tag
        vr, length, start = _element_header(s, pos, implicit)
        if tag in needs_pydicom:
            raise Fallback(f"tag {tag:08X}")
        if length == 0xFFFFFFFF:
            pos = _skip_sequence(s, start, implicit)
            continue
        end = start + length
        if tag in wanted:
            if not s.ensure(end):
                raise Fallback("truncated header")
            raw[tag] = (vr or wanted[tag][1], s.buf[start:end])
        pos = end


def _read_meta(s: _Stream) -> tuple[int, dict[str, Any]]:
    pos = 132
    meta: dict[str, Any] = {}
    while s.ensure(pos + 8):
        group, elem = unpack_from("<HH", s.buf, pos)
        if group != 0x0002:
            break
        vr, length, start = _element_header(s, pos, implicit=False)
        if length == 0xFFFFFFFF or not s.ensure(start + length):
            raise Fallback("odd file meta")
        if elem in (0x0002, 0x0010):
            value = s.buf[start : start + length].decode("ascii", "replace").strip("\x00 ")
            meta["MediaStorageSOPClassUID" if elem == 0x0002 else "TransferSyntaxUID"] = value
        pos = start + length
    return pos, meta


def _element_header(s: _Stream, pos: int, implicit: bool) -> tuple[str | None, int, int]:
    """(VR or None, value length, value start) of the element at ``pos``."""
    if implicit:
        return None, unpack_from("<I", s.buf, pos + 4)[0], pos + 8
    vr = s.buf[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        if not s.ensure(pos + 12):
            raise Fallback("truncated header")
        return vr.decode(), unpack_from("<I", s.buf, pos + 8)[0], pos + 12
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise Fallback("invalid VR")
    return vr.decode(), unpack_from("<H", s.buf, pos + 6)[0], pos + 8


def _skip_sequence(s: _Stream, pos: int, implicit: bool) -> int:
    """Skips an undefined-length sequence starting at its first item; returns the position after it."""
    while True:
        if not s.ensure(pos + 8):
            raise Fallback("truncated sequence")
        group, elem, length = unpack_from("<HHI", s.buf, pos)
        tag = group << 16 | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise Fallback("bad sequence item")
        if length != 0xFFFFFFFF:
            pos += length
            continue
        while True:  # elements of an undefined-length item, up to its delimiter
            if not s.ensure(pos + 8):
                raise Fallback("truncated item")
            group, elem = unpack_from("<HH", s.buf, pos)
            if (group << 16 | elem) == _ITEM_END:
                pos += 8
                break
            _vr, inner, start = _element_header(s, pos, implicit)
            pos = _skip_sequence(s, start, implicit) if inner == 0xFFFFFFFF else start + inner


def _decoded(
    raw: dict[int, tuple[str, bytes]],
    wanted: dict[int, tuple[str, str]],
    values: dict[str, Any],
    meta: dict[str, Any],
    implicit: bool,
) -> RawHeader:
    charset = raw.get(0x00080005)
    encoding = "latin-1"
    if charset is not None:
        terms = {t.strip() for t in charset[1].decode("ascii", "replace").split("\\")}
        terms.discard("")
        if terms <= {"ISO_IR 100", "ISO_IR 6", "ISO 2022 IR 6"}:
            encoding = "latin-1"
        elif terms == {"ISO_IR 192"}:
            encoding = "utf-8"
        else:
            raise Fallback(f"character set {terms}")
    for tag, (vr, data) in raw.items():
        keyword = wanted[tag][0]
        if vr in _TEXT_VRS:
            text = data.decode(encoding, "replace").rstrip("\x00 ")
            parts = [p.strip("\x00 ") for p in text.split("\\")] if vr not in ("LT", "ST", "UT") else [text]
            values[keyword] = parts[0] if len(parts) == 1 else parts
        elif vr in _BINARY:
            code, size = _BINARY[vr]
            n = len(data) // size
            items = list(unpack_from(f"<{n}{code}", data)) if n else []
            values[keyword] = items[0] if n == 1 else items
        elif vr == "US or SS" or vr == "US or SS or OW":
            n = len(data) // 2
            items = list(unpack_from(f"<{n}H", data)) if n else []
            values[keyword] = items[0] if n == 1 else items
        else:
            raise Fallback(f"VR {vr} of {keyword}")
    return RawHeader(values, meta, implicit)
