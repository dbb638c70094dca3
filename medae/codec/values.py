"""Voxel values <-> coded bytes: exactly (lossless) or each within a stated error (near-lossless).

Integers (and floats holding only whole numbers) are offset to start at zero and coded by
:mod:`medae.codec.integers`; near-lossless integers use JPEG-LS's own bound when they fit 16 bits and are
quantised otherwise. Floats that are scaled integers are coded as those integers plus the bits their
scaling does not reproduce. Other floats are coded as their bytes (lossless) or quantised to steps of
twice the error (near-lossless). Decoding restores the original dtype, byte order included.
"""

from __future__ import annotations

import numpy as np

from medae.codec import integers
from medae.errors import InputError

# Voxels converted at once where a wider type is needed on the way (a few megabytes).
_PIECE = 1 << 20
# Whole-number floats beyond this cannot all be told apart as float64 integers.
_EXACT_INTEGERS = 2**53


def default_max_error(array: np.ndarray) -> float:
    """0.25% of the 1st-99th percentile range: below the noise of clinical MR and CT (at least 1 for integers)."""
    sample = np.asarray(array).ravel(order="K")[:: max(1, array.size // 1_000_000)]  # K: no copy of F order
    finite = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample
    if finite.size == 0:
        return 1.0
    lo, hi = np.percentile(finite.astype(np.float64), [1.0, 99.0])
    error = 0.0025 * float(hi - lo)
    if array.dtype.kind in "biu":
        return float(max(1, int(error)))
    return error if error > 0 else 1e-3


def usable_bound(array: np.ndarray, bound: float) -> float:
    """The bound as coded: for integers a whole number no larger than the values' range.

    Raises:
        InputError: A float bound so fine against the values' range that the steps would not fit 53 bits.
    """
    a = np.asarray(array)
    if a.size == 0 or bound <= 0:
        return 0.0
    if a.dtype.kind in "biu":
        span = int(a.max()) - int(a.min())
        return float(min(int(min(bound, 2.0**62)), span))
    lo, hi = _finite_range(a)
    if lo > hi:
        return float(bound)
    span = hi - lo
    if span / (2.0 * bound) >= _EXACT_INTEGERS:
        raise InputError(
            f"--max-error {bound:g} is too fine for values that span {span:g}: no file could be smaller than a "
            "lossless one. Use --mode lossless, or a larger --max-error."
        )
    return float(bound)


def encode(array: np.ndarray, max_error: float = 0.0) -> tuple[dict, bytes]:
    """Codes ``array`` (3D); ``max_error`` 0 is lossless.

    Raises:
        InputError: Near-lossless coding of NaN or infinite values.
    """
    a = np.asarray(array)
    info: dict = {"dtype": a.dtype.str}
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    if a.dtype.kind in "iu" and a.dtype.itemsize <= 2:
        # Most scans: 16 bits or fewer, so JPEG-LS takes them as they are, offset slice by slice.
        lo = int(a.min()) if a.size else 0
        near = int(max_error)
        if near <= _near_limit(a):
            coded, data = integers.encode(a, near=near, offset=lo)
            info.update(kind="integer", offset=lo, step=1, values=coded)
            return info, data
        # A bound beyond what JPEG-LS bounds itself: steps of 2 * bound + 1, quantised slice by slice.
        step = 2 * near + 1
        codes = np.empty(a.shape, dtype=np.uint16)
        for k in range(a.shape[-1]):
            codes[..., k] = (np.subtract(a[..., k], lo, dtype=np.int32) + near) // step
        coded, data = integers.encode(codes)
        info.update(kind="integer", offset=lo, step=step, values=coded)
        return info, data
    if max_error and a.dtype.kind == "f" and _finer_than_stored(a, max_error):
        max_error = 0.0  # steps finer than the values' own precision: exact coding is smaller
    if a.dtype.kind in "iu" or _whole_numbers(a):
        # Whole-number floats are integers: a bound below 1 keeps them exact, a larger one is a whole step.
        lo = int(a.min())
        top = int(a.max()) - lo
        info.update(kind="integer", offset=lo, step=1)
        near = int(max_error)
        if near and a.dtype.kind in "iu" and a.dtype.itemsize == 8:
            near = 0  # a step past the end of a 64-bit type cannot be told from a wrap: kept exact
        if near and (top > integers.JPEGLS_MAX or near > _near_limit(a)):
            step = 2 * near + 1
            info["step"] = step
            coded, data = integers.encode(_codes(a, lo, top, near, step))
        elif a.dtype.kind in "iu":
            coded, data = integers.encode(a, near=near, offset=lo)  # offset on the way: no copy of the scan
        else:
            coded, data = integers.encode(_codes(a, lo, top), near=near)
        info["values"] = coded
        return info, data
    if max_error == 0:
        scaled = _scaled_integers(a)
        if scaled is not None:
            return scaled
        import imagecodecs

        info.update(kind="raw", order="C")
        return info, imagecodecs.zstd_encode(integers.shuffle(a), integers.ZSTD_LEVEL)
    if not _all_finite(a):
        raise InputError(
            "the scan holds NaN or infinite values, which near-lossless coding cannot bound; "
            "use --mode lossless, which keeps them."
        )
    scaled = _scaled_integers(a)
    if scaled is not None and scaled[0]["slope"] >= 2.0 * float(max_error):
        return scaled  # a header's scaling already steps more coarsely than the bound would: kept exact
    step = 2.0 * float(max_error)
    lo = float(a.min())
    # Rounding is monotonic, so the largest code is the largest value's: its type is known before the codes.
    codes = np.empty(a.shape, dtype=_unsigned_for(int(np.rint((float(a.max()) - lo) / step))), order=_order(a))
    for part in _slabs(a):
        codes[part] = np.rint((a[part].astype(np.float64) - lo) / step)
    coded, data = integers.encode(codes)
    info.update(kind="quantised", offset=lo, step=step, values=coded)
    return info, data


def decode(info: dict, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`encode`, in the original dtype."""
    dtype = np.dtype(info["dtype"])
    kind = info.get("kind")
    if kind == "raw":
        raw = integers.unzstd(data, int(np.prod(shape)) * dtype.itemsize)
        return integers.unshuffle(raw, dtype).reshape(shape)
    if kind == "scaled":
        return _decode_scaled(info, data, shape, dtype)
    if kind not in ("integer", "quantised"):
        raise InputError(f"unknown value coding {kind!r}: the file was written by a newer medae.")
    if kind == "integer" and dtype.kind in "biu" and dtype.itemsize <= 2:
        # Straight into the scan's own type, slice by slice: no wider copy of the volume.
        target = np.uint8 if dtype.kind == "b" else dtype.newbyteorder("=")
        out = integers.decode(
            info["values"], data, shape, offset=int(info["offset"]), dtype=target, step=int(info["step"])
        )
        return out.astype(dtype, copy=False)
    codes = integers.decode(info["values"], data, shape)
    # In pieces, so that the 64-bit sums never hold more than a few megabytes at once.
    out = np.empty(shape, dtype=dtype)
    flat_codes, flat_out = codes.reshape(-1), out.reshape(-1)
    for start in range(0, flat_codes.size, _PIECE):
        flat_out[start : start + _PIECE] = _from_codes(flat_codes[start : start + _PIECE], info, kind, dtype)
    return out


def _from_codes(codes: np.ndarray, info: dict, kind: str, dtype: np.dtype) -> np.ndarray:
    """Values of a piece of the decoded codes, ready to be stored as ``dtype``."""
    step = int(info["step"]) if kind == "integer" else float(info["step"])
    if kind == "integer" and step == 1 and dtype.kind in "iu" and dtype.itemsize <= 4:
        # A near-lossless value may step past the type's end (within the bound): clipped, never wrapped.
        limits = np.iinfo(dtype)
        part = codes.astype(np.int64)
        part += int(info["offset"])
        return np.clip(part, limits.min, limits.max, out=part)
    if kind == "integer" and step == 1:
        # Modulo 2**64, as the offset was taken: exact for every integer type, 64-bit ones included.
        values = codes.astype(np.uint64) + np.uint64(int(info["offset"]) % 2**64)
        return values if dtype.kind == "u" else values.view(np.int64)
    if kind == "integer":
        values = codes.astype(np.int64) * step + int(info["offset"])
    else:
        values = codes.astype(np.float64) * step + float(info["offset"])
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        values = np.clip(values, limits.min, limits.max)  # a step past the type's end is never nearer
    elif dtype.kind == "b":
        return values.astype(bool)
    return values


def _scaled_integers(a: np.ndarray) -> tuple[dict, bytes] | None:
    """Floats that are integers times a slope plus an intercept, coded exactly; None for other floats.

    A header's scaling (NIfTI ``scl_slope``, DICOM Rescale Slope) turns stored 16-bit integers into floats
    four times their size that no longer look like integers. Their integers are coded as integers, and
    the bits where ``k * slope + intercept`` (float64, then the scan's type) differs from the value are
    kept too (XOR, mostly zero), so the round trip is exact whatever arithmetic made the values: IEEE
    multiplication and addition give the same bits on every machine.
    """
    import imagecodecs

    if a.size < 2 or not _all_finite(a):
        return None
    sample = a.ravel(order="K")[:: max(1, a.size // 1_000_000)]
    levels = np.unique(sample.astype(np.float64))
    if levels.size < 2 or levels.size > integers.JPEGLS_MAX:
        return None
    intercept = float(levels[0])
    step = float(np.diff(levels).min())
    steps = np.rint((levels - intercept) / step)
    # The smallest gap is blurred by the values' own rounding (float32 data): the least-squares slope
    # over every level is exact to far more digits.
    slope = float(np.dot(levels - intercept, steps) / np.dot(steps, steps))
    intercept = float(a.min())
    # Rounding is monotonic: the largest step is the largest value's, known before any whole-volume buffer.
    if np.rint((float(a.max()) - intercept) / slope) > integers.JPEGLS_MAX:
        return None
    # The residual's byte planes are filled in C order, the integers beside them, a few megabytes at a time.
    k = np.empty(a.shape, dtype=np.uint16)
    planes = np.empty((a.dtype.itemsize, a.size), dtype=np.uint8)
    changed = 0
    start = 0
    for part in _slabs(a, c_order=True):
        steps = np.rint((a[part].astype(np.float64) - intercept) / slope)
        k[part] = steps
        approx = (steps * slope + intercept).astype(a.dtype)
        # Byte by byte: the same whatever the byte order.
        residual = np.bitwise_xor(_bytes_of(a[part]), _bytes_of(approx))
        changed += np.count_nonzero(residual)
        n = approx.size
        planes[:, start : start + n] = residual.reshape(-1, a.dtype.itemsize).T
        start += n
    if changed > 0.05 * planes.size:
        return None  # not a scaling of integers after all: the raw coding is smaller
    coded, kdata = integers.encode(k)
    rdata = imagecodecs.zstd_encode(planes, integers.ZSTD_LEVEL)
    info = {"dtype": a.dtype.str, "kind": "scaled", "slope": slope, "intercept": intercept}
    info.update(values=coded, values_bytes=len(kdata))
    return info, kdata + rdata


def _decode_scaled(info: dict, data: bytes, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    split = int(info["values_bytes"])
    k = integers.decode(info["values"], data[:split], shape).reshape(-1)
    planes = integers.unzstd(data[split:], k.size * dtype.itemsize).reshape(dtype.itemsize, -1)
    slope, intercept = float(info["slope"]), float(info["intercept"])
    out = np.empty(k.size, dtype=dtype)
    out_bytes = out.view(np.uint8)
    width = dtype.itemsize
    for start in range(0, k.size, _PIECE):
        approx = (k[start : start + _PIECE].astype(np.float64) * slope + intercept).astype(dtype)
        residual = planes[:, start : start + _PIECE].T.reshape(-1)
        # Into the output's bytes: the bits stay as they are, NaN payloads included.
        np.bitwise_xor(_bytes_of(approx), residual, out=out_bytes[start * width : start * width + residual.size])
    return out.reshape(shape)


def _bytes_of(a: np.ndarray) -> np.ndarray:
    """The array's bytes in C order, as a flat uint8 array."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def _finer_than_stored(a: np.ndarray, bound: float) -> bool:
    """Whether steps of twice ``bound`` are finer than the float type resolves at the values' largest size."""
    lo, hi = _finite_range(a)
    if lo > hi:
        return False
    largest = max(abs(lo), abs(hi))
    with np.errstate(over="ignore"):  # the spacing at the type's largest value is inf: no step is coarser
        return 2.0 * bound <= float(np.spacing(a.dtype.type(largest)))


def _near_limit(a: np.ndarray) -> int:
    """The largest error JPEG-LS itself can bound for these values: min(255, MAXVAL / 2) of their sample type."""
    if a.size == 0:
        return 0
    top = int(a.max()) - int(a.min())
    return 127 if top < 256 else 255


def _codes(a: np.ndarray, lo: int, top: int, near: int = 0, step: int = 1) -> np.ndarray:
    """``((a - lo) + near) // step`` of integers or whole-number floats, in the smallest unsigned type that holds them.

    Filled a slab at a time, in the scan's own memory order, so that no copy wider than the codes is made.

    Args:
        a: Integers, or floats holding whole numbers below 2**53.
        lo: The values' minimum.
        top: Their maximum less ``lo``.
        near: Added before the quantisation, so that each code stands for the values within ``near`` of it.
        step: The quantisation step.
    """
    codes = np.empty(a.shape, dtype=_unsigned_for((top + near) // step), order=_order(a))
    for part in _slabs(a):
        if a.dtype.kind in "iu":
            d = integers.less(a[part], lo)  # exact modulo its type's range, which holds the difference
        else:
            d = a[part].astype(np.int64) - lo  # whole numbers below 2**53: exact
        if step > 1:
            d = (d.astype(np.uint64) + near) // step  # wide enough that adding the bound cannot wrap
        codes[part] = d
    return codes


def _unsigned_for(top: int) -> np.dtype:
    """The smallest unsigned integer type that holds 0 ... ``top``."""
    for t in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(t).max:
            return np.dtype(t)
    return np.dtype(np.uint64)


def _order(a: np.ndarray) -> str:
    """The array's memory order, for buffers that are filled from it and read the way it is."""
    return "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"


def _slabs(a: np.ndarray, c_order: bool = False):
    """Index tuples of slabs of about ``_PIECE`` voxels along the axis that varies slowest in memory.

    With ``c_order``, along the first axis always: the slabs are then consecutive runs of the C-order values.
    """
    if a.ndim == 0:
        yield ()
        return
    axis = a.ndim - 1 if not c_order and _order(a) == "F" else 0
    per = max(1, a.size // max(1, a.shape[axis]))
    rows = max(1, _PIECE // per)
    for i in range(0, a.shape[axis], rows):
        yield (slice(None),) * axis + (slice(i, i + rows),)


def _all_finite(a: np.ndarray) -> bool:
    """Whether every value is finite (without a whole-volume mask)."""
    return all(np.isfinite(a[part]).all() for part in _slabs(a))


def _finite_range(a: np.ndarray) -> tuple[float, float]:
    """Smallest and largest finite value; (inf, -inf) when there is none."""
    lo, hi = np.inf, -np.inf
    for part in _slabs(a):
        s = a[part]
        finite = np.isfinite(s)
        lo = min(lo, float(np.min(s, where=finite, initial=np.inf)))
        hi = max(hi, float(np.max(s, where=finite, initial=-np.inf)))
    return lo, hi


def _whole_numbers(a: np.ndarray) -> bool:
    """A float array that integer coding keeps bit for bit: finite whole numbers, no negative zero."""
    if a.dtype.kind != "f" or a.size == 0:
        return False
    for part in _slabs(a):
        s = a[part]
        if not np.isfinite(s).all() or float(np.abs(s).max()) >= _EXACT_INTEGERS:
            return False
        if not np.array_equal(s, np.trunc(s)):
            return False
        if np.any(np.signbit(s) & (s == 0)):
            return False
    return True
