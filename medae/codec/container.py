"""The compressed-study file (``.mae``): a signature, a JSON header, then named binary sections.

Layout: 8 signature bytes, the header's length (8 bytes, little-endian), the header's sha256 (32
bytes), the header (UTF-8 JSON), then the sections in the header's order. The header lists each
section's name, length and sha256, so a truncated or altered file (header or data) is refused rather
than decoded into wrong voxels. Nothing is pickled; any
JSON reader can inspect a file. The signature follows PNG's: a non-ASCII first byte, and the line ends
and end-of-file byte that a text-mode transfer would change.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from medae import atomic
from medae.errors import InputError, OutputError

SIGNATURE = b"\x89MAE\r\n\x1a\n"
FORMAT = "medae-compressed-study"
VERSION = 1
_MAX_HEADER = 64 << 20
_PREFIX = len(SIGNATURE) + 8 + 32  # signature, header length, header sha256


def pack(header: dict, sections: dict[str, bytes]) -> bytes:
    """The file's bytes: ``header`` (JSON-ready) with the section table added, then the sections."""
    table = [{"name": n, "bytes": len(b), "sha256": hashlib.sha256(b).hexdigest()} for n, b in sections.items()]
    head = dict(header, format=FORMAT, version=VERSION, sections=table)
    text = json.dumps(head, indent=1, allow_nan=False).encode("utf-8")
    digest = hashlib.sha256(text).digest()
    return b"".join([SIGNATURE, struct.pack("<Q", len(text)), digest, text, *sections.values()])


def unpack(data: bytes, name: str = "file", sections: bool = True) -> tuple[dict, dict[str, memoryview]]:
    """Header and sections of a file's bytes, each section checked against its sha256.

    With ``sections`` False, ``data`` may end after the header and only the header is read. The sections
    are views of ``data``, not copies: a study's values are most of its file.

    Raises:
        InputError: Not a compressed study, a newer version, truncated or damaged.
    """
    if not data.startswith(SIGNATURE):
        near = (
            len(data) >= len(SIGNATURE)
            and sum(a != b for a, b in zip(data[: len(SIGNATURE)], SIGNATURE, strict=False)) <= 2
        )
        if data[1:4] == b"MAE" or near:  # a text-mode copy rewrites the line ends; a flipped bit, one byte
            raise InputError(
                f"{name}: the file's first bytes were altered (copied as text, or damaged); copy it again as binary."
            )
        raise InputError(f"{name}: not a medae compressed study (.mae); give a file written by `medae compress`.")
    if len(data) < _PREFIX:
        raise InputError(f"{name}: the file is cut short; copy it again.")
    (size,) = struct.unpack("<Q", data[len(SIGNATURE) : len(SIGNATURE) + 8])
    start = _PREFIX
    if size > _MAX_HEADER or start + size > len(data):
        raise InputError(f"{name}: the file is cut short or damaged (its header runs past the end); copy it again.")
    text = data[start : start + size]
    if hashlib.sha256(text).digest() != data[len(SIGNATURE) + 8 : _PREFIX]:
        raise InputError(f"{name}: the file's header is damaged (its checksum does not match); restore a good copy.")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{name}: the file's header is damaged ({exc}); restore a good copy.") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise InputError(f"{name}: not a medae compressed study (.mae); give a file written by `medae compress`.")
    version = header.get("version")
    if not isinstance(version, int) or not isinstance(header.get("sections", []), list):
        raise InputError(f"{name}: the file's header is damaged (no format version); restore a good copy.")
    if version > VERSION:
        raise InputError(
            f"{name}: written by a newer medae (format version {header['version']}, this one reads up to "
            f"{VERSION}); update medae to open it."
        )
    if not sections:
        return header, {}
    found: dict[str, memoryview] = {}
    view = memoryview(data)
    pos = start + size
    for entry in header.get("sections", []):
        if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) or entry["bytes"] < 0:
            raise InputError(f"{name}: the file's section table is damaged; restore a good copy.")
        n = entry["bytes"]
        chunk = view[pos : pos + n]
        if len(chunk) != n:
            raise InputError(f"{name}: the file is cut short ({len(data)} bytes; it should hold more); copy it again.")
        if hashlib.sha256(chunk).hexdigest() != entry.get("sha256"):
            raise InputError(
                f"{name}: the {entry.get('name')} section is damaged (its checksum does not match); "
                "restore the file from a good copy."
            )
        found[str(entry.get("name"))] = chunk
        pos += n
    if pos != len(data):
        raise InputError(f"{name}: {len(data) - pos} unexpected bytes follow the last section; the file is damaged.")
    return header, found


def write(path: str | os.PathLike, header: dict, sections: dict[str, bytes]) -> Path:
    """Writes a compressed study atomically (a temporary file renamed into place)."""
    path = Path(path)
    try:
        atomic.write_bytes(path, pack(header, sections))
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc}). Check that the folder exists and is writable.") from exc
    return path


def read_header(path: str | os.PathLike) -> dict:
    """The header of a ``.mae`` file alone (its sections unread and unchecked): for listings."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            start = fh.read(_PREFIX)
            if len(start) < _PREFIX or not start.startswith(SIGNATURE):
                return unpack(start, str(path))[0]  # raises, with the reason
            (size,) = struct.unpack("<Q", start[len(SIGNATURE) : len(SIGNATURE) + 8])
            if size > _MAX_HEADER:
                raise InputError(f"{path}: the file's header is damaged; copy it again.")
            text = fh.read(size)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc}).") from exc
    if len(text) != size:
        raise InputError(f"{path}: the file is cut short; copy it again.")
    return unpack(start + text, str(path), sections=False)[0]


def read(path: str | os.PathLike) -> tuple[dict, dict[str, memoryview]]:
    """Header and checked sections of a ``.mae`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file.") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{path} is a folder; give a .mae file written by `medae compress`.") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc}).") from exc
    return unpack(data, str(path))
