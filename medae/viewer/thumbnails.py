"""Small greyscale previews of series for the series picker, read without loading whole volumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medae import geometry
from medae.viewer.planes import plane_spec
from medae.viewer.windowing import file_window, percentile_window

SIZE = 96


def thumbnail(info, size: int = SIZE) -> np.ndarray | None:
    """An axial preview of a series (uint8, at most ``size`` pixels a side), or None if unreadable.

    Args:
        info: A ``medae.io.SeriesInfo``. Single-file volumes (NIfTI, NRRD, ...) give their middle axial
            slice; DICOM ones the file (and frame) the DICOM scan names in ``info.extra["thumbnail_file"]``.
        size: Longest side of the preview in pixels.
    """
    try:
        if info.kind == "nifti":
            return _shrink(_nifti_middle(info.source), size)
        if info.kind == "itk":
            return _shrink(_itk_middle(info.source), size)
        path = info.extra.get("thumbnail_file")
        if path:
            return _shrink(_dicom_frame(path, info.extra.get("thumbnail_frame")), size)
    except Exception:  # a preview is a convenience: a broken file only loses its thumbnail
        return None
    return None


def _nifti_middle(path: str) -> np.ndarray:
    import nibabel as nib

    img = nib.load(str(Path(path)))
    aff = img.affine
    axes = geometry.axis_directions(aff)
    s_axis = int(np.where(axes[:, 0] == 2)[0][0])
    sl: list = [slice(None)] * 3 + [0] * (len(img.shape) - 3)
    sl[s_axis] = img.shape[s_axis] // 2
    plane = np.asarray(img.dataobj[tuple(sl)], dtype=np.float32)
    vol = np.expand_dims(plane, s_axis)
    turned, _ = geometry.reorient(vol, aff, "RAS")
    return _to_gray(plane_spec("axial").extract(turned, 0), {})


def _itk_middle(path: str) -> np.ndarray:
    # NRRD and MetaImage have no cheap way to one slice (compressed data is one stream): read the volume.
    from medae.io.itk_image import load_itk_image

    vol = load_itk_image(path, index=0)  # the first volume of a 4D file
    turned, _ = geometry.reorient(vol.array, vol.affine, "RAS")
    return _to_gray(plane_spec("axial").extract(turned, turned.shape[2] // 2).astype(np.float32), {})


def _dicom_frame(path: str, frame: int | None) -> np.ndarray:
    import pydicom

    ds = pydicom.dcmread(path, force=True)
    arr = ds.pixel_array.astype(np.float32)
    if arr.ndim == 3:
        arr = arr[(frame - 1) if frame else arr.shape[0] // 2]
    arr = arr * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    meta = {"window_center": getattr(ds, "WindowCenter", None), "window_width": getattr(ds, "WindowWidth", None)}
    return _to_gray(arr, meta)


def _to_gray(arr: np.ndarray, meta: dict) -> np.ndarray:
    win = file_window(meta) or percentile_window(arr)
    g = np.clip((arr - win.low) / win.width, 0, 1) * 255
    return (g + 0.5).astype(np.uint8)


def _shrink(img: np.ndarray, size: int) -> np.ndarray:
    step = max(1, int(np.ceil(max(img.shape) / size)))
    return np.ascontiguousarray(img[::step, ::step])
