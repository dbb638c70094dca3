"""From stored pixel values to meaningful ones: bits stored, modality LUT, padding, MONOCHROME1.

Pure numpy, done in place wherever the result fits the stored dtype, slice by slice so that no
volume-sized temporary is made:

- BitsStored < BitsAllocated: bits above the stored ones are cleared (unsigned) or filled with the
  sign bit (signed), PS3.5 8.1.1.
- Modality LUT, PS3.3 C.11.1: RescaleSlope/RescaleIntercept per frame, or a Modality LUT Sequence.
  Integral slope and intercept keep integers: int16 when the values fit (CT HU), else a wider
  integer; otherwise float32.
- Pixel padding, PS3.3 C.7.5.1.1.2: stored values equal to PixelPaddingValue (or between it and
  PixelPaddingRangeLimit) are outside the scanned field; they become air (-1024 HU for CT, else the
  minimum of the real data) so that they do not read as tissue or as extreme values.
- MONOCHROME1 (minimum is white) is inverted within the range of the real data, so that higher
  values are always brighter, as for MONOCHROME2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medae.io.dicom_header import Frame

CT_AIR = -1024


@dataclass
class Values:
    """The value-mapped array and what was done to it."""

    array: np.ndarray
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    inverted_about: float | None = None


def to_values(raw: np.ndarray, frames: list[Frame], modality: str) -> Values:
    """Maps stored values (K, rows, cols) to modality values, in place where possible.

    Args:
        raw: Stored values from the pixel pass; may be reused as the output.
        frames: The frames, parallel to ``raw``'s first axis.
        modality: DICOM modality; padding becomes -1024 for "CT".
    """
    h0 = frames[0].header
    warnings: list[str] = []
    meta: dict[str, Any] = {"stored_dtype": str(raw.dtype), "bits_stored": h0.bits_stored}
    stored = raw.dtype
    mixed = raw.dtype.kind in "iu" and _mixed_storage(frames)
    if mixed:
        raw = _each_file_as_stored(raw, frames)
        warnings.append(
            "The series' files store their pixels differently (signed and unsigned, or other bits stored); each "
            "file was read with its own settings."
        )
        meta["bits_stored"] = max(f.header.bits_stored for f in frames)
    elif raw.dtype.kind in "iu":
        _clear_unused_bits(raw, h0.bits_stored)
    pads = _frame_padding(frames, stored)
    pad = pads[0] if all(p == pads[0] for p in pads) else None
    slopes = np.array([f.slope for f in frames], dtype=np.float64)
    inters = np.array([f.intercept for f in frames], dtype=np.float64)
    lut = h0.modality_lut
    mono1 = np.array([f.header.photometric == "MONOCHROME1" for f in frames])
    identity = lut is None and bool(np.all(slopes == 1) and np.all(inters == 0))
    integral = bool(np.all(slopes == np.round(slopes)) and np.all(inters == np.round(inters)))
    if lut is not None:
        integral = bool(np.all(lut[1] == np.round(lut[1])))
    _describe_rescale(meta, slopes, inters, lut)

    if raw.dtype.kind == "f":
        stored_lo = np.full(len(frames), np.nan)
        stored_hi = stored_lo
    else:
        info = np.iinfo(raw.dtype)
        stored_lo = np.full(len(frames), float(info.min if h0.pixel_representation else 0))
        stored_hi = np.full(len(frames), float(info.max))
        if 0 < h0.bits_stored < raw.dtype.itemsize * 8:
            b = h0.bits_stored
            stored_lo[:] = -(2 ** (b - 1)) if raw.dtype.kind == "i" else 0
            stored_hi[:] = 2 ** (b - 1) - 1 if raw.dtype.kind == "i" else 2**b - 1
    n_pad = 0
    need_stats = any(p is not None for p in pads) or bool(mono1.any()) or raw.dtype.kind == "f" or mixed
    target = None
    if not need_stats:
        # The range the stored bits allow settles it unless it asks for a wider dtype than the
        # stored one; then the data's actual range decides (CT stored as uint16 is int16 HU).
        target = _target(raw.dtype, identity, integral, lut, *_out_range(stored_lo, stored_hi, slopes, inters, lut))
        if target is not None and target.kind in "iu" and target.itemsize > raw.dtype.itemsize:
            target = None
    if target is None:
        stored_lo, stored_hi, n_pad = _stats(raw, pads)
    lo, hi = _out_range(stored_lo, stored_hi, slopes, inters, lut)
    if not np.isfinite(lo):
        lo = hi = 0.0
    # Inversion maps the real range onto itself, so its minimum (the air for non-CT) is unchanged.
    flip = float(lo + hi) if mono1.any() else None
    air = None
    if n_pad:
        air = float(CT_AIR) if modality == "CT" else lo
        lo, hi = min(lo, air), max(hi, air)
    if target is None:
        # A series mixing signs was widened to hold both; its values' true range may fit the stored width again.
        start = np.dtype(f"i{stored.itemsize}") if raw.dtype != stored else raw.dtype
        target = _target(start, identity, integral, lut, lo, hi)
    if target is None:  # integers too wide even for int64: keep them as float64
        target = np.dtype(np.float64)
    out = _apply(raw, target, slopes, inters, lut, pads, mono1, flip, air)
    inverted = None
    if flip is not None:
        inverted = flip
        warnings.append(
            f"MONOCHROME1 (inverted grey scale) converted so that higher values are brighter: value -> "
            f"{inverted:g} - value."
        )
        meta["monochrome1_inverted"] = True
    if n_pad:
        what = "-1024 HU (air)" if modality == "CT" else f"{air:g}, the minimum of the real data"
        shown = pad or next(p for p in pads if p is not None)
        value = f"{shown[0]:g}{'' if shown[0] == shown[1] else f' to {shown[1]:g}'}"
        warnings.append(
            f"{n_pad} voxels of pixel padding (outside the scanned field, PixelPaddingValue "
            f"{value if pad else f'{value} and others'}) were set to {what}."
        )
        meta["padding_value"] = shown[0]  # as the pixels read it (signed or not), not as the tag was stored
        meta["padding_voxels"] = int(n_pad)
    meta["output_dtype"] = str(out.dtype)
    return Values(out, warnings, meta, inverted)


def _mixed_storage(frames: list[Frame]) -> bool:
    """Whether the files of one series store their integers differently (signedness or bits stored)."""
    h0 = frames[0].header
    return any(
        f.header.pixel_representation != h0.pixel_representation or f.header.bits_stored != h0.bits_stored
        for f in frames
    )


def _each_file_as_stored(raw: np.ndarray, frames: list[Frame]) -> np.ndarray:
    """Stored values of each frame read with its own file's signedness and bits stored.

    The pixel pass read every file's bits into one buffer typed as the first file's; a series that mixes
    signed and unsigned files gets a signed buffer twice as wide (int64 at most), so every value fits.
    """
    size = raw.dtype.itemsize
    signs = {f.header.pixel_representation == 1 for f in frames}
    dtype = np.dtype(f"i{min(8, 2 * size)}") if len(signs) > 1 else raw.dtype
    out = raw if dtype == raw.dtype else np.empty(raw.shape, dtype=dtype)
    for k, fr in enumerate(frames):
        own = raw[k].view(f"{'i' if fr.header.pixel_representation == 1 else 'u'}{size}")
        values = own if out is raw else own.copy()
        _clear_unused_bits(values, fr.header.bits_stored)
        if out is not raw:
            out[k] = values
    return out


def _frame_padding(frames: list[Frame], stored: np.dtype) -> list[tuple[float, float] | None]:
    """Each frame's padding range as its own file's stored values read it.

    Files of one series that leave PixelPaddingValue out get the series' value when the others agree on
    one (a scanner pads all its slices alike; the tag is what some exports drop).
    """
    declared = {f.header.padding for f in frames if f.header.padding is not None}
    common = next(iter(declared)) if len(declared) == 1 else None
    pads = []
    for fr in frames:
        signed = fr.header.pixel_representation == 1
        own = np.dtype(f"{'i' if signed else 'u'}{stored.itemsize}") if stored.kind in "iu" else stored
        pads.append(_padding_range(fr.header.padding or common, own))
    return pads


def _clear_unused_bits(raw: np.ndarray, bits_stored: int) -> None:
    total = raw.dtype.itemsize * 8
    if not 0 < bits_stored < total:
        return
    shift = total - bits_stored
    unsigned = raw.view(f"u{raw.dtype.itemsize}")
    if raw.dtype.kind == "u":
        np.bitwise_and(unsigned, (1 << bits_stored) - 1, out=unsigned)
    else:
        # Shift the sign bit to the top, then an arithmetic shift back fills the unused bits with it.
        np.left_shift(unsigned, shift, out=unsigned)
        np.right_shift(raw, shift, out=raw)


def _padding_range(padding: tuple[float, float | None] | None, dtype: np.dtype) -> tuple[float, float] | None:
    if padding is None:
        return None
    values = [v for v in padding if v is not None]
    if dtype.kind in "iu":
        # PixelPaddingValue is US or SS like the pixels; a file may carry it with the other sign.
        bits = dtype.itemsize * 8
        info = np.iinfo(dtype)
        values = [v - 2**bits if v > info.max else (v + 2**bits if v < info.min else v) for v in values]
    return float(min(values)), float(max(values))


def _pad_mask(s: np.ndarray, pad: tuple[float, float] | None) -> np.ndarray | None:
    if pad is None:
        return None
    if pad[0] == pad[1]:
        return s == pad[0]
    return (s >= pad[0]) & (s <= pad[1])


def _stats(raw: np.ndarray, pads: list[tuple[float, float] | None]) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-slice min and max of the real (non-padding) stored values, and the padding count."""
    k = raw.shape[0]
    lo, hi = np.full(k, np.nan), np.full(k, np.nan)
    n_pad = 0
    for i in range(k):
        s = raw[i]
        m = _pad_mask(s, pads[i])
        if m is not None:
            count = int(np.count_nonzero(m))
            n_pad += count
            if count:
                s = s[~m]
        if s.size:
            if s.dtype.kind == "f":
                s = s[np.isfinite(s)] if not np.isfinite(s).all() else s
                if not s.size:
                    continue
            lo[i], hi[i] = float(s.min()), float(s.max())
    return lo, hi, n_pad


def _out_range(
    lo: np.ndarray, hi: np.ndarray, slopes: np.ndarray, inters: np.ndarray, lut: tuple[int, np.ndarray] | None
) -> tuple[float, float]:
    if lut is not None:
        first, table = lut
        valid = np.isfinite(lo)
        if not valid.any():
            return float("nan"), float("nan")
        a = int(np.clip(np.nanmin(lo) - first, 0, len(table) - 1))
        b = int(np.clip(np.nanmax(hi) - first, 0, len(table) - 1))
        seg = table[a : b + 1]
        return float(seg.min()), float(seg.max())
    a, b = slopes * lo + inters, slopes * hi + inters
    both = np.concatenate([a, b])
    if not np.isfinite(both).any():
        return float("nan"), float("nan")
    return float(np.nanmin(both)), float(np.nanmax(both))


def _target(dtype: np.dtype, identity: bool, integral: bool, lut: Any, lo: float, hi: float) -> np.dtype | None:
    """The output dtype, or None when the range is not known well enough yet."""
    if dtype.kind == "f":
        return np.dtype(np.float32) if dtype.itemsize <= 4 else dtype
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    if identity and _fits(dtype, lo, hi):
        return dtype
    if integral:
        candidates = [f"i{dtype.itemsize}", "i2", "i4", "i8"] if dtype.itemsize >= 2 else ["i2", "i4", "i8"]
        for c in candidates:
            c = np.dtype(c)
            if c.itemsize >= dtype.itemsize and _fits(c, lo, hi):
                return c
        return None
    return np.dtype(np.float32)


def _fits(dtype: np.dtype, lo: float, hi: float) -> bool:
    info = np.iinfo(dtype)
    return info.min <= lo and hi <= info.max


def _wrap(value: float, dtype: np.dtype) -> Any:
    """``value`` as a scalar of integer ``dtype``, modulo 2**bits: exact when the result fits."""
    bits = dtype.itemsize * 8
    v = int(round(value)) % (2**bits)
    if dtype.kind == "i" and v >= 2 ** (bits - 1):
        v -= 2**bits
    return dtype.type(v)


def _apply(
    raw: np.ndarray,
    target: np.dtype,
    slopes: np.ndarray,
    inters: np.ndarray,
    lut: tuple[int, np.ndarray] | None,
    pads: list[tuple[float, float] | None],
    mono1: np.ndarray,
    flip: float | None,
    air: float | None,
) -> np.ndarray:
    in_place = target.kind in "iu" and target.itemsize == raw.dtype.itemsize and raw.dtype.kind in "iu"
    if target.kind == "f" and raw.dtype == target:
        in_place = True
    out = raw.view(target) if in_place else np.empty(raw.shape, dtype=target)
    integer = target.kind in "iu"
    for k in range(raw.shape[0]):
        mask = _pad_mask(raw[k], pads[k])
        if mask is not None and not mask.any():
            mask = None
        o = out[k]
        if lut is not None:
            first, table = lut
            idx = np.clip(raw[k].astype(np.int64) - first, 0, len(table) - 1)
            np.copyto(o, table[idx], casting="unsafe")
        elif in_place:
            if slopes[k] != 1:
                np.multiply(o, _wrap(slopes[k], target) if integer else target.type(slopes[k]), out=o)
            if inters[k] != 0:
                np.add(o, _wrap(inters[k], target) if integer else target.type(inters[k]), out=o)
        elif integer:
            np.copyto(o, raw[k], casting="unsafe")
            if slopes[k] != 1:
                np.multiply(o, target.type(slopes[k]), out=o)
            if inters[k] != 0:
                np.add(o, target.type(inters[k]), out=o)
        else:
            np.multiply(raw[k], target.type(slopes[k]), out=o, dtype=target, casting="unsafe")
            if inters[k] != 0:
                np.add(o, target.type(inters[k]), out=o)
        if flip is not None and mono1[k]:
            np.subtract(_wrap(flip, target) if integer else target.type(flip), o, out=o)
        if mask is not None:
            o[mask] = air
    return out


def _describe_rescale(meta: dict[str, Any], slopes: np.ndarray, inters: np.ndarray, lut: Any) -> None:
    if lut is not None:
        meta["modality_lut"] = True
        return
    uniform = bool(np.all(slopes == slopes[0]) and np.all(inters == inters[0]))
    meta["rescale_slope"] = float(slopes[0]) if uniform else None
    meta["rescale_intercept"] = float(inters[0]) if uniform else None
    meta["rescale_per_slice"] = not uniform
    if not uniform:
        meta["rescale_slope_range"] = [float(slopes.min()), float(slopes.max())]
        meta["rescale_intercept_range"] = [float(inters.min()), float(inters.max())]
