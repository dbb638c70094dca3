"""Non-negative integer volumes <-> bytes: JPEG-LS slice by slice, zstd for repeating volumes or wide values.

JPEG-LS (ISO 14495-1, the DICOM transfer syntaxes 1.2.840.10008.1.2.4.80 and .81) codes each slice
losslessly or near-losslessly with a guaranteed largest error; it needs at most 16 bits per sample.
Noise-free volumes whose slices repeat compress better as a whole with zstd, which finds matches across
slices ("zstd-slices": byte planes of the volume in C order, near-lossless by quantisation).
Wider values (32-bit integers, quantised floats of a wide range) are byte-shuffled and coded with zstd,
losslessly ("zstd-shuffle").
"""

from __future__ import annotations

import numpy as np

from medae.errors import InputError

JPEGLS_MAX = 2**16 - 1
ZSTD_LEVEL = 9
# Voxels converted at once on the way to or from a whole-volume buffer (a few megabytes).
_PIECE = 1 << 20


def encode(values: np.ndarray, near: int = 0, offset: int = 0) -> tuple[dict, bytes]:
    """Codes a 3D array of integers that are >= 0 once ``offset`` is taken off.

    Args:
        values: Integers, any integer dtype.
        near: Largest error allowed per voxel; 0 is lossless. Only for values up to 65535: wider values
            are coded losslessly and must be quantised by the caller.
        offset: Subtracted a slice or a few megabytes at a time, so that no offset copy of a whole volume is
            made.

    Returns:
        (description for the header, coded bytes).
    """
    import imagecodecs

    top = int(values.max()) - offset if values.size else 0
    if values.size and int(values.min()) - offset < 0:
        raise ValueError("integer coding needs values >= 0")
    if top <= JPEGLS_MAX:
        stored = np.dtype(np.uint8 if top < 256 else np.uint16)
        repetitive, sampled = _repetitive(values, offset, stored)
        if repetitive:
            return _encode_zstd_slices(values, near, offset, stored)
        parts = []
        for k in range(values.shape[-1]):
            if not near and k in sampled:  # coded already, to decide
                parts.append(sampled[k])
                continue
            parts.append(_jpegls(less(values[..., k], offset).astype(stored), near))
        info = {"coding": "jpeg-ls", "near": int(near), "sample": stored.name}
        info["slices"] = [len(p) for p in parts]
        return info, b"".join(parts)
    if near:
        raise ValueError("values beyond 16 bits must be quantised by the caller")
    stored = np.dtype(np.uint32 if top < 2**32 else np.uint64)
    return {"coding": "zstd-shuffle", "sample": stored.name}, imagecodecs.zstd_encode(
        shuffle(values, offset, stored), ZSTD_LEVEL
    )


def less(values: np.ndarray, offset: int) -> np.ndarray:
    """``values - offset`` for integers at least ``offset``, exact in an unsigned type of their own width.

    The difference lies between 0 and the type's span, so it is exact modulo the unsigned type's range: no
    wider copy, and no overflow for offsets beyond a narrower type (a uint32 scan near 4e9, 64-bit ones).
    """
    unsigned = np.dtype(f"u{values.dtype.itemsize}")
    native = values.astype(values.dtype.newbyteorder("="), copy=False)
    return native.view(unsigned) - unsigned.type(int(offset) % 2 ** (8 * unsigned.itemsize))


def _jpegls(plane: np.ndarray, near: int) -> bytes:
    """One slice coded with JPEG-LS.

    The encoder's own output buffer is the slice's size, which pure noise (the air of a phase map, a
    corrupted slice) overflows: JPEG-LS adds a few percent to what it cannot predict.
    """
    import imagecodecs

    return imagecodecs.jpegls_encode(plane, level=int(near) if near else None, out=2 * plane.nbytes + 4096)


def _repetitive(values: np.ndarray, offset: int, stored: np.dtype) -> tuple[bool, dict[int, bytes]]:
    """Whether zstd beats JPEG-LS by a tenth on about eight slices: noise-free, repeating volumes.

    Scans with noise compress best slice by slice with JPEG-LS; synthetic or heavily masked volumes
    (large constant regions, slices that repeat) compress better as a whole with zstd.

    Returns:
        (the verdict, the sampled slices coded losslessly with JPEG-LS, by index, for the encoder to keep).
    """
    import imagecodecs

    sampled: dict[int, bytes] = {}
    zstd = 0
    for k in range(0, values.shape[-1], max(1, values.shape[-1] // 8)):
        plane = less(values[..., k], offset).astype(stored)
        sampled[k] = _jpegls(plane, 0)
        zstd += len(imagecodecs.zstd_encode(shuffle(plane), ZSTD_LEVEL))
    return zstd < 0.9 * sum(len(b) for b in sampled.values()), sampled


def _encode_zstd_slices(values: np.ndarray, near: int, offset: int, stored: np.dtype) -> tuple[dict, bytes]:
    """Byte planes of the volume in C order (quantised to steps of 2 * near + 1), then zstd.

    C order puts a voxel beside the same voxel of the next slice, so repeating slices become long runs;
    the planes are filled slice by slice, without a whole-volume copy of the codes.
    """
    import imagecodecs

    step = 2 * int(near) + 1
    depth = values.shape[-1]
    planes = np.empty((stored.itemsize, values.size), dtype=np.uint8)
    for k in range(depth):
        codes = ((less(values[..., k], offset).astype(np.int32) + int(near)) // step).astype(stored)
        planes[:, k::depth] = codes.reshape(-1).view(np.uint8).reshape(-1, stored.itemsize).T
    info = {"coding": "zstd-slices", "sample": stored.name, "step": step}
    return info, imagecodecs.zstd_encode(planes, ZSTD_LEVEL)


def decode(
    info: dict, data: bytes, shape: tuple[int, ...], offset: int = 0, dtype: np.dtype | None = None, step: int = 1
) -> np.ndarray:
    """Inverse of :func:`encode`: the integers, times ``step`` plus ``offset``, slice by slice into ``dtype``.

    Without ``dtype``, the values come back as their stored sample type (times a quantisation step of
    their own, as int64); ``offset`` and ``step`` then apply only with a ``dtype``.

    Raises:
        InputError: The coded data do not match their description (a damaged file).
    """
    sample = np.dtype(info["sample"])
    coding = info["coding"]
    if coding == "zstd-shuffle":
        return unshuffle(unzstd(data, int(np.prod(shape)) * sample.itemsize), sample).reshape(shape)
    if coding == "jpeg-ls":
        slices = _jpegls_slices(info, data, shape)
        inner = 1
    elif coding == "zstd-slices":
        slices = _zstd_slices(data, shape, sample)
        inner = int(info["step"])
    else:
        raise InputError(f"unknown value coding {coding!r}: the file was written by a newer medae.")
    if dtype is None:
        out = np.empty(shape, dtype=sample if inner == 1 else np.int64)
        for k, plane in enumerate(slices):
            out[..., k] = plane if inner == 1 else np.multiply(plane, inner, dtype=np.int64)
        return out
    out = np.empty(shape, dtype=dtype)
    limits = np.iinfo(out.dtype)
    for k, plane in enumerate(slices):
        # Near-lossless values may step past the scan's top value (within the bound); its type's end is
        # never further from the truth, and stops a wrap-around.
        wide = np.multiply(plane, step * inner, dtype=np.int64)
        out[..., k] = np.clip(np.add(wide, offset, dtype=np.int64), limits.min, limits.max)
    return out


def _jpegls_slices(info: dict, data: bytes, shape: tuple[int, ...]):
    """The decoded JPEG-LS slices, one at a time."""
    import imagecodecs

    sizes = [int(n) for n in info["slices"]]
    if len(sizes) != shape[-1] or sum(sizes) != len(data):
        raise InputError("the compressed slices do not add up to the volume's size; the file is damaged.")
    start = 0
    for k, n in enumerate(sizes):
        try:
            plane = imagecodecs.jpegls_decode(data[start : start + n])
        except Exception as exc:  # noqa: BLE001 - the codec's own error types differ between versions
            raise InputError(f"slice {k} does not decode ({exc}); the file is damaged.") from exc
        if plane.shape != shape[:-1]:
            raise InputError(f"slice {k} decodes to {plane.shape}, not {shape[:-1]}; the file is damaged.")
        yield plane
        start += n


def _zstd_slices(data: bytes, shape: tuple[int, ...], sample: np.dtype):
    """The slices of a ``zstd-slices`` buffer, one at a time (no whole-volume copy besides the buffer)."""
    depth = shape[-1]
    planes = unzstd(data, int(np.prod(shape)) * sample.itemsize).reshape(sample.itemsize, -1)
    for k in range(depth):
        yield np.ascontiguousarray(planes[:, k::depth].T).view(sample).reshape(shape[:-1])


def shuffle(values: np.ndarray, offset: int = 0, stored: np.dtype | None = None) -> np.ndarray:
    """Byte planes one after another (all first bytes, then all second bytes, ...): compresses better.

    The values are taken in C order, as ``stored`` (default: their own type, byte order included), less
    ``offset`` (integers only); the planes are filled a few megabytes at a time, from an array of any
    memory order, so the only whole-volume buffer is the planes themselves.

    Returns:
        The planes, a C-contiguous ``uint8`` array of shape (bytes per value, number of values).
    """
    stored = np.dtype(stored or values.dtype)
    a = np.atleast_1d(values)
    planes = np.empty((stored.itemsize, a.size), dtype=np.uint8)
    rows = max(1, _PIECE // max(1, a.size // max(1, a.shape[0])))
    start = 0
    for i in range(0, a.shape[0], rows):
        part = a[i : i + rows]
        part = less(part, offset).astype(stored) if offset else np.ascontiguousarray(part, dtype=stored)
        flat = np.ascontiguousarray(part).reshape(-1)
        planes[:, start : start + flat.size] = flat.view(np.uint8).reshape(-1, stored.itemsize).T
        start += flat.size
    return planes


def unshuffle(raw: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`shuffle` (without the offset), from the planes' bytes."""
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(dtype.itemsize, -1)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(-1)


def unzstd(data: bytes, size: int) -> np.ndarray:
    """zstd-decoded ``data``, which must be ``size`` bytes, straight into one buffer (``uint8``).

    Raises:
        InputError: The data decode to another size, or not at all (a damaged file).
    """
    import imagecodecs

    out = np.empty(size, dtype=np.uint8)
    try:
        raw = imagecodecs.zstd_decode(data, out=out)
    except Exception as exc:  # noqa: BLE001 - the codec's own error types differ between versions
        raise InputError(f"the compressed values do not decode ({exc}); the file is damaged.") from exc
    if len(raw) != size:
        raise InputError("the compressed values do not fill the volume; the file is damaged.")
    return out
