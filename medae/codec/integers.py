"""Non-negative integer volumes <-> bytes: JPEG-LS slice by slice, or zstd when values exceed 16 bits.

JPEG-LS (ISO 14495-1, the DICOM transfer syntaxes 1.2.840.10008.1.2.4.80 and .81) codes each slice
losslessly or near-losslessly with a guaranteed largest error; it needs at most 16 bits per sample.
Wider values (32-bit integers, quantised floats of a wide range) are byte-shuffled and coded with zstd,
losslessly. Slices run along the last array axis so that any part of a volume decodes on its own.
"""

from __future__ import annotations

import numpy as np

from medae.errors import InputError

JPEGLS_MAX = 2**16 - 1
ZSTD_LEVEL = 9


def encode(values: np.ndarray, near: int = 0, offset: int = 0) -> tuple[dict, bytes]:
    """Codes a 3D array of integers that are >= 0 once ``offset`` is taken off.

    Args:
        values: Integers, any integer dtype.
        near: Largest error allowed per voxel (JPEG-LS NEAR); 0 is lossless. Only for values up to 65535:
            wider values are coded losslessly and must be quantised by the caller.
        offset: Subtracted slice by slice, so that no offset copy of a whole volume is made (16-bit
            values only; wider ones come offset already).

    Returns:
        (description for the header, coded bytes).
    """
    import imagecodecs

    top = int(values.max()) - offset if values.size else 0
    if values.size and int(values.min()) - offset < 0:
        raise ValueError("integer coding needs values >= 0")
    if top <= JPEGLS_MAX:
        stored = np.uint8 if top < 256 else np.uint16
        if _repetitive(values, offset, stored):
            # Near-lossless too: steps of 2 * near + 1 (every voxel within ``near``), then zstd.
            step = 2 * int(near) + 1
            planes = np.empty(values.shape, dtype=stored)
            for k in range(values.shape[-1]):
                planes[..., k] = (np.subtract(values[..., k], offset, dtype=np.int32) + int(near)) // step
            data = imagecodecs.zstd_encode(shuffle(planes.reshape(-1)), ZSTD_LEVEL)
            return {"coding": "zstd-shuffle", "sample": np.dtype(stored).name, "step": step}, data
        parts = []
        for k in range(values.shape[-1]):
            plane = np.subtract(values[..., k], offset, dtype=np.int32).astype(stored)
            parts.append(imagecodecs.jpegls_encode(plane, level=int(near) if near else None))
        info = {"coding": "jpeg-ls", "near": int(near), "sample": np.dtype(stored).name}
        info["slices"] = [len(p) for p in parts]
        return info, b"".join(parts)
    if near or offset:
        raise ValueError("values beyond 16 bits must be offset and quantised by the caller")
    stored = np.uint32 if top < 2**32 else np.uint64
    flat = np.ascontiguousarray(values, dtype=stored).reshape(-1)
    return {"coding": "zstd-shuffle", "sample": np.dtype(stored).name}, imagecodecs.zstd_encode(
        shuffle(flat), ZSTD_LEVEL
    )


def _repetitive(values: np.ndarray, offset: int, stored: type) -> bool:
    """Whether zstd beats JPEG-LS by a tenth on a sample of slices: noise-free, repeating volumes.

    Scans with noise compress best slice by slice with JPEG-LS; synthetic or heavily masked volumes
    (large constant regions, slices that repeat) compress better as a whole with zstd, which finds
    matches across slices. Every eighth slice decides.
    """
    import imagecodecs

    jpegls = zstd = 0
    for k in range(0, values.shape[-1], max(1, values.shape[-1] // 8)):
        plane = np.subtract(values[..., k], offset, dtype=np.int32).astype(stored)
        jpegls += len(imagecodecs.jpegls_encode(plane))
        zstd += len(imagecodecs.zstd_encode(shuffle(plane.reshape(-1)), ZSTD_LEVEL))
    return zstd < 0.9 * jpegls


def decode(
    info: dict, data: bytes, shape: tuple[int, ...], offset: int = 0, dtype: np.dtype | None = None, step: int = 1
) -> np.ndarray:
    """Inverse of :func:`encode`: the integers, times ``step`` plus ``offset``, slice by slice into ``dtype``.

    Without ``dtype``, JPEG-LS values come back as their stored sample type (``offset`` must then be 0).

    Raises:
        InputError: The coded data do not match their description (a damaged file).
    """
    import imagecodecs

    sample = np.dtype(info["sample"])
    if info["coding"] == "jpeg-ls":
        sizes = [int(n) for n in info["slices"]]
        if len(sizes) != shape[-1] or sum(sizes) != len(data):
            raise InputError("the compressed slices do not add up to the volume's size; the file is damaged.")
        out = np.empty(shape, dtype=dtype or sample)
        start = 0
        for k, n in enumerate(sizes):
            try:
                plane = imagecodecs.jpegls_decode(data[start : start + n])
            except Exception as exc:  # noqa: BLE001 - the codec's own error types differ between versions
                raise InputError(f"slice {k} does not decode ({exc}); the file is damaged.") from exc
            if plane.shape != shape[:-1]:
                raise InputError(f"slice {k} decodes to {plane.shape}, not {shape[:-1]}; the file is damaged.")
            if dtype is None:
                out[..., k] = plane
            else:
                # Near-lossless slices may step past the scan's top value (within the bound); its type's end
                # is never further from the truth, and stops a wrap-around.
                limits = np.iinfo(out.dtype)
                wide = np.multiply(plane, step, dtype=np.int64) if step != 1 else plane
                out[..., k] = np.clip(np.add(wide, offset, dtype=np.int64), limits.min, limits.max)
            start += n
        return out
    if info["coding"] == "zstd-shuffle":
        raw = imagecodecs.zstd_decode(data)
        count = int(np.prod(shape))
        if len(raw) != count * sample.itemsize:
            raise InputError("the compressed values do not fill the volume; the file is damaged.")
        codes = unshuffle(raw, sample).reshape(shape)
        inner = int(info.get("step", 1))
        step *= inner
        if dtype is None:
            return codes if inner == 1 else codes.astype(np.int64) * inner
        out = np.empty(shape, dtype=dtype)
        limits = np.iinfo(out.dtype)
        for k in range(shape[-1]):
            wide = np.multiply(codes[..., k], step, dtype=np.int64)
            out[..., k] = np.clip(np.add(wide, offset, dtype=np.int64), limits.min, limits.max)
        return out
    raise InputError(f"unknown value coding {info['coding']!r}: the file was written by a newer medae.")


def shuffle(flat: np.ndarray) -> bytes:
    """Byte planes one after another (all first bytes, then all second bytes, ...): compresses better."""
    return np.ascontiguousarray(flat.view(np.uint8).reshape(-1, flat.itemsize).T).tobytes()


def unshuffle(raw: bytes, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`shuffle`."""
    planes = np.frombuffer(raw, dtype=np.uint8).reshape(dtype.itemsize, -1)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(-1)
