"""DICOM header as rows for the tag browser: read once, filter as the user types."""

from __future__ import annotations

import os
from dataclasses import dataclass

from medae.errors import InputError

_MAX_VALUE = 200


@dataclass(frozen=True)
class TagRow:
    """One element of a DICOM header.

    Attributes:
        tag: "(gggg,eeee)".
        keyword: DICOM keyword ("PatientName"); for a private tag its vendor's name from pydicom's private
            dictionary ("[B_value]"), else "Private tag (CREATOR)"; "Private Creator" for a block's creator.
        vr: Value representation ("PN", "SQ", ...).
        value: Printable value, shortened.
        depth: Nesting level inside sequences (0 for the top level).
        parent: Index of the enclosing sequence row, or -1.
    """

    tag: str
    keyword: str
    vr: str
    value: str
    depth: int
    parent: int

    def matches(self, text: str) -> bool:
        """Case-insensitive match on tag, keyword or value.

        Tags match written as "(0010,0010)", "0010,0010" or "00100010"; keywords also as the standard's
        words ("pixel spacing" finds PixelSpacing).
        """
        t = text.strip().lower()
        if not t:
            return True
        if t in self.tag.lower() or t in self.keyword.lower() or t in self.value.lower():
            return True
        bare = "".join(ch for ch in t if ch not in "(), ")
        return bool(bare) and (bare in _bare(self.tag) or bare in self.keyword.lower())


def _bare(tag: str) -> str:
    """A tag as "00100010", for searches typed without brackets and comma."""
    return "".join(ch for ch in tag.lower() if ch not in "(), ")


def read_tags(path: str | os.PathLike) -> list[TagRow]:
    """The header of one DICOM file as rows, sequences flattened depth-first.

    Raises:
        InputError: the file cannot be read as DICOM.
    """
    import pydicom

    from medae.io.dicom_source import open_dicom

    try:
        fh, _size, _gzipped = open_dicom(path)
        with fh:
            ds = pydicom.dcmread(fh, stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types for broken files
        raise InputError(f"{path}: cannot read the DICOM header ({exc}). Check that the file is complete.") from exc
    rows: list[TagRow] = []
    if getattr(ds, "file_meta", None):
        _walk(ds.file_meta, rows, 0, -1)
    _walk(ds, rows, 0, -1)
    return rows


def _walk(ds, rows: list[TagRow], depth: int, parent: int) -> None:
    for elem in ds:
        tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.VR == "SQ":
            rows.append(TagRow(tag, _keyword(elem), "SQ", f"{len(elem.value)} item(s)", depth, parent))
            me = len(rows) - 1
            for n, item in enumerate(elem.value, 1):
                rows.append(TagRow("", f"Item {n}", "", "", depth + 1, me))
                _walk(item, rows, depth + 2, len(rows) - 1)
            continue
        if elem.tag == 0x7FE00010 or elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            length = len(elem.value) if elem.value is not None else 0
            value = f"<{length} bytes>"
        else:
            value = str(elem.value)
        if len(value) > _MAX_VALUE:
            value = value[: _MAX_VALUE - 1] + "…"
        rows.append(TagRow(tag, _keyword(elem), str(elem.VR), value, depth, parent))


def _keyword(elem) -> str:
    """The standard's keyword, or for a private tag what its vendor calls it.

    Vendor fields (b-values, slice timings) live in private tags; naming them lets the search find them.
    """
    if elem.keyword:
        return elem.keyword
    if not elem.tag.is_private:
        return ""
    if elem.tag.is_private_creator:
        return "Private Creator"
    name = elem.name
    if name.startswith("[") and name.endswith("]"):
        return name
    creator = str(elem.private_creator or "").strip()
    return f"Private tag ({creator})" if creator else "Private tag"


def filter_rows(rows: list[TagRow], text: str) -> list[int]:
    """Indices of the rows to show for a search: matches plus the sequence rows that hold them."""
    keep: set[int] = set()
    for n, row in enumerate(rows):
        if row.matches(text):
            keep.add(n)
            p = row.parent
            while p >= 0 and p not in keep:
                keep.add(p)
                p = rows[p].parent
    return sorted(keep)


def dicom_date(text: str) -> str:
    """A DICOM DA value (YYYYMMDD) as YYYY-MM-DD; anything else unchanged."""
    text = str(text).strip()
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 and text.isdigit() else text


def dicom_time(text: str) -> str:
    """A DICOM TM value (HHMMSS.FFFFFF, or shorter) as HH:MM; anything else unchanged."""
    text = str(text).strip()
    digits = text.split(".")[0]
    return f"{digits[:2]}:{digits[2:4]}" if len(digits) >= 4 and digits.isdigit() else text
