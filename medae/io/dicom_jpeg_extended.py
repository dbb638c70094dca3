"""12-bit JPEG Extended (lossy JPEG, Process 4) frames, decoded with imagecodecs' libjpeg-turbo.

Older CT and MR archives hold many series in this syntax. pydicom's Pillow and GDCM plugins read only
its 8-bit form (GDCM decodes 12 bits but wraps undershoot near 0 to 4095, so a dark air region turns
bright), and pylibjpeg-libjpeg is GPL-licensed; libjpeg-turbo (BSD, since 3.0) decodes 12-bit samples
and clamps them to the valid range as the JPEG standard asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

#: The transfer syntax: JPEG Extended (Process 2 and 4), 8- or 12-bit lossy JPEG.
JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"


def available() -> bool:
    """Whether the installed imagecodecs holds a libjpeg-turbo that decodes 12-bit samples."""
    try:
        import imagecodecs
    except ImportError:
        return False
    if not getattr(imagecodecs.JPEG8, "available", False):
        return False
    version = str(getattr(imagecodecs, "jpeg8_version", lambda: "")())
    # "libjpeg_turbo 3.1.3/8.0": 12-bit decoding came with libjpeg-turbo 3.0.
    digits = version.replace("libjpeg_turbo", "").strip().split(".", 1)[0]
    return digits.isdigit() and int(digits) >= 3


def handles(transfer_syntax: str, bits_stored: int) -> bool:
    """Whether this module, not pydicom's plugins, should decode frames of this kind."""
    return transfer_syntax == JPEG_EXTENDED and bits_stored > 8 and available()


def frames(
    source: str | BinaryIO, indices: list[int], n_frames: int, bits_stored: int, signed: bool
) -> Iterator[np.ndarray]:
    """Decoded stored values of the frames ``indices`` of one file, in that order.

    Args:
        source: The file's path, or a file object holding its content.
        indices: Frame numbers (0-based) to decode.
        n_frames: Frames the file holds (its Number of Frames, 1 when absent).
        bits_stored: Bits Stored; a signed value is sign-extended from this bit width.
        signed: Pixel Representation is 1: JPEG codes the two's complement bits as unsigned samples.
    """
    import imagecodecs
    import pydicom
    from pydicom.encaps import generate_frames

    ds = pydicom.dcmread(source, specific_tags=["PixelData", "NumberOfFrames"])
    if "PixelData" not in ds:
        raise ValueError("the file holds no pixel data")
    wanted = set(indices)
    decoded: dict[int, np.ndarray] = {}
    for i, stream in enumerate(generate_frames(ds.PixelData, number_of_frames=n_frames)):
        if i in wanted:
            decoded[i] = _stored_values(imagecodecs.jpeg8_decode(stream), bits_stored, signed)
        if len(decoded) == len(wanted):
            break
    for i in indices:
        if i in decoded:
            yield decoded[i]
        else:
            return  # fewer frames than the header says: the caller reports the shortfall


def _stored_values(arr: np.ndarray, bits_stored: int, signed: bool) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if not signed:
        return arr
    values = arr.astype(np.int32)
    half = 1 << (bits_stored - 1)
    return np.where(values >= half, values - (1 << bits_stored), values)
