"""A small PNG writer (zlib only), so headless rendering needs neither Qt nor an imaging library."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from medae.atomic import write_bytes


def encode_png(rgb: np.ndarray) -> bytes:
    """Encodes an (H, W, 3) or (H, W) uint8 image as PNG bytes (8-bit RGB or greyscale)."""
    img = np.asarray(rgb)
    if img.dtype != np.uint8:
        raise ValueError(f"PNG needs uint8 pixels, got {img.dtype}")
    if img.ndim == 2:
        color_type, channels = 0, 1
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        color_type, channels = (2, 3) if img.shape[2] == 3 else (6, 4)
    else:
        raise ValueError(f"PNG needs an (H, W), (H, W, 3) or (H, W, 4) image, got {img.shape}")
    h, w = img.shape[:2]
    rows = np.ascontiguousarray(img).reshape(h, w * channels)
    # Filter type 0 (none) on every row: a zero byte before each scanline.
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def write_png(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Writes an image as a PNG file, atomically."""
    write_bytes(path, encode_png(rgb))


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Reads a PNG written by ``write_png`` (unfiltered 8-bit greyscale/RGB/RGBA), for tests and checks."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    if header is None:
        raise ValueError(f"{path}: PNG without a header")
    w, h, depth, color_type = header[:4]
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w * channels + 1)
    if np.any(rows[:, 0] != 0):
        raise ValueError(f"{path}: filtered PNG rows are not supported by this reader")
    img = rows[:, 1:].reshape(h, w, channels) if channels > 1 else rows[:, 1:].reshape(h, w)
    return img.copy()
